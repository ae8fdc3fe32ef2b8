import { ErrorCode, isCasError } from '../errors.js';
import type { ResolvedAction } from '../agents/registry.js';
import type { Lease } from '../domains/task/task.js';
import type { ChildTaskRequest, TaskStep, TaskStepStore } from '../domains/task/steps.js';
import { executeTaskInput } from '../domains/task/task.js';
import { parseInput } from '../validation.js';
import {
  ChildTaskFailed,
  SignalTimeout,
  TaskFailure,
  type CallOptions,
  type ChildCall,
  type TaskContext,
  type WaitForSignalOptions,
} from './handlers.js';
import { inSpan } from '../observability/tracing.js';

/** The options of a child, checked as executeTask checks them. */
const callOptions = executeTaskInput.pick({ maxAttempts: true, timeoutMs: true });

/** Most children one ctx.callAll may queue. */
export const MAX_CALLS_PER_FAN_OUT = 1000;
/** Longest durable wait (ctx.sleep, a signal's timeout): a year. */
export const MAX_DURABLE_WAIT_MS = 365 * 86_400_000;
const MAX_STEP_NAME_LENGTH = 200;
const MAX_SIGNAL_NAME_LENGTH = 100;

/** What a suspended attempt waits for: every step in `keys` settling, or its earliest timer. */
export interface Suspension {
  keys: string[];
  childTaskIds: string[];
  signals: string[];
  /** What a signal wait showed the one who will answer it (waitForSignal's `value`), or null. */
  value: unknown;
}

export interface DurableExecutionDeps {
  steps: TaskStepStore;
  lease: Lease;
  resolveAction(agentId: string, action: string): ResolvedAction | null;
  maxCallDepth: number;
  /** Why a value cannot be stored as a step result (not JSON, too large), or null. */
  checkResult(value: unknown): { message: string; code: string } | null;
}

type DurableOperations = Pick<TaskContext, 'step' | 'call' | 'callAll' | 'sleep' | 'waitForSignal'>;

/**
 * The durable operations of one attempt. The attempt replays the handler from its start: each
 * operation gets a key from its name and how often the name was used before in this run, and a key
 * whose step is stored returns the stored outcome. An operation that must wait (a child still
 * running, a signal not sent, a timer) never settles; once nothing else is in flight, `suspended`
 * resolves and the attempt ends waiting, to be run again when what it waits for has happened.
 */
export class DurableExecution implements DurableOperations {
  private stored: Promise<Map<string, TaskStep>> | null = null;
  private readonly uses = new Map<string, number>();
  private readonly pending = new Map<string, TaskStep>();
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private checkScheduled = false;
  /** The latest `value` a pending signal wait shows (Task.waitingFor.value). */
  private waitValue: unknown = null;
  private resolveSuspension!: (suspension: Suspension) => void;
  /** Resolves when the handler can go no further before something it waits for happens. */
  readonly suspended = new Promise<Suspension>((resolve) => (this.resolveSuspension = resolve));

  constructor(private readonly deps: DurableExecutionDeps) {}

  step = async <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
    requireName('step name', name, MAX_STEP_NAME_LENGTH);
    if (typeof fn !== 'function') throw new TypeError('ctx.step needs a function to run');
    const key = this.keyFor(name);
    return this.tracked(() =>
      inSpan(`step ${name}`, { attributes: { 'cas.step.key': key } }, async (span) => {
        const stored = (await this.storedSteps()).get(key);
        span.setAttribute('cas.step.replayed', stored?.status === 'completed');
        if (stored?.status === 'completed') return stored.result as T;
        const { steps, lease } = this.deps;
        await steps.start(lease, key);
        let value: T;
        try {
          value = await fn();
        } catch (error) {
          await steps.fail(lease, key, describe(error)).catch(() => undefined);
          throw error;
        }
        const invalid = this.deps.checkResult(value);
        if (invalid) throw new TaskFailure(`step "${key}": ${invalid.message}`, invalid.code, false);
        // The stored JSON, not `value`: a replay returns the same.
        return (await steps.complete(lease, key, value)).result as T;
      }),
    );
  };

  call = async <T = unknown>(
    agentId: string,
    action: string,
    input?: unknown,
    options: CallOptions = {},
  ): Promise<T> => {
    const [result] = await this.callAll([{ ...options, agentId, action, input }]);
    return result as T;
  };

  callAll = async <T extends unknown[] = unknown[]>(calls: readonly ChildCall[]): Promise<T> => {
    if (!Array.isArray(calls)) throw new TypeError('ctx.callAll needs an array of calls');
    if (calls.length > MAX_CALLS_PER_FAN_OUT) {
      throw new TaskFailure(
        `ctx.callAll may queue at most ${MAX_CALLS_PER_FAN_OUT} children at once`,
        'TOO_MANY_CALLS',
        false,
      );
    }
    const keyed = calls.map((call) => ({ call, key: this.keyFor(`call:${call.agentId}.${call.action}`) }));
    const steps = await this.tracked(async () => {
      const stored = await this.storedSteps();
      const requests = keyed
        .filter(({ key }) => !stored.has(key))
        .map(({ call, key }) => this.childRequest(key, call));
      if (requests.length > 0) {
        const queued = await this.deps.steps
          .call(this.deps.lease, requests, this.deps.maxCallDepth)
          .catch((error: unknown) => Promise.reject(callRefused(error)));
        for (const step of queued) stored.set(step.key, step);
      }
      return keyed.map(({ key }) => stored.get(key)!);
    });
    if (steps.some((step) => step.status === 'pending')) return this.waitFor(steps);
    const failed = steps.find((step) => step.status === 'failed');
    if (failed) throw childFailure(failed, keyed[steps.indexOf(failed)]!.call);
    return steps.map((step) => step.result) as T;
  };

  sleep = async (ms: number): Promise<void> => {
    requireDuration('ctx.sleep', ms);
    const step = await this.wait(this.keyFor('sleep'), { kind: 'sleep', waitMs: Math.ceil(ms) });
    if (step.status !== 'completed') await this.waitFor([step]);
  };

  waitForSignal = async <T = unknown>(name: string, options: WaitForSignalOptions = {}): Promise<T> => {
    requireName('signal name', name, MAX_SIGNAL_NAME_LENGTH);
    if (options.timeoutMs !== undefined) requireDuration('timeoutMs', options.timeoutMs);
    const waitMs = options.timeoutMs === undefined ? null : Math.ceil(options.timeoutMs);
    return this.signalWait(this.keyFor(`signal:${name}`), name, waitMs, options.value);
  };

  /**
   * A signal wait stored as step `key`, which the caller derives from what it waits for (a graph's
   * interrupt id) rather than from the order of the handler's calls.
   */
  waitForSignalAt = <T = unknown>(key: string, name: string, value: unknown): Promise<T> =>
    this.signalWait(key, name, null, value);

  private async signalWait<T>(key: string, name: string, waitMs: number | null, value: unknown): Promise<T> {
    if (value !== undefined) {
      const invalid = this.deps.checkResult(value);
      if (invalid) throw new TypeError(`the value of signal wait "${name}": ${invalid.message}`);
    }
    const step = await this.wait(key, { kind: 'signal', signalName: name, waitMs });
    if (step.status === 'timed_out') throw new SignalTimeout(name);
    if (step.status !== 'completed') {
      if (value !== undefined) this.waitValue = value;
      return this.waitFor([step]);
    }
    return step.result as T;
  }

  private wait(key: string, wait: Parameters<TaskStepStore['beginWait']>[2]): Promise<TaskStep> {
    return this.tracked(async () => {
      const stored = await this.storedSteps();
      const step = stored.get(key) ?? (await this.deps.steps.beginWait(this.deps.lease, key, wait));
      stored.set(key, step);
      return step;
    });
  }

  /** The child's request: its input checked against its action's schema, as executeTask does. */
  private childRequest(key: string, call: ChildCall): ChildTaskRequest {
    if (typeof call?.agentId !== 'string' || typeof call.action !== 'string') {
      throw new TypeError('a call needs { agentId, action, input? }');
    }
    const action = this.deps.resolveAction(call.agentId, call.action);
    if (!action) {
      throw new TaskFailure(
        `agent "${call.agentId}" has no action "${call.action}"`,
        'UNKNOWN_ACTION',
        false,
      );
    }
    try {
      const { maxAttempts, timeoutMs } = parseInput(callOptions, {
        maxAttempts: call.maxAttempts,
        timeoutMs: call.timeoutMs,
      });
      return {
        key,
        agentId: call.agentId,
        action: call.action,
        input: action.parse(call.input ?? null),
        ...(maxAttempts ? { maxAttempts } : {}),
        ...(timeoutMs ? { timeoutMs } : {}),
      };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new TaskFailure(`input of ${call.agentId}.${call.action}: ${message}`, 'BAD_INPUT', false);
    }
  }

  /** A name used again in one run gets `#2`, `#3`, ...: the same code replays to the same keys. */
  private keyFor(name: string): string {
    const uses = (this.uses.get(name) ?? 0) + 1;
    this.uses.set(name, uses);
    return uses === 1 ? name : `${name}#${uses}`;
  }

  private storedSteps(): Promise<Map<string, TaskStep>> {
    this.stored ??= this.deps.steps
      .forRun(this.deps.lease)
      .then((steps) => new Map(steps.map((step) => [step.key, step])));
    return this.stored;
  }

  /** Counts `operation` as in flight: the attempt does not suspend while one is. */
  private async tracked<T>(operation: () => Promise<T>): Promise<T> {
    this.inFlight += 1;
    try {
      return await operation();
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
      this.scheduleSuspensionCheck();
    }
  }

  /** No step or call is in flight. */
  get isIdle(): boolean {
    return this.inFlight === 0;
  }

  /**
   * Resolves once no operation is in flight: the attempt's outcome is written after a step or call
   * the handler did not await, so that write does not find its lease gone.
   */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Never settles: the attempt suspends and a later run gets the outcome from the stored step. */
  private waitFor(steps: readonly TaskStep[]): Promise<never> {
    for (const step of steps) if (step.status === 'pending') this.pending.set(step.key, step);
    this.scheduleSuspensionCheck();
    return new Promise<never>(() => undefined);
  }

  /**
   * Suspends once no operation is in flight and one is pending. Checked after the handler's
   * synchronous continuation (setImmediate runs after promise callbacks), so operations started
   * together, as in Promise.all, are all recorded before the attempt suspends.
   */
  private scheduleSuspensionCheck(): void {
    if (this.checkScheduled || this.pending.size === 0) return;
    this.checkScheduled = true;
    setImmediate(() => {
      this.checkScheduled = false;
      if (this.inFlight > 0) return;
      const steps = [...this.pending.values()];
      this.resolveSuspension({
        keys: steps.map((step) => step.key),
        childTaskIds: steps.flatMap((step) => (step.childTaskId ? [step.childTaskId] : [])),
        signals: steps.flatMap((step) => (step.signalName ? [step.signalName] : [])),
        value: this.waitValue,
      });
    });
  }
}

function requireName(what: string, name: unknown, maxLength: number): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > maxLength) {
    throw new TypeError(`${what} must be a string of 1 to ${maxLength} characters`);
  }
}

function requireDuration(what: string, ms: unknown): asserts ms is number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > MAX_DURABLE_WAIT_MS) {
    throw new TypeError(`${what} must be a number of milliseconds from 0 to ${MAX_DURABLE_WAIT_MS}`);
  }
}

function describe(error: unknown): { message: string; code: string } {
  if (error instanceof TaskFailure) return { message: error.message, code: error.code };
  const message = error instanceof Error ? error.message : String(error);
  return { message: message.slice(0, 2000), code: 'STEP_FAILED' };
}

/** A refusal of the database to queue children, as the error the handler sees. */
function callRefused(error: unknown): unknown {
  if (!isCasError(error)) return error;
  const reason = error.details?.reason;
  if (typeof reason === 'string') return new TaskFailure(error.message, reason, false);
  if (error.code === ErrorCode.NOT_FOUND) return new TaskFailure(error.message, 'AGENT_NOT_FOUND', false);
  return error;
}

function childFailure(step: TaskStep, call: ChildCall): ChildTaskFailed {
  const childTaskId = step.childTaskId ?? step.error?.childTaskId ?? 'unknown';
  const code = step.error?.code ?? 'TASK_FAILED';
  const message = step.error?.message ?? 'failed';
  return new ChildTaskFailed(
    `${call.agentId}.${call.action} (task ${childTaskId}) ended ${code}: ${message}`,
    childTaskId,
    code,
  );
}
