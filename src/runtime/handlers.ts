import type { LogEntry, LogLevel } from '../domains/log/log.js';
import type { AgentMetrics } from '../domains/metric/metric.js';
import type { AgentState } from '../domains/state/state.js';
import type { Task, TaskStatus } from '../domains/task/task.js';
import type { TaskModel } from '../agents/model/session.js';

/** How a child task runs; absent fields take executeTask's defaults. */
export interface CallOptions {
  /** 1-100, default 1. */
  maxAttempts?: number;
  /** Per-attempt time limit of the child (1-86400000 ms). */
  timeoutMs?: number;
}

/** One child task to queue with `ctx.call` or `ctx.callAll`. */
export interface ChildCall extends CallOptions {
  agentId: string;
  action: string;
  input?: unknown;
}

export interface WaitForSignalOptions {
  /** Give up after this many ms: the wait throws a SignalTimeout. No limit when absent. */
  timeoutMs?: number;
  /**
   * What the wait shows whoever answers it (JSON, e.g. a draft to approve): `Task.waitingFor.value`
   * while the task waits. A graph's `interrupt(value)` is shown the same way.
   */
  value?: unknown;
}

/**
 * What a handler may read of the runtime's records about its own agent (the model's read tools
 * use these). Scoped to the agent on purpose: what a handler reads may be sent to a model provider.
 */
export interface AgentReads {
  /** Runs, outcomes and average duration of this agent, all time or within the range. */
  metrics(range?: { from?: Date | null; to?: Date | null }): Promise<AgentMetrics>;
  /** This agent's newest log entries, newest first (default 20, at most 100), of some levels. */
  logs(options?: { first?: number; levels?: LogLevel[] }): Promise<LogEntry[]>;
  /** This agent's newest tasks (default 20, at most 100), optionally of some statuses. */
  tasks(options?: { first?: number; statuses?: TaskStatus[] }): Promise<Task[]>;
}

/** What a handler can do while it runs one attempt of a task. */
export interface TaskContext {
  readonly taskId: string;
  readonly agentId: string;
  readonly action: string;
  /** The task that called this one with ctx.call, or null. */
  readonly parentTaskId: string | null;
  /** 1 for the first attempt. A task resumed after a wait keeps its attempt number. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** Aborted when the task is cancelled, times out, or the worker shuts down. */
  readonly signal: AbortSignal;
  /** Reports progress (0..1). Chatty callers are coalesced; the latest value always lands. */
  progress(fraction: number, message?: string): void;
  /**
   * Appends text to the task's output (`Task.output`, subscription `taskOutput`), e.g. a model's
   * answer as it streams. Coalesced to a few writes a second; all of it lands before the task ends.
   * Each run of the handler writes its output from the start: text a replayed or retried run emits
   * again is not duplicated (see docs/agents.md).
   */
  output(delta: string): void;
  /**
   * The model provider for this agent (streams into `output`, durable, retried, usage recorded);
   * null when none is configured (CAS_LLM_BASE_URL, CAS_LLM_MODEL). Declare the action
   * `model: true` so it is refused at enqueue instead.
   */
  readonly model: TaskModel | null;
  /** Writes a structured log entry for this task; entries are batched. */
  log(level: LogLevel, message: string, context?: Record<string, unknown>): void;
  /** Reads of this agent's metrics, logs and tasks. */
  readonly read: AgentReads;
  /** The agent's versioned state. */
  readonly state: {
    get(): Promise<AgentState | null>;
    update(data: Record<string, unknown>, expectedVersion?: number): Promise<AgentState>;
  };
  /**
   * Runs `fn` once for this task and stores its JSON result: when the task runs again (after a
   * crash, a lease expiry, a retry or a wait), a completed step returns its stored result and
   * `fn` is not called. Names are unique per task; a name used again gets `#2`, `#3`, ...
   */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  /**
   * Queues a child task and resolves with its result. The task waits (status WAITING) without
   * holding a worker slot and is run again once the child is final; a failed or cancelled child
   * is thrown here as a ChildTaskFailed.
   */
  call<T = unknown>(agentId: string, action: string, input?: unknown, options?: CallOptions): Promise<T>;
  /** Queues every call at once and resolves with their results in order, once all are final. */
  callAll<T extends unknown[] = unknown[]>(calls: readonly ChildCall[]): Promise<T>;
  /** Waits `ms` durably: the task holds no worker slot and resumes after the time has passed. */
  sleep(ms: number): Promise<void>;
  /**
   * Resolves with the payload of the next signal `name` sent to this task (signalTask), one sent
   * before the wait included. The task holds no worker slot while it waits.
   */
  waitForSignal<T = unknown>(name: string, options?: WaitForSignalOptions): Promise<T>;
}

/** An agent action: plain async function from JSON input to JSON output. */
export type TaskHandler = (input: unknown, ctx: TaskContext) => unknown;

export type AgentActions = Record<string, TaskHandler>;

/**
 * Thrown by a handler to fail the attempt with a code. `retryable: false` ends the task at once;
 * any other thrown error is retried while attempts remain.
 */
export class TaskFailure extends Error {
  override readonly name: string = 'TaskFailure';
  constructor(
    message: string,
    readonly code: string = 'TASK_FAILED',
    readonly retryable = true,
  ) {
    super(message);
  }
}

/** A child task queued with ctx.call ended failed or cancelled; thrown in the parent. */
export class ChildTaskFailed extends TaskFailure {
  override readonly name = 'ChildTaskFailed';
  constructor(
    message: string,
    readonly childTaskId: string,
    /** The child's error code, or CANCELLED. */
    readonly childCode: string,
  ) {
    super(message, 'CHILD_TASK_FAILED', false);
  }
}

/** No signal arrived within waitForSignal's timeoutMs. */
export class SignalTimeout extends TaskFailure {
  override readonly name = 'SignalTimeout';
  constructor(readonly signalName: string) {
    super(`no signal "${signalName}" arrived in time`, 'SIGNAL_TIMEOUT', false);
  }
}
