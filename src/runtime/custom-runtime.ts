import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { PROVIDER_NOT_CONFIGURED_MESSAGE, type Config } from '../config.js';
import {
  agentStore,
  registerAgentInput,
  type Agent,
  type RegisterAgentInput,
} from '../domains/agent/agent.js';
import {
  eventCursor,
  eventFilter,
  eventSubscriptionFilter,
  eventStore,
  type AgentEvent,
  type EventFilter,
} from '../domains/event/event.js';
import {
  logCursor,
  logFilter,
  logStore,
  logSubscriptionFilter,
  type LogEntry,
  type LogFilter,
} from '../domains/log/log.js';
import {
  metricBucketsInput,
  metricStore,
  timeRange,
  type AgentMetrics,
  type MetricBucket,
  type MetricBucketsInput,
  type TimeRange,
  type TokenUsage,
} from '../domains/metric/metric.js';
import { pageSize, type Page } from '../domains/pagination.js';
import { stateStore, updateStateInput, type AgentState } from '../domains/state/state.js';
import {
  executeTaskInput,
  isFinal,
  signalTaskInput,
  taskListFilter,
  taskStore,
  throttleMsInput,
  type ExecuteTaskInput,
  type Task,
  type TaskCountFilter,
  type TaskListFilter,
} from '../domains/task/task.js';
import { apiKeyStore, type ApiKeyStore } from '../domains/api-key/api-key.js';
import { taskStepStore } from '../domains/task/steps.js';
import { taskCheckpointOf, taskCheckpointStore, type TaskCheckpoint } from '../domains/task/checkpoints.js';
import type { GraphAction } from '../agents/actions.js';
import { ActionRegistry } from '../agents/registry.js';
import { builtInActions } from '../agents/builtin/index.js';
import { analystActions } from '../agents/builtin/analyst.js';
import { plannerActions } from '../agents/builtin/model-actions.js';
import { badInput, CasError, ErrorCode, notFound } from '../errors.js';
import {
  checkAgentsKnown,
  executeWorkflowInput,
  isFinalRun,
  validateDefinition,
  workflowRunFilter,
  workflowRunId,
  workflowStore,
  type ExecuteWorkflowInput,
  type WorkflowRun,
  type WorkflowRunFilter,
  type WorkflowStep,
} from '../domains/workflow/workflow.js';
import type { EventType } from '../domains/event/event.js';
import type { ChangeFeed } from '../feed/change-feed.js';
import { FINAL_EVENT_TYPES, LiveStreams } from './live.js';
import { CasMetrics, type RuntimeReadings } from '../observability/metrics.js';
import { currentTraceParent } from '../observability/tracing.js';
import { sqlFunctionsRunAgainOnConflict, tracedSqlFunctions } from '../db/sql-functions.js';
import type { Backend } from './backend.js';
import type { AgentReads } from './handlers.js';
import type { DefinedWorkflow } from '../domains/workflow/define.js';
import type { Logger } from '../logger.js';
import { VERSION } from '../version.js';
import { agentId, agentIds, parseInput, taskId, taskIds, userId } from '../validation.js';
import type {
  Actor,
  AgentRuntime,
  EventSubscriptionFilter,
  HealthStatus,
  LogSubscriptionFilter,
  StreamOptions,
  WaitOptions,
} from './agent-runtime.js';
import type { ActionMap } from '../agents/actions.js';
import type { ActionDescription, ResolvedAction } from '../agents/registry.js';
import type { LoadedAgent } from '../agents/loader.js';
import { RetentionJob } from './retention.js';
import { retentionStore, type PruneBatch } from '../domains/retention/retention.js';
import { Worker, type RunningAttempts } from './worker.js';

/** Readers of the event log re-read at least this often when no notice arrives. */
const EVENT_POLL_MS = 1000;
/** Batches of events a subscriber may fall behind before its stream ends with SUBSCRIPTION_OVERFLOW. */
const SUBSCRIBER_CAPACITY = 1000;

/** Entries ctx.read.logs and ctx.read.tasks return when not told. */
const AGENT_READS_DEFAULT = 20;

/** How long one database answer serves the health checks of this process. */
export const HEALTH_CHECK_REUSE_MS = 1000;

interface DatabaseCheck {
  reachable: boolean;
  applied: boolean;
  latencyMs: number | null;
}

export interface CustomRuntimeOptions {
  config: Config;
  backend: Backend;
  logger: Logger;
  /** Agents in code (CAS_AGENTS_DIR): registered (upserted) with their actions before workers start. */
  agents?: readonly LoadedAgent[];
  /** Workflows in code (CAS_WORKFLOWS_DIR), started by id. */
  workflows?: readonly DefinedWorkflow[];
  /** This process's Prometheus metrics; a new registry when absent. */
  processMetrics?: CasMetrics;
}

/**
 * The runtime on the SQL functions in supabase/migrations: every state change is one function call
 * (one transaction with its event row); handlers run in this process's workers.
 */
export class CustomRuntime implements AgentRuntime {
  readonly name: string = 'custom';
  readonly apiKeys: ApiKeyStore;
  readonly processMetrics: CasMetrics;
  private readonly agents;
  private readonly tasks;
  private readonly states;
  private readonly logs;
  private readonly metrics;
  private readonly events;
  private readonly steps;
  private readonly checkpoints;
  private readonly workflows;
  private readonly feed: ChangeFeed;
  private readonly backend: Backend;
  private readonly live: LiveStreams;
  private readonly registry = new ActionRegistry();
  private readonly workers: Worker[] = [];
  /** Started by processes that run workers (API-only processes leave history alone). */
  private readonly retention: RetentionJob;
  private readonly startedAt = Date.now();
  private initialized: Promise<void> | null = null;
  private lastDatabaseCheck: { at: number; answer: Promise<DatabaseCheck> } | null = null;
  private shutDown: Promise<void> | null = null;

  constructor(private readonly options: CustomRuntimeOptions) {
    this.backend = options.backend;
    const sql = tracedSqlFunctions(
      sqlFunctionsRunAgainOnConflict(options.backend.sql, (fn, sqlState, run) =>
        options.logger.warn(
          { fn, sqlState, run },
          'database call rolled back by a conflict; running it again',
        ),
      ),
      'postgresql',
    );
    this.agents = agentStore(sql);
    this.tasks = taskStore(sql);
    this.states = stateStore(sql);
    this.logs = logStore(sql);
    this.metrics = metricStore(sql);
    this.events = eventStore(sql);
    this.steps = taskStepStore(sql);
    this.checkpoints = taskCheckpointStore(sql);
    this.workflows = workflowStore(sql);
    this.apiKeys = apiKeyStore(sql);
    this.feed = options.backend.feed;
    for (const [agent, actions] of Object.entries(builtInActions)) this.registry.define(agent, actions);
    this.registry.define(
      'planner',
      plannerActions((agent, action) => this.registry.resolve(agent, action) !== null),
    );
    this.registry.define(
      'analyst',
      analystActions({
        agentIds: async () => (await this.agents.list()).map((agent) => agent.id),
        metrics: (ids, range) => this.metrics.forAgents(ids, range),
        durations: (agent, range, limit) => this.metrics.series(agent, 'task_duration_ms', range, limit),
      }),
    );
    this.retention = new RetentionJob(retentionStore(sql), options.config.retentionDays, options.logger);
    this.live = new LiveStreams(
      this.feed,
      { events: this.events, logs: this.logs, tasks: this.tasks, agents: this.agents },
      { pollMs: EVENT_POLL_MS, subscriberCapacity: SUBSCRIBER_CAPACITY },
      options.logger,
    );
    this.processMetrics = options.processMetrics ?? new CasMetrics();
    this.processMetrics.readFrom(() => this.readings());
  }

  /** ctx.read of a task of `agentId`: that agent's metrics, logs and tasks, newest first. */
  private agentReads(agentId: string): AgentReads {
    return {
      metrics: (range = {}) => this.getMetrics(agentId, range),
      logs: async ({ first = AGENT_READS_DEFAULT, levels } = {}) =>
        (await this.getLogs({ agentId, levels, first, newestFirst: true })).items,
      tasks: async ({ first = AGENT_READS_DEFAULT, statuses } = {}) =>
        (await this.listTasks({ agentId, statuses, first })).items,
    };
  }

  /** Shared state for the gauges of GET /metrics, read at scrape time. */
  private async readings(): Promise<RuntimeReadings> {
    const [queue, feedLagEvents] = await Promise.all([this.tasks.queueDepth(), this.live.feedLag()]);
    return { queue, feedLagEvents, pool: this.backend.poolStats() };
  }

  initialize(): Promise<void> {
    this.initialized ??= this.start();
    return this.initialized;
  }

  private async start(): Promise<void> {
    const { config, logger } = this.options;
    await this.backend.prepare();
    await this.feed.start();
    this.live.start();
    for (const agent of this.options.agents ?? []) {
      await this.registerAgent(agent.registration, { actions: agent.actions });
    }
    if (this.options.agents?.length) {
      logger.info(
        { agents: this.options.agents.map((agent) => agent.registration.id) },
        `registered ${this.options.agents.length} agent(s) from code`,
      );
    }
    const running: RunningAttempts = new Map();
    for (let index = 0; index < config.workers; index += 1) {
      const worker = new Worker(
        {
          id: `${hostname()}:${process.pid}:${index}:${randomUUID().slice(0, 8)}`,
          concurrency: config.workerConcurrency,
          leaseMs: config.taskLeaseMs,
          pollIntervalMs: config.workerPollMs,
          maxRunningPerCaller: config.maxRunningPerCaller,
          running,
        },
        this.feed,
        this.tasks,
        {
          logs: this.logs,
          steps: this.steps,
          checkpoints: this.checkpoints,
          graphOf: (action) => this.graphOf(action),
          maxCallDepth: config.maxCallDepth,
          logger,
          metrics: this.processMetrics,
          resolveAction: (agent, action) => this.registry.resolve(agent, action),
          reads: (agent) => this.agentReads(agent),
          state: {
            get: (agent) => this.getAgentState(agent),
            update: (agent, data, expectedVersion) => this.updateAgentState(agent, data, { expectedVersion }),
          },
          abortGraceMs: config.abortGraceMs,
          progressIntervalMs: 100,
          llm: config.llm,
          logIntervalMs: 50,
        },
        logger,
      );
      worker.start();
      this.workers.push(worker);
    }
    if (config.workers > 0) this.retention.start();
  }

  /**
   * The graph an action runs as: in this runtime only a graph action's own (a `run` action calls
   * its handler). LangGraphRuntime runs every action as a graph.
   */
  protected graphOf(action: ResolvedAction): GraphAction | null {
    return action.graph;
  }

  async getTaskCheckpoints(taskIds: readonly string[], limit: number): Promise<TaskCheckpoint[][]> {
    return (await this.checkpoints.histories(taskIds, limit)).map((list) => list.map(taskCheckpointOf));
  }

  shutdown(options: { deadlineMs?: number } = {}): Promise<void> {
    this.shutDown ??= (async () => {
      await this.initialized?.catch(() => undefined);
      const deadline = options.deadlineMs ?? this.options.config.shutdownTimeoutMs;
      await Promise.all(this.workers.map((worker) => worker.stop(deadline)));
      await this.retention.stop();
      this.live.stop();
      await this.feed.stop();
      await this.backend.close();
    })();
    return this.shutDown;
  }

  async healthCheck(): Promise<HealthStatus> {
    const { reachable, applied, latencyMs } = await this.databaseCheck();
    return {
      ok: reachable && applied,
      database: reachable ? 'ok' : 'unreachable',
      mode: this.options.config.mode,
      runtime: this.name,
      version: VERSION,
      uptimeSeconds: (Date.now() - this.startedAt) / 1000,
      databaseLatencyMs: latencyMs,
      migrationsApplied: applied,
    };
  }

  /**
   * The database's answer to the readiness check: one round trip, shared by every health check in
   * this process within HEALTH_CHECK_REUSE_MS of it (an answer still on its way included), so load
   * balancers and dashboards polling health cost the database at most one query a second.
   */
  private databaseCheck(): Promise<DatabaseCheck> {
    const now = Date.now();
    if (this.lastDatabaseCheck && now - this.lastDatabaseCheck.at < HEALTH_CHECK_REUSE_MS)
      return this.lastDatabaseCheck.answer;
    const answer = (async (): Promise<DatabaseCheck> => {
      const started = performance.now();
      try {
        const applied = await this.backend.migrationsApplied();
        return { reachable: true, applied, latencyMs: performance.now() - started };
      } catch (error) {
        this.options.logger.warn({ err: error }, 'health check: database unreachable');
        return { reachable: false, applied: false, latencyMs: null };
      }
    })();
    this.lastDatabaseCheck = { at: now, answer };
    return answer;
  }

  // Agents

  async registerAgent(
    input: RegisterAgentInput,
    options: Actor & { actions?: ActionMap } = {},
  ): Promise<Agent> {
    const parsed = parseInput(registerAgentInput, input);
    const agent = await this.agents.register(parsed, parseInput(userId, options.userId));
    if (options.actions) this.registry.define(agent.id, options.actions);
    return agent;
  }

  /** Adds actions for an agent in this process without touching the database. */
  defineActions(agentIdValue: string, actions: ActionMap): void {
    this.registry.define(parseInput(agentId, agentIdValue), actions);
  }

  async unregisterAgent(id: string, actor: Actor = {}): Promise<Agent> {
    return this.agents.unregister(parseInput(agentId, id), parseInput(userId, actor.userId));
  }

  listAgents(): Promise<Agent[]> {
    return this.agents.list();
  }

  async getAgentStatus(id: string): Promise<Agent> {
    const [agent] = await this.getAgents([parseInput(agentId, id)]);
    if (!agent) throw notFound('agent', id);
    return agent;
  }

  async getAgents(ids: readonly string[]): Promise<(Agent | null)[]> {
    return inOrder(ids, await this.agents.list(parseInput(agentIds, ids)), (agent) => agent.id);
  }

  actionsOf(agent: string): string[] {
    return this.registry.names(agent);
  }

  describeActions(agent: string): ActionDescription[] {
    return this.registry.describe(agent);
  }

  // Tasks

  async executeTask(input: ExecuteTaskInput, options: WaitOptions = {}): Promise<Task> {
    const request = parseInput(executeTaskInput, input);
    const action = this.registry.resolve(request.agentId, request.action);
    if (!action) {
      await this.getAgentStatus(request.agentId);
      throw badInput(`agent "${request.agentId}" has no action "${request.action}"`, {
        actions: this.actionsOf(request.agentId),
      });
    }
    const parsedInput = action.parse(request.input ?? null);
    if (action.modelBacked && !this.options.config.llm) {
      throw new CasError(ErrorCode.PROVIDER_NOT_CONFIGURED, PROVIDER_NOT_CONFIGURED_MESSAGE, {
        variables: ['CAS_LLM_BASE_URL', 'CAS_LLM_MODEL', 'CAS_LLM_API_KEY'],
      });
    }
    const task = await this.tasks.enqueue({ ...request, input: parsedInput }, currentTraceParent());
    for (const worker of this.workers) worker.nudge();
    if (!request.wait) return task;
    return this.waitUntilFinal(task, options.signal);
  }

  /**
   * The task once it is final, or as it is when the wait ends first: after CAS_WAIT_TIMEOUT_MS, or
   * at once when `signal` aborts (the client went away; nothing more is read for it). Waits for the
   * task's final event on the process's event tail, which serves every waiter and subscription with
   * one read per wake-up, so a waiting request costs no query of its own until the end.
   */
  private async waitUntilFinal(task: Task, signal?: AbortSignal): Promise<Task> {
    if (isFinal(task.status) || signal?.aborted) return task;
    // From the log's start: a final event written before this subscription is replayed, not missed.
    const finalEvent = this.live.events$({ taskId: task.id, types: [...FINAL_EVENT_TYPES] }, 0);
    const stopWaiting = () => void finalEvent.return?.();
    const cap = setTimeout(stopWaiting, this.options.config.waitTimeoutMs);
    signal?.addEventListener('abort', stopWaiting, { once: true });
    try {
      await finalEvent.next();
    } finally {
      clearTimeout(cap);
      signal?.removeEventListener('abort', stopWaiting);
      stopWaiting();
    }
    if (signal?.aborted) return task;
    return (await this.live.currentTask(task.id)) ?? task;
  }

  /** Subscribers of this process's event and log tails (streams, subscriptions, waiting requests). */
  liveSubscriberCounts(): { events: number; logs: number } {
    return this.live.subscriberCounts();
  }

  async getTasks(ids: readonly string[]): Promise<(Task | null)[]> {
    return inOrder(ids, await this.tasks.get(parseInput(taskIds, ids)), (task) => task.id);
  }

  async listTasks(filter: TaskListFilter): Promise<Page<Task>> {
    return this.tasks.page(parseInput(taskListFilter, filter));
  }

  async countTasks(filter: TaskCountFilter): Promise<number> {
    const parsed = parseInput(
      taskListFilter.pick({ agentId: true, statuses: true, createdBy: true }),
      filter,
    );
    return this.tasks.count(parsed);
  }

  async getRecentTasks(
    ids: readonly string[],
    limit: number,
    visibility: { createdBy?: string | null } = {},
  ): Promise<Task[][]> {
    const first = parseInput(pageSize, limit);
    const createdBy = parseInput(taskListFilter.shape.createdBy, visibility.createdBy);
    const tasks = await this.tasks.recent(parseInput(agentIds, ids), first, createdBy);
    return ids.map((id) => tasks.filter((task) => task.agentId === id));
  }

  async *streamTask(id: string, options: StreamOptions = {}): AsyncIterable<AgentEvent> {
    const task = parseInput(taskId, id);
    const throttleMs = parseInput(throttleMsInput, options.throttleMs);
    const [existing] = await this.tasks.get([task]);
    if (!existing) throw notFound('task', id);
    const afterSeq = options.after ? await this.events.positionOf(options.after) : 0;
    const events = this.live.taskEvents(task, afterSeq, { throttleMs });
    // Resumed past the final event of a finished task: nothing more will come.
    if (isFinal(existing.status)) {
      const [next] = await this.events.list({ taskId: task, afterSeq, limit: 1 });
      if (!next) return;
    }
    yield* events;
  }

  /**
   * A task's output deltas (task_output events) after the cursor `after`, from its first without
   * one, then live; ends after the task's final event. The same stream as streamTask, filtered.
   */
  async *streamTaskOutput(id: string, options: { after?: string | null } = {}): AsyncIterable<AgentEvent> {
    const task = parseInput(taskId, id);
    const [existing] = await this.tasks.get([task]);
    if (!existing) throw notFound('task', id);
    const afterSeq = options.after ? await this.events.positionOf(options.after) : 0;
    if (isFinal(existing.status)) {
      const [next] = await this.events.list({ taskId: task, afterSeq, limit: 1 });
      if (!next) return;
    }
    yield* this.live.taskEvents(task, afterSeq, { types: ['task_output'] });
  }

  async *watchTask(id: string, options: { throttleMs?: number | null } = {}): AsyncIterable<Task> {
    const task = parseInput(taskId, id);
    const throttleMs = parseInput(throttleMsInput, options.throttleMs);
    let found = false;
    for await (const snapshot of this.live.task(task, { throttleMs })) {
      found = true;
      yield snapshot;
    }
    if (!found) throw notFound('task', id);
  }

  async *subscribeEvents(filter: EventSubscriptionFilter = {}): AsyncIterable<AgentEvent> {
    const parsed = parseInput(eventSubscriptionFilter, filter);
    const afterSeq = parsed.after ? await this.events.positionOf(parsed.after) : null;
    yield* this.live.events$(parsed, afterSeq);
  }

  async *watchAgents(agent?: string | null, options: { after?: string | null } = {}): AsyncIterable<Agent> {
    const id = agent == null ? null : parseInput(agentId, agent);
    if (id) await this.getAgentStatus(id);
    const afterSeq = options.after ? await this.events.positionOf(options.after) : null;
    yield* this.live.agents(id, afterSeq);
  }

  async *subscribeLogs(filter: LogSubscriptionFilter = {}): AsyncIterable<LogEntry> {
    const { after, ...streamFilter } = parseInput(logSubscriptionFilter, filter);
    const afterId = after ? await this.logs.positionOf(after) : null;
    yield* this.live.logs$(streamFilter, afterId);
  }

  async cancelTask(id: string, actor: Actor = {}): Promise<Task> {
    const task = await this.tasks.cancel(parseInput(taskId, id), parseInput(userId, actor.userId));
    // Stop it here at once if it runs in this process; other processes learn through the feed.
    if (task.status === 'running') for (const worker of this.workers) worker.cancel(task.id);
    return task;
  }

  async signalTask(id: string, name: string, payload: unknown = null, actor: Actor = {}): Promise<Task> {
    const signal = parseInput(signalTaskInput, { taskId: id, name, payload, userId: actor.userId });
    return this.tasks.signal(signal.taskId, signal.name, signal.payload, signal.userId);
  }

  async getChildren(parentIds: readonly string[], limit: number): Promise<Task[][]> {
    const ids = parseInput(taskIds, parentIds);
    const children = await this.tasks.children(ids, parseInput(pageSize, limit));
    return ids.map((id) => children.filter((child) => child.parentId === id));
  }

  // State

  async getAgentState(agent: string): Promise<AgentState | null> {
    const [state] = await this.getAgentStates([agent]);
    if (!state) await this.getAgentStatus(agent);
    return state ?? null;
  }

  async getTokenUsage(ids: readonly string[]): Promise<(TokenUsage | null)[]> {
    return inOrder(ids, await this.metrics.tokenUsage(parseInput(taskIds, ids)), (usage) => usage.taskId);
  }

  async getAgentStates(ids: readonly string[]): Promise<(AgentState | null)[]> {
    return inOrder(ids, await this.states.active(parseInput(agentIds, ids)), (state) => state.agentId);
  }

  async updateAgentState(
    agent: string,
    data: unknown,
    options: Actor & { expectedVersion?: number | null } = {},
  ): Promise<AgentState> {
    const id = parseInput(agentId, agent);
    const input = parseInput(updateStateInput, { data, expectedVersion: options.expectedVersion });
    return this.states.update(id, input, parseInput(userId, options.userId));
  }

  async resetAgentState(agent: string, actor: Actor = {}): Promise<boolean> {
    return this.states.reset(parseInput(agentId, agent), parseInput(userId, actor.userId));
  }

  async getStateHistories(ids: readonly string[], limit: number): Promise<AgentState[][]> {
    return this.states.histories(parseInput(agentIds, ids), parseInput(pageSize, limit));
  }

  async getStateHistory(agent: string, options: { limit?: number } = {}): Promise<AgentState[]> {
    const id = parseInput(agentId, agent);
    const history = await this.states.history(id, parseInput(pageSize, options.limit));
    if (history.length === 0) await this.getAgentStatus(id);
    return history;
  }

  // Observability

  async getMetrics(agent: string, range: TimeRange = {}): Promise<AgentMetrics> {
    const [metrics] = await this.getMetricsMany([agent], range);
    if (!metrics) throw notFound('agent', agent);
    return metrics;
  }

  async getMetricsMany(ids: readonly string[], range: TimeRange = {}): Promise<(AgentMetrics | null)[]> {
    const rows = await this.metrics.forAgents(parseInput(agentIds, ids), parseInput(timeRange, range));
    return inOrder(ids, rows, (metrics) => metrics.agentId);
  }

  async getMetricSeries(agent: string, metricName: string, options: TimeRange & { limit?: number } = {}) {
    const id = parseInput(agentId, agent);
    const name = parseInput(z.string().min(1).max(200), metricName);
    const limit = parseInput(z.number().int().min(1).max(10_000).default(500), options.limit);
    return this.metrics.series(
      id,
      name,
      parseInput(timeRange, { from: options.from, to: options.to }),
      limit,
    );
  }

  async getLogs(filter: LogFilter = {}) {
    return this.logs.page(parseInput(logFilter, filter));
  }

  async countLogs(filter: LogFilter = {}) {
    return this.logs.count(parseInput(logFilter, filter));
  }

  async getLogHead(): Promise<string> {
    return logCursor({ id: await this.logs.head() });
  }

  async getEventHistory(filter: EventFilter = {}) {
    return this.events.page(parseInput(eventFilter, filter));
  }

  async countEvents(filter: EventFilter = {}) {
    return this.events.count(parseInput(eventFilter, filter));
  }

  async getEventHead(): Promise<string> {
    return eventCursor({ seq: await this.events.head() });
  }

  async getMetricBuckets(input: MetricBucketsInput): Promise<MetricBucket[]> {
    const parsed = parseInput(metricBucketsInput, input);
    const buckets = await this.metrics.buckets(parsed);
    if (buckets.length === 0) await this.getAgentStatus(parsed.agentId);
    return buckets;
  }

  /**
   * Deletes history older than CAS_RETENTION_DAYS now, in batches of `batchSize` rows per kind, as
   * the workers' hourly run does (nothing when CAS_RETENTION_DAYS is 0).
   */
  async pruneHistory(batchSize?: number): Promise<PruneBatch> {
    if (this.options.config.retentionDays === 0)
      return { skipped: false, tasks: 0, events: 0, logs: 0, metricPoints: 0, workflowRuns: 0 };
    return this.retention.runOnce(batchSize);
  }

  // Workflows

  listWorkflows(): readonly DefinedWorkflow[] {
    return this.options.workflows ?? [];
  }

  async executeWorkflow(input: ExecuteWorkflowInput, actor: Actor = {}): Promise<WorkflowRun> {
    const request = parseInput(executeWorkflowInput, input);
    const registered = request.workflowId ? this.registeredWorkflow(request.workflowId) : null;
    const definition = validateDefinition(
      registered ? { steps: registered.steps } : request.definition,
      (agent, action) => this.registry.resolve(agent, action) !== null,
    );
    const agentIdsUsed = [...new Set(definition.steps.map((step) => step.agentId))];
    const known = await this.agents.list(agentIdsUsed);
    checkAgentsKnown(definition, new Set(known.map((agent) => agent.id)));
    const run = await this.workflows.start(
      definition,
      request.input ?? null,
      request.failPolicy ?? registered?.failPolicy ?? 'fail_fast',
      parseInput(userId, actor.userId) ?? null,
      currentTraceParent(),
    );
    for (const worker of this.workers) worker.nudge();
    return run;
  }

  private registeredWorkflow(id: string): DefinedWorkflow {
    const found = this.listWorkflows().find((workflow) => workflow.id === id);
    if (!found) throw notFound('workflow', id);
    return found;
  }

  async getWorkflowRuns(ids: readonly string[]): Promise<(WorkflowRun | null)[]> {
    return inOrder(ids, await this.workflows.get(parseInput(taskIds, ids)), (run) => run.id);
  }

  async getWorkflowSteps(runIds: readonly string[]): Promise<WorkflowStep[][]> {
    const steps = await this.workflows.steps(parseInput(taskIds, runIds));
    return runIds.map((id) => steps.filter((step) => step.runId === id));
  }

  async listWorkflowRuns(filter: WorkflowRunFilter): Promise<Page<WorkflowRun>> {
    return this.workflows.page(parseInput(workflowRunFilter, filter));
  }

  async cancelWorkflowRun(id: string, actor: Actor = {}): Promise<WorkflowRun> {
    const run = await this.workflows.cancel(
      parseInput(workflowRunId, id),
      parseInput(userId, actor.userId) ?? null,
    );
    return run;
  }

  private async existingRun(id: string): Promise<WorkflowRun> {
    const [run] = await this.workflows.get([parseInput(workflowRunId, id)]);
    if (!run) throw notFound('workflow run', id);
    return run;
  }

  async *streamWorkflow(id: string, options: { after?: string | null } = {}): AsyncIterable<AgentEvent> {
    const run = await this.existingRun(id);
    const afterSeq = options.after ? await this.events.positionOf(options.after) : 0;
    // Subscribed before the check below, so a final event written in between is not missed.
    const events = this.live.events$({ workflowRunId: run.id }, afterSeq);
    try {
      if (isFinalRun(run.status)) {
        // Resumed past the final event of a finished run: nothing more will come.
        const [next] = await this.events.list({ workflowRunId: run.id, afterSeq, limit: 1 });
        if (!next) return;
      }
      for await (const event of events) {
        yield event;
        if (FINAL_WORKFLOW_EVENT_TYPES.has(event.type)) return;
      }
    } finally {
      await events.return?.();
    }
  }

  async *watchWorkflowRun(id: string): AsyncIterable<WorkflowRun> {
    const head = await this.events.head();
    const run = await this.existingRun(id);
    yield run;
    if (isFinalRun(run.status)) return;
    const events = this.live.events$({ workflowRunId: run.id }, head);
    try {
      for await (const event of events) {
        const [current] = await this.workflows.get([run.id]);
        if (current) yield current;
        if (FINAL_WORKFLOW_EVENT_TYPES.has(event.type)) return;
      }
    } finally {
      await events.return?.();
    }
  }
}

/** The events that end a workflow run's stream. */
const FINAL_WORKFLOW_EVENT_TYPES: ReadonlySet<EventType> = new Set([
  'workflow_succeeded',
  'workflow_failed',
  'workflow_cancelled',
]);

/** Lines `rows` up with `ids` (null where absent), as batch loaders need. */
function inOrder<T>(ids: readonly string[], rows: readonly T[], keyOf: (row: T) => string): (T | null)[] {
  const byKey = new Map(rows.map((row) => [keyOf(row), row]));
  return ids.map((id) => byKey.get(id) ?? null);
}
