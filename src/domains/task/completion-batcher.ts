/**
 * Writes the completions of running attempts in batches, with no added wait: a completion that
 * finds none being written goes at the end of this turn of the event loop, with the others that
 * ended in it (the tasks of one claim, say); those that end while a write is in flight are written
 * together as soon as it returns. Under load the batches grow by themselves. A worker's batch also
 * carries its next claim (runtime/worker.ts: `cas_complete_and_claim_tasks`).
 *
 * Why: each event-writing transaction holds the event-sequence row and its agents' status rows
 * until it commits (see docs/architecture.md), so the number of completion transactions, not their
 * size, bounded the tasks per second.
 *
 * The callers of a written batch are told once the batch their completions set off is on its way:
 * a worker's batch carries its next claim, whose attempts often end within the same turn, and
 * what each caller does next (its attempt's metrics, span and bookkeeping) then runs while the
 * database writes that next batch instead of before it is sent. A worker with one batch in flight
 * is a serial chain of database and JavaScript, and this shortens the JavaScript link by about a
 * fifth.
 */
import type { Lease } from './task.js';

/** Completions written in one transaction at most; the rest wait for the next one. */
export const MAX_COMPLETIONS_PER_BATCH = 100;

interface PendingCompletion<T> {
  lease: Lease;
  result: unknown;
  resolve: (task: T) => void;
  reject: (error: unknown) => void;
}

export interface CompletionWriter<T extends { id: string }> {
  /** Completes one attempt; raises the precise error (CONFLICT when its lease is not current). */
  one(lease: Lease, result: unknown): Promise<T>;
  /** Completes those of the attempts whose lease is current, in one transaction; returns them. */
  many(items: readonly { lease: Lease; result: unknown }[]): Promise<T[]>;
}

export class CompletionBatcher<T extends { id: string }> {
  private pending: PendingCompletion<T>[] = [];
  /** A drain is scheduled or running: new completions join its next batch. */
  private writing = false;
  /** A drain is scheduled and has not sent its batch yet. */
  private drainDue = false;
  /** Callers of written batches not told yet, and whether telling them is scheduled. */
  private untold: (() => void)[] = [];
  private tellScheduled = false;

  constructor(private readonly writer: CompletionWriter<T>) {}

  complete(lease: Lease, result: unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ lease, result, resolve, reject });
      if (this.writing) return;
      this.writing = true;
      this.drainDue = true;
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    this.drainDue = false;
    try {
      while (this.pending.length > 0) {
        const written = this.write(this.takeBatch());
        // The batch is on its way (the driver sends it within this turn): the callers of the
        // previous one may go on.
        this.tellSoon();
        await written;
      }
    } finally {
      this.writing = false;
    }
  }

  /**
   * Tells the untold callers at the next turn of the event loop, unless a drain is due by then:
   * that one tells them after it has sent its batch.
   */
  private tellSoon(): void {
    if (this.tellScheduled || this.untold.length === 0) return;
    this.tellScheduled = true;
    setImmediate(() => {
      this.tellScheduled = false;
      if (this.drainDue) return;
      const untold = this.untold;
      this.untold = [];
      for (const tell of untold) tell();
    });
  }

  /**
   * The oldest pending completions, at most one per task: two attempts of one task (a stale one
   * and the current one) go in different batches, so each gets its own answer.
   */
  private takeBatch(): PendingCompletion<T>[] {
    const batch: PendingCompletion<T>[] = [];
    const ids = new Set<string>();
    const rest: PendingCompletion<T>[] = [];
    for (const item of this.pending) {
      if (batch.length < MAX_COMPLETIONS_PER_BATCH && !ids.has(item.lease.id)) {
        ids.add(item.lease.id);
        batch.push(item);
      } else rest.push(item);
    }
    this.pending = rest;
    return batch;
  }

  private async write(batch: PendingCompletion<T>[]): Promise<void> {
    let completed: Map<string, T>;
    try {
      completed = new Map((await this.writer.many(batch)).map((task) => [task.id, task]));
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    // An attempt the batch left alone lost its lease (or its task is gone): completing it alone
    // gives the caller the same error a single completion would have.
    const leftAlone = batch.filter((item) => !completed.has(item.lease.id));
    for (const item of batch) {
      const task = completed.get(item.lease.id);
      if (task) this.untold.push(() => item.resolve(task));
    }
    this.tellSoon();
    await Promise.all(
      leftAlone.map((item) => this.writer.one(item.lease, item.result).then(item.resolve, item.reject)),
    );
  }
}
