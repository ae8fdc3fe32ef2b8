import { z } from 'zod';
import { json, type SqlFunctions } from '../../db/sql-functions.js';
import { toDate, toDateOrNull, toNumber, toNumberOrNull } from '../../db/rows.js';
import { agentId, dateTime, jsonValue, replaceNulCharacters, taskId, userId } from '../../validation.js';
import {
  backwardPageSize,
  decodeCursor,
  encodeCursor,
  pageSize,
  toPage,
  toPageBefore,
  type Page,
} from '../pagination.js';

export const TASK_STATUSES = ['queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const FINAL_TASK_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];
export const isFinal = (status: TaskStatus) => FINAL_TASK_STATUSES.includes(status);

export interface TaskError {
  message: string;
  code: string | null;
  retryable: boolean;
}

export interface Task {
  id: string;
  seq: number;
  agentId: string;
  action: string;
  input: unknown;
  status: TaskStatus;
  priority: number;
  runAt: Date;
  attempts: number;
  maxAttempts: number;
  timeoutMs: number | null;
  retryDelayMs: number;
  progress: number | null;
  progressMessage: string | null;
  /** Text the handler emitted with ctx.output so far; null when none. */
  output: string | null;
  result: unknown;
  error: TaskError | null;
  idempotencyKey: string | null;
  workerId: string | null;
  /** Identifies the running attempt's claim; every write of that attempt presents it. */
  leaseToken: string | null;
  leaseExpiresAt: Date | null;
  cancelRequestedAt: Date | null;
  userId: string | null;
  /** The task whose ctx.call queued this one. */
  parentId: string | null;
  /** Calls between this task and the one a client queued (0). */
  depth: number;
  /** While waiting: what the suspended attempt waits for. */
  waitingFor: TaskWait | null;
  /** W3C traceparent of the request (or parent task) that queued it; null when tracing was off. */
  traceParent: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  durationMs: number | null;
  updatedAt: Date;
}

/** What a waiting task waits for (Task.waitingFor). */
export interface TaskWait {
  /** The step keys whose settling makes the task due again. */
  keys: string[];
  /** Children it waits for (ctx.call, ctx.callAll). */
  childTaskIds: string[];
  /** The signal names it waits for (ctx.waitForSignal). */
  signals: string[];
  /** When its earliest timer fires (a sleep, a signal's timeout), if any. */
  until: Date | null;
  /** What a signal wait shows (waitForSignal's `value`, a graph interrupt's value), or null. */
  value: unknown;
}

/** Signals a task may hold that no wait has taken yet; more are refused (CONFLICT). */
export const MAX_UNDELIVERED_SIGNALS = 1000;

/** Longest a task may run per attempt. */
export const MAX_TIMEOUT_MS = 86_400_000;

export const executeTaskInput = z.object({
  agentId,
  action: z.string().min(1).max(100),
  input: jsonValue.optional(),
  idempotencyKey: z.string().min(1).max(200).nullish(),
  maxAttempts: z.number().int().min(1).max(100).nullish(),
  timeoutMs: z.number().int().min(1).max(MAX_TIMEOUT_MS).nullish(),
  priority: z.number().int().min(-1000).max(1000).nullish(),
  runAt: dateTime.nullish(),
  retryDelayMs: z.number().int().min(0).max(3_600_000).nullish(),
  wait: z.boolean().nullish(),
  userId,
});
export type ExecuteTaskInput = z.input<typeof executeTaskInput>;

export const signalTaskInput = z.object({
  taskId,
  name: z.string().min(1).max(100),
  payload: jsonValue.optional(),
  userId,
});

/** How far a task stream may coalesce progress (ms); absent means no coalescing. */
export const throttleMsInput = z
  .number()
  .int()
  .min(0)
  .max(60_000)
  .nullish()
  .transform((value) => value ?? undefined);

export const taskListFilter = z.object({
  agentId: agentId.nullish(),
  /** Only tasks this user created (a viewer without tasks:all); absent or null: everyone's. */
  createdBy: z.string().max(200).nullish(),
  statuses: z.array(z.enum(TASK_STATUSES)).max(TASK_STATUSES.length).nullish(),
  after: z.string().max(200).nullish(),
  first: pageSize,
  /** Backward paging: the `last` tasks listed before `before` (the oldest when absent), newest first. */
  last: backwardPageSize,
  before: z.string().max(200).nullish(),
});
export type TaskListFilter = z.input<typeof taskListFilter>;

export type TaskCountFilter = Pick<TaskListFilter, 'agentId' | 'statuses' | 'createdBy'>;

/** The p_user_id of the _created_by read functions, when the filter names a creator. */
const createdByArg = (filter: { createdBy?: string | null }) =>
  filter.createdBy == null ? {} : { p_user_id: filter.createdBy };

const CURSOR_KIND = 'task';
export const taskCursor = (task: Pick<Task, 'seq'>) => encodeCursor(CURSOR_KIND, task.seq);

interface TaskRow {
  id: string;
  seq: unknown;
  agent_id: string;
  action: string;
  input: unknown;
  status: TaskStatus;
  priority: unknown;
  run_at: unknown;
  attempts: unknown;
  max_attempts: unknown;
  timeout_ms: unknown;
  retry_delay_ms: unknown;
  progress: unknown;
  progress_message: string | null;
  output?: string | null;
  result: unknown;
  error: { message?: string; code?: string; retryable?: boolean } | null;
  idempotency_key: string | null;
  worker_id: string | null;
  lease_token: string | null;
  lease_expires_at: unknown;
  cancel_requested_at: unknown;
  user_id: string | null;
  parent_id: string | null;
  depth: unknown;
  waiting_for: {
    keys?: string[];
    childTaskIds?: string[];
    signals?: string[];
    until?: string;
    value?: unknown;
  } | null;
  trace_parent?: string | null;
  created_at: unknown;
  started_at: unknown;
  finished_at: unknown;
  duration_ms: unknown;
  updated_at: unknown;
}

const taskFromRow = (row: TaskRow): Task => ({
  id: row.id,
  seq: toNumber(row.seq),
  agentId: row.agent_id,
  action: row.action,
  input: row.input,
  status: row.status,
  priority: toNumber(row.priority),
  runAt: toDate(row.run_at),
  attempts: toNumber(row.attempts),
  maxAttempts: toNumber(row.max_attempts),
  timeoutMs: toNumberOrNull(row.timeout_ms),
  retryDelayMs: toNumber(row.retry_delay_ms),
  progress: toNumberOrNull(row.progress),
  progressMessage: row.progress_message,
  output: row.output ?? null,
  result: row.result,
  error: row.error
    ? {
        message: row.error.message ?? 'unknown error',
        code: row.error.code ?? null,
        retryable: Boolean(row.error.retryable),
      }
    : null,
  idempotencyKey: row.idempotency_key,
  workerId: row.worker_id,
  leaseToken: row.lease_token,
  leaseExpiresAt: toDateOrNull(row.lease_expires_at),
  cancelRequestedAt: toDateOrNull(row.cancel_requested_at),
  userId: row.user_id,
  parentId: row.parent_id ?? null,
  depth: toNumber(row.depth ?? 0),
  waitingFor: row.waiting_for
    ? {
        keys: row.waiting_for.keys ?? [],
        childTaskIds: row.waiting_for.childTaskIds ?? [],
        signals: row.waiting_for.signals ?? [],
        until: row.waiting_for.until ? new Date(row.waiting_for.until) : null,
        value: row.waiting_for.value ?? null,
      }
    : null,
  traceParent: row.trace_parent ?? null,
  createdAt: toDate(row.created_at),
  startedAt: toDateOrNull(row.started_at),
  finishedAt: toDateOrNull(row.finished_at),
  durationMs: toNumberOrNull(row.duration_ms),
  updatedAt: toDate(row.updated_at),
});

/** A task as a claim returns it: running under a lease this worker holds. */
export type ClaimedTask = Task & { leaseToken: string };

/** The attempt a write is for: a task and the lease token of its claim. */
export type Lease = Pick<ClaimedTask, 'id' | 'leaseToken'>;

export interface ClaimFilter {
  /** Only tasks of these agents (all when undefined). */
  agentIds?: readonly string[];
  /** Skip tasks whose caller has this many running already (no limit when null or undefined). */
  maxRunningPerCaller?: number | null;
}

export function taskStore(sql: SqlFunctions) {
  const many = async (fn: string, args: Parameters<SqlFunctions['rows']>[1]) =>
    (await sql.rows<TaskRow>(fn, args)).map(taskFromRow);
  const one = async (fn: string, args: Parameters<SqlFunctions['rows']>[1]) =>
    (await many(fn, args))[0] ?? null;

  return {
    /**
     * Queues a task. With an idempotency key this caller used before for the same request, returns
     * that task instead; for a different request, a CONFLICT.
     */
    async enqueue(
      input: z.output<typeof executeTaskInput>,
      traceParent: string | null = null,
    ): Promise<Task> {
      const task = await one('cas_enqueue_task', {
        p_agent_id: input.agentId,
        p_action: input.action,
        p_input: json(input.input ?? null),
        p_max_attempts: input.maxAttempts ?? 1,
        p_timeout_ms: input.timeoutMs ?? null,
        p_priority: input.priority ?? 0,
        p_run_at: input.runAt ?? null,
        p_retry_delay_ms: input.retryDelayMs ?? 1000,
        p_idempotency_key: input.idempotencyKey ?? null,
        p_user_id: input.userId ?? null,
        p_trace_parent: traceParent,
      });
      return task!;
    },
    /** Tasks not yet ended, by agent and status (the queue-depth gauge of GET /metrics). */
    queueDepth: async () =>
      (await sql.rows<{ agent_id: string; status: string; count: unknown }>('cas_task_queue_depth', {})).map(
        (row) => ({ agentId: row.agent_id, status: row.status, count: toNumber(row.count) }),
      ),
    /**
     * Claims up to `limit` due tasks, each with a new lease token, skipping those other workers hold
     * and those whose agent (its maxConcurrency) or caller (`maxRunningPerCaller`) is at its limit.
     * `picked`: the due tasks the claim took up, the claimed ones and those it passed over (their
     * agent or caller reached its limit within the claim; a stopped agent's task, cancelled). Fewer
     * than `limit` means the claim saw every task due when it ran.
     */
    async claim(
      workerId: string,
      limit: number,
      leaseMs: number,
      filter: ClaimFilter = {},
    ): Promise<{ claimed: ClaimedTask[]; picked: number }> {
      const rows = await many('cas_claim_tasks', {
        p_worker_id: workerId,
        p_limit: limit,
        p_lease_ms: leaseMs,
        p_agent_ids: filter.agentIds ? [...filter.agentIds] : null,
        p_max_running_per_caller: filter.maxRunningPerCaller ?? null,
      });
      // The claimed tasks come first, running under their new leases; then those passed over.
      const claimed = rows.filter((task) => task.status === 'running') as ClaimedTask[];
      return { claimed, picked: rows.length };
    },
    /**
     * Completes a batch of attempts and claims up to `claim.limit` due tasks, in one transaction (a
     * worker's completion batch carries its next claim: runtime/worker.ts). Completes those of the
     * attempts whose lease is current; the others are left alone, absent from `completed`.
     */
    async completeAndClaim(
      items: readonly { lease: Lease; result: unknown }[],
      claim: ClaimFilter & { workerId: string; limit: number; leaseMs: number },
    ): Promise<{ completed: Task[]; claimed: ClaimedTask[]; picked: number }> {
      const rows = await many('cas_complete_and_claim_tasks', {
        p_items: json(
          items.map(({ lease, result }) => ({
            id: lease.id,
            leaseToken: lease.leaseToken,
            result: result ?? null,
          })),
        ),
        p_worker_id: claim.workerId,
        p_limit: claim.limit,
        p_lease_ms: claim.leaseMs,
        p_agent_ids: claim.agentIds ? [...claim.agentIds] : null,
        p_max_running_per_caller: claim.maxRunningPerCaller ?? null,
      });
      // The completed tasks first (succeeded), then the claimed ones (running under a lease of this
      // worker), then the picked tasks the claim passed over (`picked` as for claim()).
      const completed = rows.filter((task) => task.status === 'succeeded');
      const claimed = rows.filter((task) => task.status === 'running') as ClaimedTask[];
      return { completed, claimed, picked: rows.length - completed.length };
    },
    // The writes of a running attempt: each is a CONFLICT unless `lease` is the task's current claim.
    complete: async (lease: Lease, result: unknown): Promise<Task> =>
      (await one('cas_complete_task', {
        p_task_id: lease.id,
        p_lease_token: lease.leaseToken,
        p_result: json(result ?? null),
      }))!,
    fail: async (lease: Lease, error: Omit<TaskError, 'retryable'>, retryable: boolean) =>
      (await one('cas_fail_task', {
        p_task_id: lease.id,
        p_lease_token: lease.leaseToken,
        p_error: json(replaceNulCharacters(error)),
        p_retryable: retryable,
      }))!,
    finishCancelled: async (lease: Lease) =>
      (await one('cas_finish_cancelled_task', { p_task_id: lease.id, p_lease_token: lease.leaseToken }))!,
    cancel: async (id: string, userId?: string) =>
      (await one('cas_cancel_task', { p_task_id: id, p_user_id: userId ?? null }))!,
    reportProgress: async (lease: Lease, progress: number, message: string | null) =>
      (await one('cas_report_progress', {
        p_task_id: lease.id,
        p_lease_token: lease.leaseToken,
        p_progress: progress,
        p_message: message === null ? null : replaceNulCharacters(message),
      }))!,
    /**
     * Writes `text` at `offset` (in characters, i.e. Unicode code points) of the running task's
     * output; text already stored there is not written again (see 20261203000200_cas_task_output.sql).
     */
    writeOutput: async (lease: Lease, offset: number, text: string) => {
      const [row] = await sql.rows<{ output_length: unknown; changed: boolean }>('cas_write_task_output', {
        p_task_id: lease.id,
        p_lease_token: lease.leaseToken,
        p_offset: offset,
        p_text: text,
      });
      return { outputLength: toNumber(row!.output_length), changed: row!.changed };
    },
    /** Token usage of one model request: metric points llm_prompt_tokens and llm_completion_tokens. */
    recordModelUsage: async (lease: Lease, model: string, promptTokens: number, completionTokens: number) => {
      await sql.value<number>('cas_record_model_usage', {
        p_task_id: lease.id,
        p_lease_token: lease.leaseToken,
        p_model: model,
        p_prompt_tokens: promptTokens,
        p_completion_tokens: completionTokens,
      });
    },
    release: async (lease: Lease) =>
      (await one('cas_release_task', { p_task_id: lease.id, p_lease_token: lease.leaseToken }))!,
    /**
     * Ends the attempt waiting for the steps `keys` (status waiting, no worker slot held); due at
     * once if one of them settled meanwhile. `waitingFor` describes the wait for readers.
     */
    suspend: async (lease: Lease, keys: readonly string[], waitingFor: Omit<TaskWait, 'keys' | 'until'>) =>
      (await one('cas_suspend_task', {
        p_task_id: lease.id,
        p_lease_token: lease.leaseToken,
        p_keys: [...keys],
        p_waiting_for: json(waitingFor),
      }))!,
    /** Delivers a signal to the task's oldest wait for `name`, or keeps it for the next one. */
    signal: async (id: string, name: string, payload: unknown, userId?: string | null) =>
      (await one('cas_signal_task', {
        p_task_id: id,
        p_name: name,
        p_payload: json(payload ?? null),
        p_user_id: userId ?? null,
        p_max_undelivered: MAX_UNDELIVERED_SIGNALS,
      }))!,
    /** The children of each task (oldest first, at most `limit` each). */
    children: (parentIds: readonly string[], limit: number) =>
      many('cas_task_children', { p_parent_ids: [...parentIds], p_limit: limit }),
    /** Settles parents whose children ended where they could not be settled at once; how many. */
    settleFinishedChildren: (limit: number) =>
      sql.value<unknown>('cas_settle_finished_children', { p_limit: limit }).then(toNumber),
    /**
     * Hands off to their workflow runs the workflow tasks that ended without a hand-off (cancelled
     * while queued, or by unregistering their agent); how many.
     */
    settleEndedWorkflowTasks: (limit: number) =>
      sql.value<unknown>('cas_settle_ended_workflow_tasks', { p_limit: limit }).then(toNumber),
    /** Cancels unfinished tasks whose parent ended failed or cancelled (one level); how many. */
    cancelOrphanedTasks: (limit: number) =>
      sql.value<unknown>('cas_cancel_orphaned_tasks', { p_limit: limit }).then(toNumber),
    /**
     * Folds the task counters' deltas into their totals (one folder at a time: another caller
     * meanwhile folds nothing); how many delta rows it folded.
     */
    foldCounters: () => sql.value<unknown>('cas_fold_task_counters', {}).then(toNumber),
    /**
     * Copies the agents' live status (running tasks, busy or idle, last activity: read from the
     * task rows) into cas_agent_status, for readers of that table; how many rows it changed. One
     * refresher at a time: another caller meanwhile changes nothing, unless `wait` makes it wait
     * its turn.
     */
    refreshAgentStatus: ({ wait = false }: { wait?: boolean } = {}) =>
      sql.value<unknown>('cas_refresh_agent_status', { p_wait: wait }).then(toNumber),
    /** Requeues or fails running tasks whose worker stopped renewing the lease. */
    expireLeases: (limit: number) => many('cas_expire_leases', { p_limit: limit }),
    /** Renews these leases; a task missing from the answer lost its lease. */
    extendLeases: (leases: readonly Lease[], leaseMs: number) =>
      many('cas_extend_lease', {
        p_task_ids: leases.map((lease) => lease.id),
        p_lease_tokens: leases.map((lease) => lease.leaseToken),
        p_lease_ms: leaseMs,
      }),
    get: (ids: readonly string[]) => many('cas_get_tasks', { p_ids: [...ids] }),
    async page(filter: z.output<typeof taskListFilter>): Promise<Page<Task>> {
      if (filter.last != null) {
        const newer = await many('cas_list_tasks_newer', {
          p_agent_id: filter.agentId ?? null,
          p_statuses: filter.statuses ? [...filter.statuses] : null,
          p_after_seq: filter.before ? decodeCursor(CURSOR_KIND, filter.before) : null,
          p_limit: filter.last + 1,
          p_user_id: filter.createdBy ?? null,
        });
        return toPageBefore(newer, filter.last, taskCursor);
      }
      const rows = await many(filter.createdBy == null ? 'cas_list_tasks' : 'cas_list_tasks_created_by', {
        ...createdByArg(filter),
        p_agent_id: filter.agentId ?? null,
        p_statuses: filter.statuses ? [...filter.statuses] : null,
        p_before_seq: filter.after ? decodeCursor(CURSOR_KIND, filter.after) : null,
        p_limit: filter.first + 1,
      });
      return toPage(rows, filter.first, taskCursor);
    },
    count: (filter: TaskCountFilter) =>
      sql
        .value<unknown>(filter.createdBy == null ? 'cas_count_tasks' : 'cas_count_tasks_created_by', {
          ...createdByArg(filter),
          p_agent_id: filter.agentId ?? null,
          p_statuses: filter.statuses ? [...filter.statuses] : null,
        })
        .then(toNumber),
    /** The newest `limit` tasks of each agent (created by `createdBy` when set), newest first. */
    recent: (agentIds: readonly string[], limit: number, createdBy?: string | null) =>
      createdBy == null
        ? many('cas_recent_tasks', { p_agent_ids: [...agentIds], p_limit: limit })
        : many('cas_recent_tasks_created_by', {
            p_agent_ids: [...agentIds],
            p_user_id: createdBy,
            p_limit: limit,
          }),
  };
}
export type TaskStore = ReturnType<typeof taskStore>;
