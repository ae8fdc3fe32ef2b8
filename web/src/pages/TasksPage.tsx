import { useEffect, useState } from 'react';
import { request, subscribe } from '../api';
import { ErrorNote, formatTime, ProgressBar, StatusBadge, useLoad } from '../components';
import { graphql } from '../gql';
import type { TaskStatus } from '../gql/graphql';
import { taskHref } from '../router';

const TasksQuery = graphql(`
  query DashboardTasks($agentId: ID, $status: [TaskStatus!]) {
    eventHead
    agents {
      id
    }
    tasks(agentId: $agentId, status: $status, first: 50) {
      totalCount
      edges {
        node {
          id
          agentId
          action
          status
          progress
          createdAt
        }
      }
    }
  }
`);

const TaskRow = graphql(`
  query DashboardTaskRow($id: ID!) {
    task(id: $id) {
      id
      agentId
      action
      status
      progress
      createdAt
    }
  }
`);

const TaskEvents = graphql(`
  subscription DashboardTaskActivity($after: String) {
    events(
      after: $after
      types: [
        "task_queued"
        "task_started"
        "task_progress"
        "task_completed"
        "task_failed"
        "task_cancelled"
        "task_retry_scheduled"
        "task_waiting"
        "task_resumed"
      ]
    ) {
      cursor
      type
      taskId
      payload
    }
  }
`);

const STATUSES: TaskStatus[] = ['QUEUED', 'RUNNING', 'WAITING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
/** Without the live feed (it needs tasks:all), the list is read again this often. */
const POLL_MS = 2_000;

export function TasksPage() {
  const [agentId, setAgentId] = useState('');
  const [status, setStatus] = useState('');
  const { data, setData, error, reload } = useLoad(
    () => request(TasksQuery, { agentId: agentId || null, status: status ? [status as TaskStatus] : null }),
    [agentId, status],
  );
  const head = data?.eventHead ?? null;
  useEffect(() => {
    if (!head) return;
    let poll: ReturnType<typeof setInterval> | undefined;
    const stop = subscribe(
      TaskEvents,
      { after: head },
      {
        resumeAfter: (event) => event.events.cursor,
        next: ({ events: event }) => {
          if (!event.taskId) return;
          const id = event.taskId;
          if (event.type === 'task_progress') {
            const progress = Number((event.payload as { progress?: number } | null)?.progress ?? 0);
            setData(
              (current) =>
                current && {
                  ...current,
                  tasks: {
                    ...current.tasks,
                    edges: current.tasks.edges.map((edge) =>
                      edge.node.id === id ? { node: { ...edge.node, progress } } : edge,
                    ),
                  },
                },
            );
            return;
          }
          void request(TaskRow, { id }).then(({ task }) => {
            if (!task) return;
            setData((current) => {
              if (!current) return current;
              const known = current.tasks.edges.some((edge) => edge.node.id === id);
              const matches = (!agentId || task.agentId === agentId) && (!status || task.status === status);
              const edges = known
                ? current.tasks.edges.map((edge) => (edge.node.id === id ? { node: task } : edge))
                : matches
                  ? [{ node: task }, ...current.tasks.edges]
                  : current.tasks.edges;
              return { ...current, tasks: { ...current.tasks, edges } };
            });
          });
        },
        error: () => {
          poll ??= setInterval(reload, POLL_MS);
        },
      },
    );
    return () => {
      stop();
      if (poll) clearInterval(poll);
    };
  }, [head, agentId, status, setData, reload]);

  return (
    <section aria-labelledby="tasks-title">
      <h1 id="tasks-title">Tasks</h1>
      <form className="filters" onSubmit={(event) => event.preventDefault()}>
        <label>
          Agent
          <select value={agentId} onChange={(event) => setAgentId(event.target.value)}>
            <option value="">all</option>
            {data?.agents.map((agent) => (
              <option key={agent.id} value={agent.id}>
                {agent.id}
              </option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select value={status} onChange={(event) => setStatus(event.target.value)}>
            <option value="">all</option>
            {STATUSES.map((value) => (
              <option key={value}>{value}</option>
            ))}
          </select>
        </label>
        {data && <span className="muted">{data.tasks.totalCount} tasks</span>}
      </form>
      <ErrorNote error={error} />
      {data && (
        <table>
          <caption className="visually-hidden">Tasks, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col">Agent</th>
              <th scope="col">Action</th>
              <th scope="col">Status</th>
              <th scope="col">Progress</th>
              <th scope="col">Queued</th>
            </tr>
          </thead>
          <tbody>
            {data.tasks.edges.map(({ node: task }) => (
              <tr key={task.id} data-task={task.id}>
                <th scope="row">
                  <a href={taskHref(task.id)}>{task.id.slice(0, 8)}</a>
                </th>
                <td data-label="Agent">{task.agentId}</td>
                <td data-label="Action">{task.action}</td>
                <td data-label="Status">
                  <StatusBadge status={task.status} />
                </td>
                <td data-label="Progress">
                  <ProgressBar
                    progress={task.status === 'SUCCEEDED' ? 1 : task.progress}
                    label={`Progress of task ${task.id.slice(0, 8)}`}
                  />
                </td>
                <td data-label="Queued">{formatTime(task.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
