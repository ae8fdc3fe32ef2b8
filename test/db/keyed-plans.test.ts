import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Database, Queryable } from '../../src/db/database.js';
import { openPostgres } from '../../src/db/postgres.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';

/**
 * A worker's SQL functions run on plans made once per connection, at their first call, which often
 * comes while cas_tasks is small (a worker starting on a new database, no statistics gathered yet).
 * Those plans must still look each task up by its id once the table is large, not read every task
 * row (supabase/migrations/20261220000100_cas_keyed_reads_without_hash_joins.sql): each call here
 * is made first with FIRST_TASKS in the table, then again on the same connection after TASKS_ADDED
 * more, and the task rows the second call read are counted by the transaction's own statistics
 * (pg_stat_xact_user_tables), not timed.
 */

/**
 * Tasks in the table at the first calls: a size at which reading the whole table into a hash join
 * looked cheapest to the planner (with 100, 250, 1,000 or 4,000 it chose the index lookups anyway).
 */
const FIRST_TASKS = 500;

/** Tasks queued between the first calls and the measured ones. */
const TASKS_ADDED = 3_000;

/** A batch of this many: the worker's default concurrency. */
const BATCH = 10;

/**
 * Task rows a measured call may read per task it names or claims: its own row, a few versions of
 * it and index entries left by the calls before (nothing here vacuums). Reading the table would be
 * TASKS_ADDED rows and more.
 */
const ROWS_READ_PER_TASK = 12;

interface Claimed {
  id: string;
  lease_token: string;
}

describeEachDatabase('plans of the keyed task functions', (kind) => {
  let t: TestDatabase;
  /** One connection: the plans compared are those it keeps. */
  let db: Database;
  beforeAll(async () => {
    t = await openTestDatabase(kind);
    db = t.url ? openPostgres({ connectionString: t.url, maxConnections: 1 }) : t.db;
  });
  afterAll(async () => {
    if (db !== t.db) await db.close();
    await t.close();
  });

  const enqueue = (count: number) =>
    db.query(
      `select count(*) from generate_series(1, $1::int) g
       cross join lateral cas_enqueue_task((array['marketer', 'analyst', 'planner'])[1 + g % 3], 'ping', null)`,
      [count],
    );
  const claim = (q: Queryable, limit: number) =>
    q.query<Claimed>(`select id, lease_token from cas_claim_tasks(p_worker_id => 'w1', p_limit => $1)`, [
      limit,
    ]);
  const completeAndClaim = (q: Queryable, done: Claimed[], limit: number) =>
    q.query<Claimed & { status: string }>(
      `select id, lease_token, status from cas_complete_and_claim_tasks($1::jsonb, 'w1', $2, 30000)`,
      [
        JSON.stringify(done.map((task) => ({ id: task.id, leaseToken: task.lease_token, result: null }))),
        limit,
      ],
    );
  const extendLeases = (q: Queryable, tasks: Claimed[]) =>
    q.query(`select id from cas_extend_lease($1::uuid[], $2::uuid[], 30000)`, [
      tasks.map((task) => task.id),
      tasks.map((task) => task.lease_token),
    ]);
  const fail = (q: Queryable, task: Claimed) =>
    q.query(`select id from cas_fail_task($1, $2, '{"message": "no"}'::jsonb, false)`, [
      task.id,
      task.lease_token,
    ]);

  /**
   * Runs `work` in a transaction and counts the cas_tasks rows it read (heap and index fetches).
   * The transaction's counters may still hold earlier transactions' reads (a backend reports them
   * at most once a second), hence the difference taken inside the transaction.
   */
  async function taskRowsRead<T>(
    work: (tx: Queryable) => Promise<T>,
  ): Promise<{ result: T; rowsRead: number }> {
    const rowsReadSoFar = async (tx: Queryable) =>
      (
        await tx.query<{ read: number }>(
          `select coalesce(sum(seq_tup_read + idx_tup_fetch), 0)::int as read
           from pg_stat_xact_user_tables where relname = 'cas_tasks'`,
        )
      )[0]!.read;
    return db.transaction(async (tx) => {
      const before = await rowsReadSoFar(tx);
      const result = await work(tx);
      return { result, rowsRead: (await rowsReadSoFar(tx)) - before };
    });
  }

  it('claim, heartbeat, complete-and-claim and fail read their own task rows, not the table', async () => {
    // The first calls: each statement's plan is made here.
    await enqueue(FIRST_TASKS);
    let running = await claim(db, BATCH);
    await extendLeases(db, running);
    running = (await completeAndClaim(db, running, BATCH)).filter((task) => task.status === 'running');
    await fail(db, running.pop()!);

    await enqueue(TASKS_ADDED);

    const heartbeat = await taskRowsRead((tx) => extendLeases(tx, running));
    expect(heartbeat.result).toHaveLength(running.length);
    const batch = await taskRowsRead((tx) => completeAndClaim(tx, running, BATCH));
    const claimed = batch.result.filter((task) => task.status === 'running');
    expect(batch.result.filter((task) => task.status === 'succeeded')).toHaveLength(running.length);
    expect(claimed).toHaveLength(BATCH);
    const claimOnly = await taskRowsRead((tx) => claim(tx, BATCH));
    expect(claimOnly.result).toHaveLength(BATCH);
    const failure = await taskRowsRead((tx) => fail(tx, claimed[0]!));
    expect(failure.result).toHaveLength(1);

    // Each call with what it read and what it may read: an empty list when none read too much.
    const overBudget = [
      ['heartbeat', heartbeat.rowsRead, running.length * ROWS_READ_PER_TASK],
      ['complete and claim', batch.rowsRead, (running.length + BATCH) * ROWS_READ_PER_TASK],
      ['claim', claimOnly.rowsRead, BATCH * ROWS_READ_PER_TASK],
      ['fail', failure.rowsRead, ROWS_READ_PER_TASK],
    ].filter(([, read, budget]) => Number(read) > Number(budget));
    expect(overBudget).toEqual([]);
  });
});
