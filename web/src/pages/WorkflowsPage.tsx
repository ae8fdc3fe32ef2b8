import { useEffect } from 'react';
import { subscribe, request } from '../api';
import { ErrorNote, formatTime, ProgressBar, StatusBadge, useLoad } from '../components';
import { graphql } from '../gql';
import type { DashboardWorkflowRunQuery } from '../gql/graphql';
import { taskHref, workflowHref } from '../router';

const RunsQuery = graphql(`
  query DashboardWorkflowRuns {
    workflowRuns(first: 50) {
      edges {
        node {
          id
          status
          progress
          createdAt
          steps {
            id
          }
        }
      }
    }
  }
`);

const RunQuery = graphql(`
  query DashboardWorkflowRun($id: ID!) {
    workflowRun(id: $id) {
      ...DashboardRun
    }
  }
`);

graphql(`
  fragment DashboardRun on WorkflowRun {
    id
    status
    progress
    createdAt
    finishedAt
    steps {
      id
      agentId
      action
      dependsOn
      status
      itemsDone
      itemsTotal
      task {
        id
      }
    }
  }
`);

const RunUpdated = graphql(`
  subscription DashboardWorkflowRunUpdated($id: ID!) {
    workflowRunUpdated(id: $id) {
      ...DashboardRun
    }
  }
`);

export function WorkflowsPage() {
  const { data, error } = useLoad(() => request(RunsQuery), []);
  return (
    <section aria-labelledby="workflows-title">
      <h1 id="workflows-title">Workflow runs</h1>
      <p className="muted">Start one with the executeWorkflow mutation (see docs/workflows.md).</p>
      <ErrorNote error={error} />
      {data && (
        <table>
          <caption className="visually-hidden">Workflow runs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Status</th>
              <th scope="col">Steps</th>
              <th scope="col">Progress</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {data.workflowRuns.edges.map(({ node: run }) => (
              <tr key={run.id}>
                <th scope="row">
                  <a href={workflowHref(run.id)}>{run.id.slice(0, 8)}</a>
                </th>
                <td>
                  <StatusBadge status={run.status} />
                </td>
                <td>{run.steps.length}</td>
                <td>
                  <ProgressBar progress={run.progress} label={`Progress of run ${run.id.slice(0, 8)}`} />
                </td>
                <td>{formatTime(run.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

type Run = NonNullable<DashboardWorkflowRunQuery['workflowRun']>;
type Step = Run['steps'][number];

/** Each step's depth in the DAG: 0 without dependencies, else one more than its deepest one. */
function layers(steps: Step[]): Step[][] {
  const depth = new Map<string, number>();
  const byId = new Map(steps.map((step) => [step.id, step]));
  const depthOf = (step: Step): number => {
    const known = depth.get(step.id);
    if (known !== undefined) return known;
    const value =
      Math.max(-1, ...step.dependsOn.map((id) => (byId.has(id) ? depthOf(byId.get(id)!) : -1))) + 1;
    depth.set(step.id, value);
    return value;
  };
  const result: Step[][] = [];
  for (const step of steps) (result[depthOf(step)] ??= []).push(step);
  return result;
}

export function WorkflowPage({ id }: { id: string }) {
  const { data, setData, error } = useLoad(() => request(RunQuery, { id }), [id]);
  useEffect(
    () =>
      subscribe(RunUpdated, { id }, { next: ({ workflowRunUpdated: run }) => setData({ workflowRun: run }) }),
    [id, setData],
  );
  const run = data?.workflowRun;
  if (data && !run) return <p role="alert">No workflow run {id}.</p>;
  return (
    <section aria-labelledby="workflow-title">
      <h1 id="workflow-title">
        Workflow run <code>{id}</code>
      </h1>
      <ErrorNote error={error} />
      {run && (
        <>
          <p>
            <StatusBadge status={run.status} /> <ProgressBar progress={run.progress} label="Run progress" />
          </p>
          <ol className="dag" aria-label="Steps by stage">
            {layers(run.steps).map((layer, index) => (
              <li key={index}>
                <h2>Stage {index + 1}</h2>
                <ul>
                  {layer.map((step) => (
                    <li key={step.id} className="step">
                      <strong>{step.id}</strong> {step.agentId}.{step.action}{' '}
                      <StatusBadge status={step.status} />
                      {step.itemsTotal != null && (
                        <span className="muted">
                          {' '}
                          {step.itemsDone}/{step.itemsTotal} items
                        </span>
                      )}
                      {step.dependsOn.length > 0 && (
                        <span className="muted"> after {step.dependsOn.join(', ')}</span>
                      )}
                      {step.task && (
                        <>
                          {' '}
                          <a href={taskHref(step.task.id)}>task</a>
                        </>
                      )}
                    </li>
                  ))}
                </ul>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}
