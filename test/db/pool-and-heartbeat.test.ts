/**
 * A process's database use under load: the PostgreSQL pool is sized from its workers and their
 * concurrency plus the API's share, and a slow database never has two heartbeats of one worker in
 * flight at once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Database, Queryable } from '../../src/db/database.js';
import { poolSize } from '../../src/db/postgres.js';
import type pg from 'pg';
import { sleep } from '../../src/feed/change-feed.js';
import { silentLogger } from '../../src/logger.js';
import { createRuntime, openDatabase } from '../../src/runtime/create-runtime.js';
import { openTestDatabase, type TestDatabase } from '../support/databases.js';
import { FAST_RUNTIME_ENV } from '../support/runtime.js';

it('sizes the PostgreSQL pool as CAS_WORKERS × (CAS_WORKER_CONCURRENCY + 2) + 10', async () => {
  const config = loadConfig({
    DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
    CAS_WORKERS: '3',
    CAS_WORKER_CONCURRENCY: '4',
  });
  expect(poolSize(config)).toBe(3 * (4 + 2) + 10);
  const db = (await openDatabase(config)) as Database & { pool: pg.Pool };
  try {
    expect(db.pool.options.max).toBe(28);
  } finally {
    await db.close();
  }
  expect(poolSize({ workers: 0, workerConcurrency: 10 })).toBe(10);
});

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await openTestDatabase('pglite');
});
afterAll(() => testDb?.close());

/** The database with every lease heartbeat made slower than the heartbeat period. */
function slowHeartbeats(db: Database, delayMs: number) {
  const stats = { calls: 0, inFlight: 0, mostInFlight: 0 };
  const query: Queryable['query'] = async (sql, params) => {
    if (!sql.includes('cas_extend_lease')) return db.query(sql, params);
    stats.calls += 1;
    stats.inFlight += 1;
    stats.mostInFlight = Math.max(stats.mostInFlight, stats.inFlight);
    try {
      await sleep(delayMs);
      return await db.query(sql, params);
    } finally {
      stats.inFlight -= 1;
    }
  };
  const wrapped: Database = { ...db, query, close: async () => undefined };
  return { wrapped, stats };
}

it('never has two heartbeats of one worker in flight', { timeout: 120_000 }, async () => {
  // Lease 3 s: a heartbeat every second, each taking 1.5 s (still well inside the lease).
  const { wrapped, stats } = slowHeartbeats(testDb.db, 1500);
  const runtime = await createRuntime({
    config: loadConfig({ ...FAST_RUNTIME_ENV, CAS_TASK_LEASE_MS: '3000' }),
    database: wrapped,
    logger: silentLogger(),
  });
  try {
    const task = await runtime.executeTask({ agentId: 'tester', action: 'wait', input: { ms: 600_000 } });
    await expect.poll(() => stats.calls, { timeout: 60_000, interval: 100 }).toBeGreaterThanOrEqual(3);
    expect(stats.mostInFlight).toBe(1);
    await runtime.cancelTask(task.id);
  } finally {
    await runtime.shutdown({ deadlineMs: 0 });
  }
});
