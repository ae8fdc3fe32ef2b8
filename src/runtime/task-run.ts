import { isCasError, ErrorCode } from '../errors.js';
import type { LogLevel, LogStore, NewLogEntry } from '../domains/log/log.js';
import type { AgentState } from '../domains/state/state.js';
import type { ClaimedTask, Task, TaskStore } from '../domains/task/task.js';
import type { ResolvedAction } from '../agents/registry.js';
import type { Logger } from '../logger.js';
import { MAX_JSON_BYTES, pathOfNulCharacter } from '../validation.js';
import type { TaskStepStore } from '../domains/task/steps.js';
import { DurableExecution, type Suspension } from './durable.js';
import { TaskFailure, type AgentReads, type TaskContext } from './handlers.js';
import type { AttemptOutcome, CasMetrics } from '../observability/metrics.js';
import {
  activeTraceId,
  contextOfTraceParent,
  inSpan,
  SpanKind,
  SpanStatusCode,
} from '../observability/tracing.js';

/** How an attempt ended, from the task row it wrote (null: nothing written, its lease was lost). */
function attemptOutcome(written: Task | null, stopReason: StopReason | null): AttemptOutcome {
  switch (written?.status) {
    case undefined:
      return 'lease_lost';
    case 'succeeded':
    case 'failed':
    case 'cancelled':
    case 'waiting':
      return written.status;
    default:
      // Queued again: handed back by a shutdown, or a retry was scheduled.
      return stopReason === 'shutdown' ? 'released' : 'retry_scheduled';
  }
}
import { codePointLength, OutputWriter } from './task-output.js';
import type { GraphAction } from '../agents/actions.js';
import type { TaskCheckpointStore } from '../domains/task/checkpoints.js';
import type { LlmConfig } from '../config.js';
import { createTaskModel, type TaskModel } from '../agents/model/session.js';

export interface TaskRunDeps {
  tasks: TaskStore;
  steps: TaskStepStore;
  /** Deepest chain of ctx.call a task may start (CAS_MAX_CALL_DEPTH). */
  maxCallDepth: number;
  logs: LogStore;
  workerId: string;
  logger: Logger;
  resolveAction(agentId: string, action: string): ResolvedAction | null;
  /** Reads of one agent's records (ctx.read). */
  reads(agentId: string): AgentReads;
  state: {
    get(agentId: string): Promise<AgentState | null>;
    update(agentId: string, data: Record<string, unknown>, expectedVersion?: number): Promise<AgentState>;
  };
  /** How long a handler may keep running after its signal aborted before it is abandoned. */
  abortGraceMs: number;
  /** Least time between two progress writes of one task. */
  progressIntervalMs: number;
  /** Least time between two log writes of one task (a full batch goes at once). */
  logIntervalMs: number;
  /** This process's Prometheus metrics: attempts started and ended, durations, queue wait. */
  metrics: CasMetrics;
  /** The model provider (ctx.model); null when not configured. */
  llm?: LlmConfig | null;
  /** The graph an action runs as, or null to call its handler (the runtime decides, see CAS_RUNTIME). */
  graphOf(action: ResolvedAction): GraphAction | null;
  /** Checkpoints of the tasks that run as graphs. */
  checkpoints: TaskCheckpointStore;
}

/** The signal that resumes an interrupted graph: signalTask(id, "resume", value). */
export const RESUME_SIGNAL = 'resume';

/** Why a run's signal was aborted; decides how the attempt ends. */
type StopReason = 'cancelled' | 'timeout' | 'shutdown' | 'lease_lost';

const LOG_BATCH_SIZE = 100;

class AbandonedError extends Error {}

type Outcome =
  { ok: true; value: unknown } | { ok: false; error: unknown } | { ok: 'suspended'; suspension: Suspension };

/** One attempt of one task on this worker: runs the handler and writes how it ended. */
export class TaskRun {
  /** The handler's abort controller, made when something first reads the attempt's signal. */
  private abortController: AbortController | null = null;
  /** Why the signal is aborted, or will be once it is made; the first reason wins. */
  private abortReason: Error | null = null;
  private stopReason: StopReason | null = null;
  private pendingProgress: { fraction: number; message: string | null } | null = null;
  private progressTimer: NodeJS.Timeout | null = null;
  private progressWrite: Promise<void> | null = null;
  private lastProgressAt = 0;
  private pendingLogs: NewLogEntry[] = [];
  private logTimer: NodeJS.Timeout | null = null;
  private logWrite: Promise<void> = Promise.resolve();
  private settled = false;
  /** The handler reported progress or logged: end() waits for those writes (and for its output's). */
  private wrote = false;
  /**
   * Starts the abort grace period of a running handler. stop() calls it, as stop() is what aborts
   * the signal while the handler runs: an abort listener on the signal cost 4.4 us per attempt
   * (EventTarget's bookkeeping; a microbenchmark), several times this whole call.
   */
  private onStop: (() => void) | null = null;
  /** Ends the handler's wait with the attempt's suspension (set while the handler runs). */
  private suspend: ((suspension: Suspension) => void) | null = null;
  /**
   * What an attempt needs only when its handler uses it (durable operations, output, log lines, the
   * abort signal, ctx's reads and model) is made on first use. Every attempt lives across the round
   * trip of the batch that completes it, so whatever it holds is copied by the young generation's
   * collections: making these lazily took a no-op attempt from about 15 to 10 KB allocated (V8's
   * sampling heap profiler) and a worker draining no-op tasks to 8% less CPU per task.
   */
  private durableExecution: DurableExecution | null = null;
  private outputWriter: OutputWriter | null = null;
  private attemptLogger: Logger | null = null;
  /** The trace id of the attempt's span (tracing on), for its log lines. */
  private traceId: string | undefined;

  constructor(
    readonly task: ClaimedTask,
    private readonly deps: TaskRunDeps,
  ) {}

  /** Every line about this attempt carries its task id, agent id and (tracing on) trace id. */
  private get logger(): Logger {
    const { task, traceId } = this;
    return (this.attemptLogger ??= this.deps.logger.child({
      taskId: task.id,
      agentId: task.agentId,
      attempt: task.attempts,
      ...(traceId ? { traceId } : {}),
    }));
  }

  private get durable(): DurableExecution {
    if (!this.durableExecution) {
      const { deps, task } = this;
      this.durableExecution = new DurableExecution({
        steps: deps.steps,
        lease: task,
        resolveAction: deps.resolveAction,
        maxCallDepth: deps.maxCallDepth,
        checkResult,
      });
      void this.durableExecution.suspended.then((suspension) => this.suspend?.(suspension));
    }
    return this.durableExecution;
  }

  private get output(): OutputWriter {
    return (this.outputWriter ??= new OutputWriter({
      write: async (offset, text) => {
        await this.deps.tasks.writeOutput(this.task, offset, text);
      },
      failed: (error) => {
        const leaseLost = isLeaseLost(error);
        // The lease was swept and the task claimed again: this attempt must stop writing.
        if (leaseLost) this.stop('lease_lost');
        this.logger.warn({ err: error }, 'task output not written');
        return { leaseLost };
      },
    }));
  }

  /** Aborts the handler's signal; the first reason wins, and none once the handler has settled. */
  stop(reason: StopReason): void {
    if (this.stopReason || this.settled) return;
    this.stopReason = reason;
    this.abort(new Error(`task ${reason === 'cancelled' ? 'was cancelled' : `stopped: ${reason}`}`));
    this.onStop?.();
  }

  /** The signal ctx.signal and the model see (an AbortController and its signal: about 1 KB). */
  private get signal(): AbortSignal {
    if (!this.abortController) {
      this.abortController = new AbortController();
      if (this.abortReason) this.abortController.abort(this.abortReason);
    }
    return this.abortController.signal;
  }

  private abort(reason: Error): void {
    this.abortReason ??= reason;
    this.abortController?.abort(reason);
  }

  /**
   * Runs the attempt to its end, in a span that continues the trace of the request that queued the
   * task; resolves with the task as written, or null if nothing was written.
   */
  async run(): Promise<Task | null> {
    const { task, deps } = this;
    const startedAt = Date.now();
    deps.metrics.attemptStarted(task);
    const written = await inSpan(
      `task ${task.agentId}.${task.action}`,
      {
        kind: SpanKind.CONSUMER,
        parent: contextOfTraceParent(task.traceParent),
        attributes: {
          'cas.task.id': task.id,
          'cas.agent.id': task.agentId,
          'cas.task.action': task.action,
          'cas.task.attempt': task.attempts,
        },
      },
      async (span) => {
        this.traceId = activeTraceId();
        const ended = await this.attempt();
        span.setAttribute('cas.task.outcome', attemptOutcome(ended, this.stopReason));
        if (ended?.status === 'failed' || ended?.error)
          span.setStatus({ code: SpanStatusCode.ERROR, message: ended.error?.message });
        return ended;
      },
    );
    deps.metrics.attemptEnded(task, attemptOutcome(written, this.stopReason), Date.now() - startedAt);
    return written;
  }

  private async attempt(): Promise<Task | null> {
    const action = this.deps.resolveAction(this.task.agentId, this.task.action);
    if (!action) {
      return this.end({
        ok: false,
        error: new TaskFailure(
          `agent "${this.task.agentId}" has no action "${this.task.action}"`,
          'UNKNOWN_ACTION',
          false,
        ),
      });
    }
    if (this.task.cancelRequestedAt) this.stop('cancelled');
    const timeout = this.task.timeoutMs ? setTimeout(() => this.stop('timeout'), this.task.timeoutMs) : null;
    try {
      const outcome = await this.untilSettledOrAbandoned(action);
      // The output schema's check (INVALID_RESULT, not retryable) and normalisation, if it has one.
      if (outcome.ok === true) outcome.value = action.parseOutput(outcome.value);
      return await this.end(outcome);
    } catch (error) {
      return await this.end({ ok: false, error });
    } finally {
      if (timeout) clearTimeout(timeout);
    }
  }

  /**
   * The first of: the handler's value, its suspension (a handler that waits never settles), its
   * error, or its abandonment once the grace period after a stop has passed.
   */
  private untilSettledOrAbandoned(action: ResolvedAction): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      this.suspend = (suspension) => resolve({ ok: 'suspended', suspension });
      Promise.resolve()
        .then(() => this.execute(action, action.parse(this.task.input), this.context()))
        .then((value) => resolve({ ok: true, value }), reject);
      const abandon = () =>
        setTimeout(
          () => reject(new AbandonedError('handler ignored its abort signal')),
          this.deps.abortGraceMs,
        ).unref();
      if (this.abortReason) abandon();
      else this.onStop = abandon;
    });
  }

  /** Runs the action's handler, or its graph (a graph action; any action under CAS_RUNTIME=langgraph). */
  private async execute(action: ResolvedAction, input: unknown, ctx: TaskContext): Promise<unknown> {
    const graph = this.deps.graphOf(action);
    if (!graph) return action.run(input, ctx);
    // Loaded on first use: a process that runs no graph does not load LangGraph.
    const { runGraph } = await import('./langgraph/run-graph.js');
    return runGraph(graph, input, ctx, {
      checkpoints: this.deps.checkpoints,
      lease: this.task,
      waitForResume: (key, value) => this.durable.waitForSignalAt(key, RESUME_SIGNAL, value),
      continueOutputAfterStored: () => this.output.continueAfter(codePointLength(this.task.output ?? '')),
    });
  }

  private async end(outcome: Outcome): Promise<Task | null> {
    this.settled = true;
    // A suspended handler waits forever on a durable operation: let whatever else it started stop.
    if (outcome.ok === 'suspended') this.abort(new Error('task suspended'));
    if (outcome.ok === false && this.stopReason === null) this.logFailure(outcome.error);
    if (this.durableExecution && !this.durableExecution.isIdle) await this.untilDurableOperationsSettle();
    if (this.wrote || this.outputWriter) await this.flushWrites();
    try {
      return await retryWhileUnreachable(() => this.writeOutcome(outcome));
    } catch (error) {
      if (isLeaseLost(error)) {
        // The task was claimed again after this attempt's lease expired, or a retried write had
        // already landed: the recorded outcome stands.
        this.logger.warn({ workerId: this.deps.workerId }, 'lease lost; outcome discarded');
        return null;
      }
      throw error;
    }
  }

  /** Waits for the steps and calls the handler left unawaited, at most the abort grace period. */
  private async untilDurableOperationsSettle(): Promise<void> {
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      this.durable.idle(),
      new Promise<void>((resolve) => (grace = setTimeout(resolve, this.deps.abortGraceMs))),
    ]);
    clearTimeout(grace);
  }

  private async writeOutcome(outcome: Outcome): Promise<Task | null> {
    const { tasks } = this.deps;
    const lease = this.task;
    switch (this.stopReason) {
      case 'lease_lost':
        return null;
      case 'shutdown':
        return tasks.release(lease);
      case 'cancelled':
        return tasks.finishCancelled(lease);
      case 'timeout':
        return tasks.fail(
          lease,
          { message: `timed out after ${this.task.timeoutMs} ms`, code: 'TIMEOUT' },
          true,
        );
    }
    if (outcome.ok === 'suspended') {
      const { keys, childTaskIds, signals, value } = outcome.suspension;
      return tasks.suspend(lease, keys, { childTaskIds, signals, value });
    }
    if (outcome.ok) {
      const failure = checkResult(outcome.value);
      if (!failure) return tasks.complete(lease, outcome.value ?? null);
      return tasks.fail(lease, failure, false);
    }
    const { message, code, retryable } = describeError(outcome.error);
    return tasks.fail(lease, { message, code }, retryable);
  }

  /** ctx's durable operations: the attempt's DurableExecution is made by the first one called. */
  private durableOperations(): Pick<TaskContext, 'step' | 'call' | 'callAll' | 'sleep' | 'waitForSignal'> {
    return {
      step: (name, fn) => this.durable.step(name, fn),
      call: (agentId, action, input, options) => this.durable.call(agentId, action, input, options),
      callAll: (calls) => this.durable.callAll(calls),
      sleep: (ms) => this.durable.sleep(ms),
      waitForSignal: (name, options) => this.durable.waitForSignal(name, options),
    };
  }

  /**
   * The handler's ctx. What few handlers use (the signal, reads, state, the model session) is made
   * when first read, by getters of the object itself, so a spread copy of ctx still has them.
   */
  private context(): TaskContext {
    const { task, deps } = this;
    const durable = this.durableOperations();
    const signalOf = () => this.signal;
    const modelOf = () => this.model(durable.step);
    let model: TaskModel | null | undefined;
    let read: AgentReads | undefined;
    let state: TaskContext['state'] | undefined;
    return {
      taskId: task.id,
      agentId: task.agentId,
      action: task.action,
      parentTaskId: task.parentId,
      attempt: task.attempts,
      maxAttempts: task.maxAttempts,
      get signal() {
        return signalOf();
      },
      get model() {
        if (model === undefined) model = modelOf();
        return model;
      },
      progress: (fraction, message) => this.progress(fraction, message),
      output: (delta) => {
        if (!this.settled) this.output.append(delta);
      },
      log: (level, message, context) => this.log(level, message, context),
      get read() {
        return (read ??= deps.reads(task.agentId));
      },
      get state() {
        return (state ??= {
          get: () => deps.state.get(task.agentId),
          update: (data, expectedVersion) => deps.state.update(task.agentId, data, expectedVersion),
        });
      },
      ...durable,
    };
  }

  /** The attempt's model session (ctx.model), or null without a model provider. */
  private model(step: TaskContext['step']): TaskModel | null {
    const { task, deps } = this;
    if (!deps.llm) return null;
    return createTaskModel(deps.llm, {
      agentId: task.agentId,
      signal: this.signal,
      step,
      output: (delta) => {
        if (!this.settled) this.output.append(delta);
      },
      outputLength: () => this.output.length(),
      rewindOutput: (length) => this.output.rewind(length),
      recordUsage: async (name, promptTokens, completionTokens) => {
        await deps.tasks
          .recordModelUsage(task, name, promptTokens, completionTokens)
          .catch((error: unknown) =>
            deps.logger.warn({ err: error, taskId: task.id }, 'model usage not recorded'),
          );
      },
    });
  }

  private progress(fraction: number, message?: string): void {
    if (!Number.isFinite(fraction) || fraction < 0 || fraction > 1) {
      throw new RangeError(`progress must be a number from 0 to 1, got ${fraction}`);
    }
    if (this.settled) return;
    this.wrote = true;
    this.pendingProgress = { fraction, message: message?.slice(0, 1000) ?? null };
    this.scheduleProgressWrite();
  }

  private scheduleProgressWrite(): void {
    if (this.progressTimer || this.progressWrite || !this.pendingProgress) return;
    const delay = Math.max(0, this.lastProgressAt + this.deps.progressIntervalMs - Date.now());
    this.progressTimer = setTimeout(() => {
      this.progressTimer = null;
      this.progressWrite = this.writeProgress().finally(() => {
        this.progressWrite = null;
        this.scheduleProgressWrite();
      });
    }, delay);
  }

  private async writeProgress(): Promise<void> {
    const pending = this.pendingProgress;
    this.pendingProgress = null;
    if (!pending) return;
    this.lastProgressAt = Date.now();
    await this.deps.tasks
      .reportProgress(this.task, pending.fraction, pending.message)
      .catch((error: unknown) => {
        // The lease was swept and the task claimed again: this attempt must stop writing.
        if (isLeaseLost(error)) this.stop('lease_lost');
        this.logger.warn({ err: error }, 'progress not written');
      });
  }

  private log(level: LogLevel, message: string, context?: Record<string, unknown>): void {
    this.wrote = true;
    this.pendingLogs.push({
      agentId: this.task.agentId,
      taskId: this.task.id,
      level,
      message: String(message).slice(0, 10_000),
      context: { ...context, attempt: this.task.attempts },
    });
    if (this.pendingLogs.length >= LOG_BATCH_SIZE) this.writeLogs();
    else this.logTimer ??= setTimeout(() => this.writeLogs(), this.deps.logIntervalMs);
  }

  private logFailure(error: unknown): void {
    const { message, code } = describeError(error);
    this.log('error', `attempt ${this.task.attempts} failed: ${message}`, { code });
  }

  private writeLogs(): void {
    if (this.logTimer) clearTimeout(this.logTimer);
    this.logTimer = null;
    const batch = this.pendingLogs;
    this.pendingLogs = [];
    if (batch.length === 0) return;
    this.logWrite = this.logWrite.then(() =>
      this.deps.logs
        .write(batch)
        .then(() => undefined)
        .catch((error: unknown) => this.logger.warn({ err: error }, 'task logs not written')),
    );
  }

  /** Writes what is pending so readers see every log and the latest progress before the final status. */
  private async flushWrites(): Promise<void> {
    if (this.progressTimer) clearTimeout(this.progressTimer);
    this.progressTimer = null;
    await this.progressWrite;
    await this.writeProgress();
    await this.outputWriter?.flush(true);
    this.writeLogs();
    await this.logWrite;
  }
}

const WRITE_RETRY_DELAYS_MS = [100, 250, 500, 1000, 2000, 4000];

/**
 * Retries a write that failed for a reason other than a refusal (a dropped connection, a server
 * restart), so an attempt's outcome survives a short database outage. The SQL functions check the
 * lease, so a write that landed before its acknowledgement was lost comes back as a CONFLICT.
 */
async function retryWhileUnreachable<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await write();
    } catch (error) {
      const delay = WRITE_RETRY_DELAYS_MS[attempt];
      if (isCasError(error) || delay === undefined) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** A write refused because this attempt no longer holds the task's lease. */
const isLeaseLost = (error: unknown) => isCasError(error) && error.code === ErrorCode.CONFLICT;

function describeError(error: unknown): { message: string; code: string; retryable: boolean } {
  if (error instanceof TaskFailure)
    return { message: error.message, code: error.code, retryable: error.retryable };
  if (isCasError(error) && error.code === ErrorCode.BAD_USER_INPUT) {
    return { message: error.message, code: 'BAD_INPUT', retryable: false };
  }
  if (error instanceof AbandonedError) return { message: error.message, code: 'ABANDONED', retryable: true };
  const message = error instanceof Error ? error.message : String(error);
  return { message: message.slice(0, 2000) || 'handler failed', code: 'HANDLER_ERROR', retryable: true };
}

function checkResult(value: unknown): { message: string; code: string } | null {
  let text: string | undefined;
  try {
    text = JSON.stringify(value ?? null);
  } catch (error) {
    return { message: `result is not JSON: ${(error as Error).message}`, code: 'INVALID_RESULT' };
  }
  if (text !== undefined && Buffer.byteLength(text) > MAX_JSON_BYTES) {
    return { message: `result is larger than ${MAX_JSON_BYTES} bytes`, code: 'RESULT_TOO_LARGE' };
  }
  const nul = pathOfNulCharacter(value);
  if (nul) {
    // PostgreSQL cannot store U+0000; a result is data, so it is refused rather than altered.
    return { message: `result holds a NUL character at "${nul.join('.')}"`, code: 'INVALID_RESULT' };
  }
  return null;
}
