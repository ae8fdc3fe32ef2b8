import { useEffect, useState } from 'react';
import { request, subscribe } from '../api';
import { ErrorNote, formatTime, Sparkline, StatusBadge, useLoad } from '../components';
import { graphql } from '../gql';
import type { DashboardAgentsQuery } from '../gql/graphql';

const AgentsQuery = graphql(`
  query DashboardAgents {
    eventHead
    agents {
      id
      name
      role
      status
      runningTasks
      errorMessage
      lastActivityAt
      metrics {
        totalRuns
        successRate
      }
    }
  }
`);

const DurationsQuery = graphql(`
  query DashboardDurations($agentId: ID!) {
    metricSeries(agentId: $agentId, name: "task_duration_ms") {
      start
      p50
      p95
    }
  }
`);

const AgentChanged = graphql(`
  subscription DashboardAgentChanged($after: String) {
    agentStatusChanged(after: $after) {
      id
      status
      runningTasks
      errorMessage
      lastActivityAt
    }
  }
`);

type Agent = DashboardAgentsQuery['agents'][number];

function Durations({ agentId, version }: { agentId: string; version: string | null }) {
  const [points, setPoints] = useState<{ p50: number; p95: number }[] | null>(null);
  useEffect(() => {
    request(DurationsQuery, { agentId }).then(
      (data) => setPoints(data.metricSeries),
      () => setPoints([]),
    );
  }, [agentId, version]);
  if (!points) return <span className="muted">…</span>;
  return <Sparkline points={points} label={`${agentId}: task duration p50 and p95, last hour`} />;
}

export function AgentsPage() {
  const { data, setData, error } = useLoad(() => request(AgentsQuery), []);
  const head = data?.eventHead ?? null;
  useEffect(() => {
    if (!head) return;
    // Changes since the list was read, then live; each replaces the agent's live fields.
    return subscribe(
      AgentChanged,
      { after: head },
      {
        next: ({ agentStatusChanged: change }) =>
          setData(
            (current) =>
              current && {
                ...current,
                agents: current.agents.map((agent): Agent =>
                  agent.id === change.id ? { ...agent, ...change } : agent,
                ),
              },
          ),
      },
    );
  }, [head, setData]);
  return (
    <section aria-labelledby="agents-title">
      <h1 id="agents-title">Agents</h1>
      <ErrorNote error={error} />
      {data && (
        <table>
          <caption className="visually-hidden">Agents, their status and recent performance</caption>
          <thead>
            <tr>
              <th scope="col">Agent</th>
              <th scope="col">Status</th>
              <th scope="col">Running</th>
              <th scope="col">Success rate</th>
              <th scope="col">Duration (p50, p95)</th>
              <th scope="col">Last activity</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {data.agents.map((agent) => (
              <tr key={agent.id} data-agent={agent.id}>
                <th scope="row">
                  {agent.name} <span className="muted">({agent.id})</span>
                </th>
                <td data-label="Status">
                  <StatusBadge status={agent.status} />
                  {agent.errorMessage && <span className="error-text"> {agent.errorMessage}</span>}
                </td>
                <td data-label="Running">{agent.runningTasks}</td>
                <td data-label="Success rate">
                  {agent.metrics.totalRuns === 0 ? '–' : `${Math.round(agent.metrics.successRate * 100)}%`}{' '}
                  <span className="muted">of {agent.metrics.totalRuns}</span>
                </td>
                <td data-label="Duration (p50, p95)">
                  <Durations agentId={agent.id} version={agent.lastActivityAt ?? null} />
                </td>
                <td data-label="Last activity">{formatTime(agent.lastActivityAt)}</td>
                <td>
                  <a href={`#/run/${encodeURIComponent(agent.id)}`}>Run a task</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
