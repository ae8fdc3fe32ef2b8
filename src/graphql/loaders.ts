/**
 * DataLoaders for one request (one GraphQL operation). Each batches the ids asked for during one
 * tick into a single runtime call, whatever the number of parents: `{ agents { state { version } } }`
 * costs one `getAgentStates` call for 8 agents or for 200. Loaders cache for the life of the
 * operation only; a long-lived subscription must call `clearAll()` before each event. Their batches
 * go through the process's shared reads (shared-reads.ts): concurrent operations asking for the same
 * kind of read share one call.
 */
import DataLoader from 'dataloader';
import type { TaskCheckpoint } from '../domains/task/checkpoints.js';
import type { Agent } from '../domains/agent/agent.js';
import type { AgentMetrics, TimeRange, TokenUsage } from '../domains/metric/metric.js';
import type { AgentState } from '../domains/state/state.js';
import type { Task } from '../domains/task/task.js';
import type { WorkflowStep } from '../domains/workflow/workflow.js';
import type { AgentRuntime } from '../runtime/agent-runtime.js';
import { sharedReadsOf, type SharedReads } from './shared-reads.js';

export interface Loaders {
  /** Every registered agent (Query.agents), read once for all operations asking at the same moment. */
  allAgents(): Promise<Agent[]>;
  agents: DataLoader<string, Agent | null>;
  tasks: DataLoader<string, Task | null>;
  states: DataLoader<string, AgentState | null>;
  /** Model token usage of each task (prompt and completion tokens), null when it made no call. */
  tokenUsage: DataLoader<string, TokenUsage | null>;
  /** The steps of each workflow run, in definition order: one query for a page of runs. */
  workflowSteps: DataLoader<string, WorkflowStep[]>;
  /** One loader per time range: agents asked for the same range share a batch. */
  metrics(range: { from?: Date | null; to?: Date | null }): DataLoader<string, AgentMetrics | null>;
  /**
   * One loader per `first`: the newest `first` tasks of each agent, newest first; only the tasks
   * the viewer may see (see createLoaders).
   */
  recentTasks(first: number): DataLoader<string, Task[]>;
  /** One loader per `first`: the children of each task, oldest first. */
  children(first: number): DataLoader<string, Task[]>;
  /** One loader per `first`: the newest `first` state versions of each agent, newest first. */
  stateHistory(first: number): DataLoader<string, AgentState[]>;
  /** One loader per `first`: the newest `first` graph checkpoints of each task, newest first. */
  checkpoints(first: number): DataLoader<string, TaskCheckpoint[]>;
  /**
   * Loads `ids` from `loader` in one batch (one call of its batch function when nothing has asked
   * it yet, else through its cache as `loadMany` does) and keeps their values at hand for `now`
   * (preload.ts: a list field loading what its objects' fields will read). Never rejects: a failed
   * read is left to `load`, which gives its error.
   */
  preload(loader: DataLoader<string, unknown>, ids: readonly string[]): Promise<void>;
  /** The value of `id` when preloaded from `loader` (no promise), else `loader.load(id)`. */
  now<V>(loader: DataLoader<string, V>, id: string): V | Promise<V>;
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

/**
 * The loaders of one operation, each made on first use: a subscription that never reads, say, an
 * agent's state holds no loader for it (thousands of idle subscriptions hold one context each).
 */
class OperationLoaders implements Loaders {
  private readonly shared: SharedReads;
  private tasksLoader?: DataLoader<string, Task | null>;
  private agentsLoader?: DataLoader<string, Agent | null>;
  private statesLoader?: DataLoader<string, AgentState | null>;
  private tokenUsageLoader?: DataLoader<string, TokenUsage | null>;
  private workflowStepsLoader?: DataLoader<string, WorkflowStep[]>;
  private metricsByRange?: Map<string, DataLoader<string, AgentMetrics | null>>;
  private recentByFirst?: Map<number, DataLoader<string, Task[]>>;
  private childrenByFirst?: Map<number, DataLoader<string, Task[]>>;
  private stateHistoryByFirst?: Map<number, DataLoader<string, AgentState[]>>;
  private checkpointsByFirst?: Map<number, DataLoader<string, TaskCheckpoint[]>>;

  constructor(
    private readonly runtime: AgentRuntime,
    private readonly visibility: { createdBy: string | null },
  ) {
    this.shared = sharedReadsOf(runtime);
  }

  /** A batch function reading through the shared reads under `key` (which names it completely). */
  private sharedBatch<V>(key: string, read: (ids: readonly string[]) => Promise<V[]>) {
    return inOrder((ids: readonly string[]) => this.shared.load(key, ids, read));
  }

  allAgents() {
    return this.shared.one('agents:all', () => this.runtime.listAgents());
  }

  get tasks() {
    return (this.tasksLoader ??= new ListLoader(
      this.sharedBatch('tasks', (ids) => this.runtime.getTasks(ids)),
    ));
  }

  get agents() {
    return (this.agentsLoader ??= new ListLoader(
      this.sharedBatch('agents', (ids) => this.runtime.getAgents(ids)),
    ));
  }

  get states() {
    return (this.statesLoader ??= new ListLoader(
      this.sharedBatch('states', (ids) => this.runtime.getAgentStates(ids)),
    ));
  }

  get tokenUsage() {
    return (this.tokenUsageLoader ??= new ListLoader(
      this.sharedBatch('tokenUsage', (ids) => this.runtime.getTokenUsage(ids)),
    ));
  }

  get workflowSteps() {
    return (this.workflowStepsLoader ??= new ListLoader(
      this.sharedBatch('workflowSteps', (ids) => this.runtime.getWorkflowSteps(ids)),
    ));
  }

  metrics(range: { from?: Date | null; to?: Date | null }) {
    const timeRange: TimeRange = { from: range.from ?? null, to: range.to ?? null };
    const key = rangeKey(range);
    return loaderFor((this.metricsByRange ??= new Map()), key, () =>
      this.sharedBatch(`metrics:${key}`, (ids) => this.runtime.getMetricsMany(ids, timeRange)),
    );
  }

  recentTasks(first: number) {
    const key = `recentTasks:${JSON.stringify([first, this.visibility.createdBy])}`;
    return loaderFor((this.recentByFirst ??= new Map()), first, () =>
      inOrder(async (ids) => {
        const lists = await this.shared.load(key, ids, (all) =>
          this.runtime.getRecentTasks(all, first, this.visibility),
        );
        // The same tasks are often asked for again by id (Task.agent → Agent.recentTasks ...).
        for (const task of lists.flat()) this.tasks.prime(task.id, task);
        return lists;
      }),
    );
  }

  children(first: number) {
    return loaderFor((this.childrenByFirst ??= new Map()), first, () =>
      this.sharedBatch(`children:${first}`, (ids) => this.runtime.getChildren(ids, first)),
    );
  }

  stateHistory(first: number) {
    return loaderFor((this.stateHistoryByFirst ??= new Map()), first, () =>
      this.sharedBatch(`stateHistory:${first}`, (ids) => this.runtime.getStateHistories(ids, first)),
    );
  }

  checkpoints(first: number) {
    return loaderFor((this.checkpointsByFirst ??= new Map()), first, () =>
      this.sharedBatch(`checkpoints:${first}`, (ids) => this.runtime.getTaskCheckpoints(ids, first)),
    );
  }

  preload(loader: DataLoader<string, unknown>, ids: readonly string[]): Promise<void> {
    return loader instanceof ListLoader ? loader.preload(ids) : loader.loadMany(ids).then(() => undefined);
  }

  now<V>(loader: DataLoader<string, V>, id: string): V | Promise<V> {
    return loader instanceof ListLoader ? (loader as ListLoader<V>).now(id) : loader.load(id);
  }

  clearAll() {
    const made = [
      this.agentsLoader,
      this.tasksLoader,
      this.statesLoader,
      this.tokenUsageLoader,
      this.workflowStepsLoader,
      ...(this.metricsByRange?.values() ?? []),
      ...(this.recentByFirst?.values() ?? []),
      ...(this.childrenByFirst?.values() ?? []),
      ...(this.stateHistoryByFirst?.values() ?? []),
      ...(this.checkpointsByFirst?.values() ?? []),
    ];
    for (const loader of made) loader?.clearAll();
  }
}

/**
 * A DataLoader that also takes a whole list of ids at once (`preload`) and then gives their values
 * without a promise (`now`). A preload into a loader nothing has asked yet calls the batch
 * function itself, once for all the ids: loadMany would make three promises and a cache entry per
 * id (a fifth of what the 200-agent dashboard allocated). The values it keeps are the loader's
 * cache for those ids (`load` answers from them), so an operation still sees one value per id.
 */
class ListLoader<V> extends DataLoader<string, V> {
  /** Values preloaded, by id. */
  private known?: Map<string, V>;
  /** Whether load() has run: the cache then holds what preload must not shadow. */
  private asked = false;
  /** Bumped by clearAll(): a preload that was reading meanwhile keeps nothing. */
  private generation = 0;

  constructor(private readonly batch: (ids: readonly string[]) => Promise<V[]>) {
    super(batch);
  }

  override load(id: string): Promise<V> {
    if (this.known?.has(id)) return Promise.resolve(this.known.get(id) as V);
    this.asked = true;
    return super.load(id);
  }

  override clearAll(): this {
    this.known = undefined;
    this.asked = false;
    this.generation += 1;
    return super.clearAll();
  }

  override prime(id: string, value: V | PromiseLike<V> | Error): this {
    this.asked = true;
    return super.prime(id, value);
  }

  override clear(id: string): this {
    this.known?.delete(id);
    return super.clear(id);
  }

  now(id: string): V | Promise<V> {
    return this.known?.has(id) ? (this.known.get(id) as V) : this.load(id);
  }

  async preload(ids: readonly string[]): Promise<void> {
    const generation = this.generation;
    if (this.asked) {
      // Some ids may be cached already: read through the cache, as loadMany does.
      const values = await this.loadMany(ids);
      if (generation === this.generation) this.keep(ids, values);
      return;
    }
    let values: V[];
    try {
      values = await this.batch(ids);
    } catch (error) {
      // As DataLoader does: the failure is what these ids give for the rest of the operation.
      if (generation === this.generation) for (const id of ids) this.prime(id, error as Error);
      return;
    }
    if (generation === this.generation) this.keep(ids, values);
  }

  private keep(ids: readonly string[], values: readonly (V | Error)[]): void {
    const known = (this.known ??= new Map());
    for (let index = 0; index < ids.length; index++) {
      const value = values[index]!;
      if (!(value instanceof Error)) known.set(ids[index]!, value);
    }
  }
}

/** The loader kept under `key`, made with `batch` the first time it is asked for. */
function loaderFor<K, V>(
  loaders: Map<K, DataLoader<string, V>>,
  key: K,
  batch: () => (ids: readonly string[]) => Promise<V[]>,
): DataLoader<string, V> {
  let loader = loaders.get(key);
  if (!loader) {
    loader = new ListLoader(batch());
    loaders.set(key, loader);
  }
  return loader;
}

/** `createdBy`: the creator whose tasks lists show (taskCreatorFilter), null for everyone's. */
export function createLoaders(runtime: AgentRuntime, visibility: { createdBy: string | null }): Loaders {
  return new OperationLoaders(runtime, visibility);
}
