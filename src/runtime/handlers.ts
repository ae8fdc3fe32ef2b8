import type { LogLevel } from '../domains/log/log.js';
import type { AgentState } from '../domains/state/state.js';

/** What a handler can do while it runs one attempt of a task. */
export interface TaskContext {
  readonly taskId: string;
  readonly agentId: string;
  readonly action: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** Aborted when the task is cancelled, times out, or the worker shuts down. */
  readonly signal: AbortSignal;
  /** Reports progress (0..1). Chatty callers are coalesced; the latest value always lands. */
  progress(fraction: number, message?: string): void;
  /** Writes a structured log entry for this task; entries are batched. */
  log(level: LogLevel, message: string, context?: Record<string, unknown>): void;
  /** The agent's versioned state. */
  readonly state: {
    get(): Promise<AgentState | null>;
    update(data: Record<string, unknown>, expectedVersion?: number): Promise<AgentState>;
  };
}

/** An agent action: plain async function from JSON input to JSON output. */
export type TaskHandler = (input: unknown, ctx: TaskContext) => unknown;

export type AgentActions = Record<string, TaskHandler>;

/**
 * Thrown by a handler to fail the attempt with a code. `retryable: false` ends the task at once;
 * any other thrown error is retried while attempts remain.
 */
export class TaskFailure extends Error {
  override readonly name = 'TaskFailure';
  constructor(
    message: string,
    readonly code: string = 'TASK_FAILED',
    readonly retryable = true,
  ) {
    super(message);
  }
}
