import type { DatabaseMode } from '../config.js';
import type { Agent, RegisterAgentInput } from '../domains/agent/agent.js';
import type { AgentEvent, EventFilter, EventType } from '../domains/event/event.js';
import type { LogEntry, LogFilter, LogLevel } from '../domains/log/log.js';
import type {
  AgentMetrics,
  MetricBucket,
  MetricBucketsInput,
  MetricPoint,
  TimeRange,
  TokenUsage,
} from '../domains/metric/metric.js';
import type { Page } from '../domains/pagination.js';
import type { AgentState } from '../domains/state/state.js';
import type { ApiKeyStore } from '../domains/api-key/api-key.js';
import type { ExecuteTaskInput, Task, TaskCountFilter, TaskListFilter } from '../domains/task/task.js';
import type { ActionMap } from '../agents/actions.js';
import type { TaskCheckpoint } from '../domains/task/checkpoints.js';
import type { ActionDescription } from '../agents/registry.js';
import type { CasMetrics } from '../observability/metrics.js';
import type { DefinedWorkflow } from '../domains/workflow/define.js';
import type {
  ExecuteWorkflowInput,
  WorkflowRun,
  WorkflowRunFilter,
  WorkflowStep,
} from '../domains/workflow/workflow.js';

/** Who asked for a change; recorded as user_id on the events it writes. */
export interface Actor {
  userId?: string;
}

export interface HealthStatus {
  ok: boolean;
  database: 'ok' | 'unreachable';
  mode: DatabaseMode;
  runtime: string;
  version: string;
  uptimeSeconds: number;
  /**
   * Round trip of the readiness query; null when the database did not answer. The answer is reused
   * for up to a second (HEALTH_CHECK_REUSE_MS), so polling health does not load the database.
   */
  databaseLatencyMs: number | null;
  migrationsApplied: boolean;
}

export interface StreamOptions {
  /** Resume after this event cursor instead of from the task's first event. */
  after?: string | null;
  /** Coalesce progress for this consumer: at most one progress item per this many ms. */
  throttleMs?: number | null;
}

export interface WaitOptions {
  /** Aborted when the caller no longer wants the answer (the HTTP request was aborted). */
  signal?: AbortSignal;
}

export interface EventSubscriptionFilter {
  agentId?: string | null;
  taskId?: string | null;
  types?: readonly EventType[] | null;
  /** Replay after this cursor, then live; without it, live only. */
  after?: string | null;
}

export interface LogSubscriptionFilter {
  agentId?: string | null;
  levels?: readonly LogLevel[] | null;
  /** Replay after this cursor (a LogEntry.cursor), then live; without it, live only. */
  after?: string | null;
}

/**
 * The CAS runtime. Reads accept lists of ids and answer in the same order (null where absent) so
 * the API can batch them; every failure a caller can cause is a CasError with a code.
 */
export interface AgentRuntime {
  readonly name: string;
  /** Prometheus metrics of this process (GET /metrics): its workers' tasks, its API's operations. */
  readonly processMetrics: CasMetrics;
  /** API keys, stored beside the runtime's data (credentials, not agent work: see src/auth). */
  readonly apiKeys: ApiKeyStore;

  /** Connects, migrates, seeds and starts the configured workers. */
  initialize(): Promise<void>;
  /** Stops claiming, lets running tasks finish within the deadline, closes connections. Idempotent. */
  shutdown(options?: { deadlineMs?: number }): Promise<void>;
  healthCheck(): Promise<HealthStatus>;

  /** Registers (or re-registers) an agent; `actions` adds handlers in this process. */
  registerAgent(input: RegisterAgentInput, options?: Actor & { actions?: ActionMap }): Promise<Agent>;
  /** Stops the agent and cancels its queued tasks; its history is kept. */
  unregisterAgent(id: string, actor?: Actor): Promise<Agent>;
  listAgents(): Promise<Agent[]>;
  /** Throws NOT_FOUND for an unknown agent. */
  getAgentStatus(id: string): Promise<Agent>;
  getAgents(ids: readonly string[]): Promise<(Agent | null)[]>;
  /** The action names an agent accepts (the diagnostics and its own), sorted. */
  actionsOf(agentId: string): string[];
  /**
   * The actions an agent accepts in this process (the diagnostics and its own), sorted by name,
   * with their descriptions and JSON Schemas (computed once, when the action is defined).
   */
  describeActions(agentId: string): ActionDescription[];

  /**
   * Queues a task. With `wait`, resolves once it is final, or with the task as it is then after
   * CAS_WAIT_TIMEOUT_MS or when `options.signal` aborts.
   */
  executeTask(input: ExecuteTaskInput, options?: WaitOptions): Promise<Task>;
  getTasks(ids: readonly string[]): Promise<(Task | null)[]>;
  listTasks(filter: TaskListFilter): Promise<Page<Task>>;
  countTasks(filter: TaskCountFilter): Promise<number>;
  /** The newest `limit` tasks of each agent (only `createdBy`'s when set), newest first. */
  getRecentTasks(
    agentIds: readonly string[],
    limit: number,
    visibility?: { createdBy?: string | null },
  ): Promise<Task[][]>;
  /** The task's events in order, live, ending after its final event. */
  streamTask(taskId: string, options?: StreamOptions): AsyncIterable<AgentEvent>;
  /** A task's task_output events (text deltas) after `after`, then live; ends with the task. */
  streamTaskOutput(taskId: string, options?: { after?: string | null }): AsyncIterable<AgentEvent>;
  /** The task now, then after each change; ends at its final status. */
  watchTask(taskId: string, options?: { throttleMs?: number | null }): AsyncIterable<Task>;
  /** Events matching the filter, gap-free and in order; see EventSubscriptionFilter.after. */
  subscribeEvents(filter?: EventSubscriptionFilter): AsyncIterable<AgentEvent>;
  /**
   * An agent (or every agent) each time its status, activity or error may have changed. With
   * `after` (an event cursor), first each agent with such a change after it, once, as it is now.
   */
  watchAgents(agentId?: string | null, options?: { after?: string | null }): AsyncIterable<Agent>;
  /** Log entries as they are written; with `filter.after`, those after that cursor first. */
  subscribeLogs(filter?: LogSubscriptionFilter): AsyncIterable<LogEntry>;
  /**
   * Cancels a queued or waiting task at once, or asks the worker of a running one to stop; its
   * unfinished children (and theirs) are cancelled with it.
   */
  cancelTask(id: string, actor?: Actor): Promise<Task>;
  /**
   * Sends signal `name` with `payload` to a task: its oldest ctx.waitForSignal(name) receives it,
   * or the next one to start. CONFLICT for a finished task.
   */
  signalTask(id: string, name: string, payload?: unknown, actor?: Actor): Promise<Task>;
  /**
   * The newest `limit` LangGraph checkpoints of each task that ran as a graph, newest first, in
   * input order (empty for a task that did not).
   */
  getTaskCheckpoints(taskIds: readonly string[], limit: number): Promise<TaskCheckpoint[][]>;
  /** The children each task queued with ctx.call, oldest first (at most `limit` each). */
  getChildren(parentIds: readonly string[], limit: number): Promise<Task[][]>;

  getAgentState(agentId: string): Promise<AgentState | null>;
  getAgentStates(agentIds: readonly string[]): Promise<(AgentState | null)[]>;
  /** Token usage of each task's model requests, in input order; null for a task without any. */
  getTokenUsage(taskIds: readonly string[]): Promise<(TokenUsage | null)[]>;
  updateAgentState(
    agentId: string,
    data: unknown,
    options?: Actor & { expectedVersion?: number | null },
  ): Promise<AgentState>;
  /** Deactivates the active state (history kept); false when there was none. */
  resetAgentState(agentId: string, actor?: Actor): Promise<boolean>;
  getStateHistory(agentId: string, options?: { limit?: number }): Promise<AgentState[]>;
  /** The newest `limit` state versions of each agent, newest first, in input order. */
  getStateHistories(agentIds: readonly string[], limit: number): Promise<AgentState[][]>;

  getMetrics(agentId: string, range?: TimeRange): Promise<AgentMetrics>;
  getMetricsMany(agentIds: readonly string[], range?: TimeRange): Promise<(AgentMetrics | null)[]>;
  getMetricSeries(
    agentId: string,
    metricName: string,
    options?: TimeRange & { limit?: number },
  ): Promise<MetricPoint[]>;
  /** A metric of one agent in time buckets (count, avg, p50, p95, max), oldest first. */
  getMetricBuckets(input: MetricBucketsInput): Promise<MetricBucket[]>;
  getLogs(filter?: LogFilter): Promise<Page<LogEntry>>;
  /** How many log entries match the filter (its paging fields are ignored). */
  countLogs(filter?: LogFilter): Promise<number>;
  /** Cursor of the newest log entry now: `after` for a stream or page that starts from now. */
  getLogHead(): Promise<string>;
  getEventHistory(filter?: EventFilter): Promise<Page<AgentEvent>>;
  /** How many events match the filter (its paging fields are ignored). */
  countEvents(filter?: EventFilter): Promise<number>;
  /** Cursor of the newest event now: `after` for a stream or page that starts from now. */
  getEventHead(): Promise<string>;

  /**
   * Starts a workflow run: the definition is checked first (BAD_USER_INPUT naming the step, nothing
   * written), then the run, its steps and the tasks of the steps without dependencies are written.
   */
  /** Workflows registered in code (defineWorkflow in CAS_WORKFLOWS_DIR). */
  listWorkflows(): readonly DefinedWorkflow[];
  /** Starts a run of a definition, or of a registered workflow by id. */
  executeWorkflow(input: ExecuteWorkflowInput, actor?: Actor): Promise<WorkflowRun>;
  getWorkflowRuns(ids: readonly string[]): Promise<(WorkflowRun | null)[]>;
  /** The steps of each run, in definition order. */
  getWorkflowSteps(runIds: readonly string[]): Promise<WorkflowStep[][]>;
  /** Runs newest first. */
  listWorkflowRuns(filter: WorkflowRunFilter): Promise<Page<WorkflowRun>>;
  /** Cancels the run's tasks and unfinished steps; a finished run is returned as it is. */
  cancelWorkflowRun(id: string, actor?: Actor): Promise<WorkflowRun>;
  /** The run's workflow_* events in order, live, resumable by cursor; ends after its final event. */
  streamWorkflow(runId: string, options?: { after?: string | null }): AsyncIterable<AgentEvent>;
  /** The run now, then after each of its events; ends when it is final. */
  watchWorkflowRun(runId: string): AsyncIterable<WorkflowRun>;
}
