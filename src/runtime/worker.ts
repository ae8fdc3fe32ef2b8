import { Doorbell, isEventNotice, sleep, type ChangeFeed } from '../feed/change-feed.js';
import { CompletionBatcher } from '../domains/task/completion-batcher.js';
import type { ClaimedTask, Lease, Task, TaskStore } from '../domains/task/task.js';
import type { Logger } from '../logger.js';
import { TaskRun, type TaskRunDeps } from './task-run.js';

export interface WorkerOptions {
  id: string;
  /** Most tasks this worker runs at once. */
  concurrency: number;
  /** How long a claim holds without a heartbeat; a third of it is the heartbeat period. */
  leaseMs: number;
  /** Fallback poll when no doorbell rings (a missed NOTIFY, a retry coming due). */
  pollIntervalMs: number;
  /** Only claim tasks of these agents (all when undefined). */
  agentIds?: readonly string[];
  /** Most running tasks per caller, counted over all workers (no limit when null or undefined). */
  maxRunningPerCaller?: number | null;
  /**
   * The attempts running in this process, by task id, shared by its workers so that a task never
   * runs twice here (a new worker's map when absent).
   */
  running?: RunningAttempts;
}

/** One attempt running in this process and when it has settled (never rejects). */
export interface RunningAttempt {
  run: TaskRun;
  done: Promise<void>;
}
export type RunningAttempts = Map<string, RunningAttempt>;

const CLAIM_ERROR_BACKOFF_MS = 1000;
/**
 * How often a worker brings the summary rows up to date: folds the task counters' deltas into
 * their totals (readers add the deltas not folded yet, so this bounds the rows a count reads, not
 * how current it is) and copies the agents' live status into cas_agent_status (what readers of
 * that table see is at most this old while a worker runs; the API reads the live status).
 */
const SUMMARY_REFRESH_INTERVAL_MS = 1000;
const EXPIRED_LEASES_PER_SWEEP = 100;
/** Children per sweep whose ending could not wake their waiting parent at once. */
const SETTLED_CHILDREN_PER_SWEEP = 100;
/** Events after which a task may be due: the doorbell of the claim loop. */
const TASK_DUE_EVENT_TYPES: ReadonlySet<string> = new Set([
  'task_queued',
  'task_retry_scheduled',
  'task_resumed',
]);

/**
 * Whether due tasks may be left after a claim of up to `limit`, so that the worker looks again at
 * once. A claim that picked as many as it asked for may have left more behind, and may have passed
 * over some of its picks (an agent or caller that reached its limit within it). One that picked
 * fewer saw every task due when it ran; the feed rings for those queued since. One that began
 * nothing waits: the tasks it passed over wait for a slot of their agent or caller.
 */
function mayHaveLeftDueTasks(claim: { claimed: readonly unknown[]; picked: number }, limit: number): boolean {
  return claim.picked === limit && claim.claimed.length > 0;
}

/** Periodic work of a worker: stopping it waits for a run in flight. */
interface PeriodicWork {
  stop(): Promise<void>;
}

/**
 * Runs `work` every `periodMs`, skipping a beat while the previous run is still going: a slow
 * database must not pile up heartbeats (each holding a connection) that then land out of order.
 * `stop` waits for a run in flight, so none reaches the database after the worker has stopped
 * (its caller closes the pool next).
 */
function everyWithoutOverlap(periodMs: number, work: () => Promise<void>): PeriodicWork {
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    running ??= work().finally(() => (running = null));
  }, periodMs);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * Claims due tasks from the queue and runs them. Woken by the feed when tasks are queued, with a
 * poll as fallback; heartbeats extend the leases of running tasks; expired leases of dead workers
 * are swept back into the queue. Many workers in many processes may share one database.
 */
export class Worker {
  /** This worker's attempts by task id: what it heartbeats and counts against its concurrency. */
  private readonly runs = new Map<string, RunningAttempt>();
  private readonly processRuns: RunningAttempts;
  /** Slots promised to claims in flight: the claim loop's, and the one a completion batch carries. */
  private claiming = 0;
  /**
   * The claim loop was woken while a completion batch's claim held every free slot: that claim may
   * have picked before the task that rang was queued (a workflow's next step, queued by the very
   * batch whose commit rang), so the loop looks again once the batch is back.
   */
  private lookAfterBatch = false;
  /**
   * The completions of this worker's attempts, in batches that each carry the worker's next claim:
   * one transaction where a claim and a completion took two, each with its own round trip.
   */
  private readonly completions: CompletionBatcher<Task>;
  /** The task store as this worker's attempts write to it: completions go through the batches. */
  private readonly attemptTasks: TaskStore;
  private readonly stopping = new AbortController();
  private readonly doorbell: Doorbell;
  private readonly unsubscribeCancels: () => void;
  private loop: Promise<void> | null = null;
  private periodic: PeriodicWork[] = [];

  constructor(
    private readonly options: WorkerOptions,
    private readonly feed: ChangeFeed,
    private readonly tasks: TaskStore,
    private readonly runDeps: Omit<TaskRunDeps, 'workerId' | 'tasks'>,
    private readonly logger: Logger,
  ) {
    this.processRuns = options.running ?? new Map();
    this.completions = new CompletionBatcher<Task>({
      one: (lease, result) => tasks.complete(lease, result),
      many: (items) => this.completeAndClaim(items),
    });
    this.attemptTasks = { ...tasks, complete: (lease, result) => this.completions.complete(lease, result) };
    this.doorbell = new Doorbell(
      feed,
      (notice) => isEventNotice(notice) && notice.types.some((type) => TASK_DUE_EVENT_TYPES.has(type)),
    );
    this.unsubscribeCancels = feed.subscribe((notice) => {
      if (!isEventNotice(notice)) return;
      for (const taskId of notice.cancelledTaskIds) this.runs.get(taskId)?.run.stop('cancelled');
    });
  }

  get id(): string {
    return this.options.id;
  }

  get runningTaskIds(): string[] {
    return [...this.runs.keys()];
  }

  start(): void {
    if (this.loop) return;
    const { leaseMs } = this.options;
    this.periodic = [
      everyWithoutOverlap(Math.max(100, leaseMs / 3), () => this.heartbeat()),
      everyWithoutOverlap(Math.max(500, leaseMs / 2), () => this.sweepExpiredLeases()),
      everyWithoutOverlap(SUMMARY_REFRESH_INTERVAL_MS, () => this.refreshSummaries()),
    ];
    this.loop = this.claimLoop();
  }

  /** Claims now instead of at the next poll (a task was just queued in this process). */
  nudge(): void {
    this.doorbell.ring();
  }

  /** Asks a running task of this worker to stop; false if it does not run here. */
  cancel(taskId: string): boolean {
    const entry = this.runs.get(taskId);
    entry?.run.stop('cancelled');
    return Boolean(entry);
  }

  /**
   * Stops claiming, gives running tasks until the deadline to finish, then aborts the rest and
   * hands them back to the queue so another worker takes them at once.
   */
  async stop(deadlineMs: number): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    this.doorbell.close();
    await this.loop;
    const all = () => Promise.allSettled([...this.runs.values()].map((entry) => entry.done));
    await Promise.race([all(), sleep(deadlineMs)]);
    for (const { run } of this.runs.values()) run.stop('shutdown');
    await all();
    await Promise.all(this.periodic.map((work) => work.stop()));
    this.unsubscribeCancels();
    // The agents' status rows show this worker's attempts ended, not what the last beat saw (a
    // refresh in flight may have read the status before they ended: this one waits for it).
    await this.refreshSummaries({ wait: true });
  }

  private async claimLoop(): Promise<void> {
    const { id, leaseMs, pollIntervalMs, agentIds, maxRunningPerCaller } = this.options;
    while (!this.stopping.signal.aborted) {
      const free = this.freeSlots(0);
      if (free > 0) {
        let claim: { claimed: ClaimedTask[]; picked: number };
        this.claiming += free;
        try {
          claim = await this.tasks.claim(id, free, leaseMs, { agentIds, maxRunningPerCaller });
        } catch (error) {
          this.logger.warn({ err: error, workerId: id }, 'claiming tasks failed; retrying');
          await sleep(CLAIM_ERROR_BACKOFF_MS, this.stopping.signal);
          continue;
        } finally {
          this.claiming -= free;
        }
        for (const task of claim.claimed) this.launch(task);
        if (mayHaveLeftDueTasks(claim, free)) continue;
      } else if (this.claiming > 0) {
        this.lookAfterBatch = true;
      }
      await this.doorbell.wait(pollIntervalMs, this.stopping.signal);
    }
  }

  /**
   * Slots free for a claim now: the concurrency less the attempts running and the claims in flight.
   * `completing` attempts are being written as ended, so their slots count as free for the claim
   * their batch carries.
   */
  private freeSlots(completing: number): number {
    return this.options.concurrency - this.runs.size + completing - this.claiming;
  }

  /** Writes a completion batch with the next claim into the slots it frees; starts what it claimed. */
  private async completeAndClaim(items: readonly { lease: Lease; result: unknown }[]): Promise<Task[]> {
    const { id, leaseMs, agentIds, maxRunningPerCaller } = this.options;
    const limit = this.stopping.signal.aborted ? 0 : Math.max(0, this.freeSlots(items.length));
    this.claiming += limit;
    let written: Awaited<ReturnType<TaskStore['completeAndClaim']>>;
    try {
      written = await this.tasks.completeAndClaim(items, {
        workerId: id,
        limit,
        leaseMs,
        agentIds,
        maxRunningPerCaller,
      });
    } finally {
      this.claiming -= limit;
      if (this.lookAfterBatch) {
        this.lookAfterBatch = false;
        this.doorbell.ring();
      }
    }
    // The completed attempts' slots are free now (the claim above took them), not once their
    // entries' promises have settled: the next batch's claim counts them at once.
    for (const task of written.completed) this.runs.delete(task.id);
    // A batch that carried no claim leaves the looking to the claim loop.
    if (limit === 0 || mayHaveLeftDueTasks(written, limit)) this.doorbell.ring();
    if (this.stopping.signal.aborted) {
      // The worker began stopping while this batch was written: its claim goes back to the queue
      // (as a shutdown hands back running tasks) rather than starting after stop() took stock.
      await Promise.all(
        written.claimed.map((task) =>
          this.tasks
            .release(task)
            .catch((error: unknown) =>
              this.logger.warn(
                { err: error, taskId: task.id },
                'claimed task not handed back; its lease will expire',
              ),
            ),
        ),
      );
    } else for (const task of written.claimed) this.launch(task);
    return written.completed;
  }

  /**
   * Runs a claimed attempt. If this process still runs an earlier attempt of the task (its lease
   * was swept while it ran, say the heartbeat could not get through, and the task was claimed
   * again), that attempt has lost its lease: it is stopped, and the new one starts once it has
   * settled, so one task never runs twice here and the stale attempt's writes are refused.
   */
  private launch(task: ClaimedTask): void {
    const previous = this.processRuns.get(task.id);
    if (previous) {
      this.logger.warn(
        { taskId: task.id, attempt: task.attempts, workerId: this.options.id },
        'task claimed again while its earlier attempt still runs here; stopping that attempt first',
      );
      previous.run.stop('lease_lost');
    }
    const run = new TaskRun(task, { ...this.runDeps, tasks: this.attemptTasks, workerId: this.options.id });
    const entry: RunningAttempt = {
      run,
      done: (previous?.done ?? Promise.resolve())
        .then(() => run.run())
        .then((written) => this.wakeForRetry(written))
        .catch((error: unknown) =>
          this.logger.error({ err: error, taskId: task.id }, 'task attempt could not be recorded'),
        )
        .finally(() => {
          // An attempt a completion batch ended has left `runs` already (completeAndClaim).
          if (this.runs.get(task.id) === entry) {
            this.runs.delete(task.id);
            this.doorbell.ring();
          }
          if (this.processRuns.get(task.id) === entry) this.processRuns.delete(task.id);
        }),
    };
    this.runs.set(task.id, entry);
    this.processRuns.set(task.id, entry);
  }

  /** A retry or a wait this worker scheduled comes due before the next poll: wake up for it. */
  private wakeForRetry(task: Task | null): void {
    if ((task?.status !== 'queued' && task?.status !== 'waiting') || this.stopping.signal.aborted) return;
    const delay = task.runAt.getTime() - Date.now();
    if (delay < this.options.pollIntervalMs)
      setTimeout(() => this.doorbell.ring(), Math.max(0, delay) + 5).unref();
  }

  private async heartbeat(): Promise<void> {
    const leases = [...this.runs.values()].map(({ run }) => run.task);
    if (leases.length === 0) return;
    try {
      const held = await this.tasks.extendLeases(leases, this.options.leaseMs);
      const heldTokens = new Set(held.map((task) => task.leaseToken));
      for (const lease of leases) {
        const entry = this.runs.get(lease.id);
        if (!heldTokens.has(lease.leaseToken) && entry?.run.task === lease) entry.run.stop('lease_lost');
      }
      // A cancellation whose notice was missed is still seen here.
      for (const task of held) if (task.cancelRequestedAt) this.runs.get(task.id)?.run.stop('cancelled');
    } catch (error) {
      this.logger.warn({ err: error, workerId: this.options.id }, 'lease heartbeat failed');
    }
  }

  private async sweepExpiredLeases(): Promise<void> {
    await this.settleFinishedChildren();
    try {
      const swept = await this.tasks.expireLeases(EXPIRED_LEASES_PER_SWEEP);
      if (swept.length > 0) {
        this.runDeps.metrics.leasesExpired(swept.length);
        this.logger.warn(
          { taskIds: swept.map((task) => task.id) },
          'requeued tasks of a worker that stopped',
        );
        this.doorbell.ring();
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'sweeping expired leases failed');
    }
  }

  private async refreshSummaries(options: { wait?: boolean } = {}): Promise<void> {
    try {
      await this.tasks.foldCounters();
      await this.tasks.refreshAgentStatus(options);
    } catch (error) {
      this.logger.warn({ err: error }, 'refreshing the task counters and agent status failed');
    }
  }

  private async settleFinishedChildren(): Promise<void> {
    try {
      if ((await this.tasks.settleFinishedChildren(SETTLED_CHILDREN_PER_SWEEP)) > 0) this.doorbell.ring();
    } catch (error) {
      this.logger.warn({ err: error }, 'settling the parents of finished children failed');
    }
    try {
      if ((await this.tasks.settleEndedWorkflowTasks(SETTLED_CHILDREN_PER_SWEEP)) > 0) this.doorbell.ring();
    } catch (error) {
      this.logger.warn({ err: error }, 'handing off ended workflow tasks failed');
    }
    try {
      const cancelled = await this.tasks.cancelOrphanedTasks(SETTLED_CHILDREN_PER_SWEEP);
      if (cancelled > 0) this.logger.info({ cancelled }, 'cancelled tasks whose parent had ended');
    } catch (error) {
      this.logger.warn({ err: error }, 'cancelling the tasks of ended parents failed');
    }
  }
}
