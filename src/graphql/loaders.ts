/**
 * DataLoaders for one request (one GraphQL operation). Each batches the ids asked for during one
 * tick into a single runtime call, whatever the number of parents: `{ agents { state { version } } }`
 * costs one `getAgentStates` call for 8 agents or for 200. Loaders cache for the life of the
 * operation only; a long-lived subscription must call `clearAll()` before each event.
 */
import DataLoader from 'dataloader';
import type { Agent } from '../domains/agent/agent.js';
import type { AgentMetrics, TimeRange, TokenUsage } from '../domains/metric/metric.js';
import type { AgentState } from '../domains/state/state.js';
import type { Task } from '../domains/task/task.js';
import type { AgentRuntime } from '../runtime/agent-runtime.js';

export interface Loaders {
  agents: DataLoader<string, Agent | null>;
  tasks: DataLoader<string, Task | null>;
  states: DataLoader<string, AgentState | null>;
  tokenUsage: DataLoader<string, TokenUsage | null>;
  /** One loader per time range: agents asked for the same range share a batch. */
  metrics(range: { from?: Date | null; to?: Date | null }): DataLoader<string, AgentMetrics | null>;
  /**
   * One loader per `first`: the newest `first` tasks of each agent, newest first; only the tasks
   * the viewer may see (see createLoaders).
   */
  recentTasks(first: number): DataLoader<string, Task[]>;
  /** One loader per `first`: the children of each task, oldest first. */
  children(first: number): DataLoader<string, Task[]>;
  /** Forgets every cached value (for subscriptions, before each event). */
  clearAll(): void;
}

/** Runtime batch reads answer in input order; DataLoader needs an array it can trust. */
const inOrder =
  <V>(load: (ids: readonly string[]) => Promise<V[]>) =>
  async (ids: readonly string[]): Promise<V[]> => {
    const values = await load(ids);
    if (values.length !== ids.length) {
      throw new Error(`batch read returned ${values.length} values for ${ids.length} ids`);
    }
    return values;
  };

const rangeKey = (range: { from?: Date | null; to?: Date | null }) =>
  `${range.from?.toISOString() ?? ''}..${range.to?.toISOString() ?? ''}`;

/** `createdBy`: the creator whose tasks lists show (taskCreatorFilter), null for everyone's. */
export function createLoaders(runtime: AgentRuntime, visibility: { createdBy: string | null }): Loaders {
  const tasks = new DataLoader<string, Task | null>(inOrder((ids) => runtime.getTasks(ids)));
  const agents = new DataLoader<string, Agent | null>(inOrder((ids) => runtime.getAgents(ids)));
  const states = new DataLoader<string, AgentState | null>(inOrder((ids) => runtime.getAgentStates(ids)));
  const tokenUsage = new DataLoader<string, TokenUsage | null>(inOrder((ids) => runtime.getTokenUsage(ids)));
  const metricsByRange = new Map<string, DataLoader<string, AgentMetrics | null>>();
  const recentByFirst = new Map<number, DataLoader<string, Task[]>>();
  const childrenByFirst = new Map<number, DataLoader<string, Task[]>>();

  return {
    agents,
    tasks,
    states,
    tokenUsage,
    metrics(range) {
      const key = rangeKey(range);
      let loader = metricsByRange.get(key);
      if (!loader) {
        const timeRange: TimeRange = { from: range.from ?? null, to: range.to ?? null };
        loader = new DataLoader(inOrder((ids) => runtime.getMetricsMany(ids, timeRange)));
        metricsByRange.set(key, loader);
      }
      return loader;
    },
    recentTasks(first) {
      let loader = recentByFirst.get(first);
      if (!loader) {
        loader = new DataLoader(
          inOrder(async (ids) => {
            const lists = await runtime.getRecentTasks(ids, first, visibility);
            // The same tasks are often asked for again by id (Task.agent → Agent.recentTasks ...).
            for (const task of lists.flat()) tasks.prime(task.id, task);
            return lists;
          }),
        );
        recentByFirst.set(first, loader);
      }
      return loader;
    },
    children(first) {
      let loader = childrenByFirst.get(first);
      if (!loader) {
        loader = new DataLoader(inOrder((ids) => runtime.getChildren(ids, first)));
        childrenByFirst.set(first, loader);
      }
      return loader;
    },
    clearAll() {
      const all = [
        agents,
        tasks,
        states,
        tokenUsage,
        ...metricsByRange.values(),
        ...recentByFirst.values(),
        ...childrenByFirst.values(),
      ];
      for (const loader of all) {
        loader.clearAll();
      }
    },
  };
}
