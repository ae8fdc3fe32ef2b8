import { useEffect, useState } from 'react';
import { ApiError, request, subscribe } from '../api';
import { ErrorNote, formatJson, formatTime, ProgressBar, StatusBadge, useLoad } from '../components';
import { graphql } from '../gql';
import type { DashboardTaskEventsSubscription } from '../gql/graphql';
import { navigate, taskHref } from '../router';

const TaskQuery = graphql(`
  query DashboardTask($id: ID!) {
    task(id: $id) {
      id
      agentId
      action
      status
      progress
      progressMessage
      input
      result
      error {
        code
        message
      }
      output
      attempts
      maxAttempts
      createdAt
      startedAt
      finishedAt
      durationMs
      parent {
        id
      }
      children(first: 50) {
        id
        agentId
        action
        status
      }
    }
  }
`);

const TaskEvents = graphql(`
  subscription DashboardTaskEvents($id: ID!, $after: String) {
    taskEvents(taskId: $id, after: $after) {
      cursor
      type
      payload
      createdAt
    }
  }
`);

const TaskOutput = graphql(`
  subscription DashboardTaskOutput($id: ID!, $after: String) {
    taskOutput(taskId: $id, after: $after) {
      cursor
      offset
      text
    }
  }
`);

const TaskLogs = graphql(`
  query DashboardTaskLogs($id: ID!) {
    logs(taskId: $id, last: 50) {
      edges {
        node {
          id
          level
          message
          createdAt
        }
      }
    }
  }
`);

const CancelTask = graphql(`
  mutation DashboardCancelTask($id: ID!) {
    cancelTask(id: $id) {
      id
      status
    }
  }
`);

const RetryTask = graphql(`
  mutation DashboardRetryTask($input: ExecuteTaskInput!) {
    executeTask(input: $input) {
      id
    }
  }
`);

type TaskEvent = DashboardTaskEventsSubscription['taskEvents'];
const FINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

export function TaskPage({ id }: { id: string }) {
  const task = useLoad(() => request(TaskQuery, { id }), [id]);
  const logs = useLoad(() => request(TaskLogs, { id }), [id]);
  const [events, setEvents] = useState<TaskEvent[]>([]);
  const [output, setOutput] = useState<string | null>(null);
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const { reload: reloadTask, setData: setTask } = task;
  const { reload: reloadLogs } = logs;

  useEffect(
    () =>
      subscribe(
        TaskEvents,
        { id, after: null },
        {
          resumeAfter: (data) => data.taskEvents.cursor,
          next: ({ taskEvents: event }) => {
            // Positions are unique: a replay after a reconnect never shows one twice.
            setEvents((current) =>
              current.some((seen) => seen.cursor === event.cursor) ? current : [...current, event],
            );
            if (event.type === 'task_progress') {
              const progress = Number((event.payload as { progress?: number } | null)?.progress ?? 0);
              setTask((current) => (current?.task ? { task: { ...current.task, progress } } : current));
            } else {
              reloadTask();
              reloadLogs();
            }
          },
        },
      ),
    [id, reloadTask, reloadLogs, setTask],
  );

  useEffect(
    () =>
      subscribe(
        TaskOutput,
        { id, after: null },
        {
          resumeAfter: (data) => data.taskOutput.cursor,
          next: ({ taskOutput: delta }) =>
            setOutput((current) => (current ?? '').slice(0, delta.offset) + delta.text),
        },
      ),
    [id],
  );

  const current = task.data?.task;
  if (task.data && !current) return <p role="alert">No task {id}.</p>;
  const cancel = () =>
    request(CancelTask, { id }).then(reloadTask, (error: unknown) => setActionError(error as ApiError));
  const retry = () =>
    current &&
    request(RetryTask, {
      input: { agentId: current.agentId, action: current.action ?? 'ping', input: current.input },
    }).then(
      ({ executeTask }) => navigate(taskHref(executeTask.id)),
      (error: unknown) => setActionError(error as ApiError),
    );

  return (
    <section aria-labelledby="task-title">
      <h1 id="task-title">
        Task <code>{id}</code>
      </h1>
      <ErrorNote error={task.error ?? actionError} />
      {current && (
        <>
          <dl className="facts">
            <dt>Agent</dt>
            <dd>
              {current.agentId}.{current.action}
            </dd>
            <dt>Status</dt>
            <dd data-testid="task-status">
              <StatusBadge status={current.status} />
            </dd>
            <dt>Progress</dt>
            <dd>
              <ProgressBar
                progress={current.status === 'SUCCEEDED' ? 1 : current.progress}
                label="Task progress"
              />
              {current.progressMessage && <span className="muted"> {current.progressMessage}</span>}
            </dd>
            <dt>Attempts</dt>
            <dd>
              {current.attempts} of {current.maxAttempts}
            </dd>
            <dt>Queued / started / finished</dt>
            <dd>
              {formatTime(current.createdAt)} / {formatTime(current.startedAt)} /{' '}
              {formatTime(current.finishedAt)}
              {current.durationMs != null && (
                <span className="muted"> ({Math.round(current.durationMs)} ms)</span>
              )}
            </dd>
            {current.parent && (
              <>
                <dt>Called by</dt>
                <dd>
                  <a href={taskHref(current.parent.id)}>{current.parent.id.slice(0, 8)}</a>
                </dd>
              </>
            )}
          </dl>
          <div className="buttons">
            <button type="button" onClick={cancel} disabled={FINAL.includes(current.status)}>
              Cancel
            </button>
            <button type="button" onClick={retry}>
              Run again
            </button>
          </div>
          <div className="columns">
            <div>
              <h2>Input</h2>
              <pre>{formatJson(current.input)}</pre>
              <h2>Result</h2>
              <pre data-testid="task-result">
                {current.error
                  ? `${current.error.code}: ${current.error.message}`
                  : formatJson(current.result)}
              </pre>
              {(output ?? current.output) && (
                <>
                  <h2>Output</h2>
                  <pre className="output" aria-live="polite">
                    {output ?? current.output}
                  </pre>
                </>
              )}
              {current.children.length > 0 && (
                <>
                  <h2>Called tasks</h2>
                  <ul>
                    {current.children.map((child) => (
                      <li key={child.id}>
                        <a href={taskHref(child.id)}>
                          {child.agentId}.{child.action}
                        </a>{' '}
                        <StatusBadge status={child.status} />
                      </li>
                    ))}
                  </ul>
                </>
              )}
            </div>
            <div>
              <h2>Timeline</h2>
              <ol className="timeline" data-testid="timeline">
                {events.map((event) => (
                  <li key={event.cursor} data-type={event.type}>
                    <time>{formatTime(event.createdAt)}</time> {event.type}
                  </li>
                ))}
              </ol>
              <h2>Logs</h2>
              <ul className="logs">
                {logs.data?.logs.edges.map(({ node }) => (
                  <li key={node.id} className={`log-${node.level.toLowerCase()}`}>
                    <time>{formatTime(node.createdAt)}</time> {node.level} {node.message}
                  </li>
                ))}
              </ul>
            </div>
          </div>
        </>
      )}
    </section>
  );
}
