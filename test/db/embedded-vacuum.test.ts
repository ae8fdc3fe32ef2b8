/**
 * The embedded database vacuums itself: PGlite runs no autovacuum, so the pages of deleted rows
 * (the task counters' deltas, added by every batch and deleted by every fold) would stay for as
 * long as the server runs.
 */
import { afterEach, expect, it } from 'vitest';
import { openPglite } from '../../src/db/pglite.js';
import type { Database } from '../../src/db/database.js';
import { until } from '../support/until.js';

const opened: Database[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((db) => db.close()));
});

/** An in-memory database with a table whose rows were all inserted and then deleted. */
async function churned(vacuumIntervalMs: number) {
  const db = await openPglite({ vacuumIntervalMs });
  opened.push(db);
  await db.exec(`create table churn (n int, padding text)`);
  for (let round = 0; round < 3; round += 1)
    await db.exec(
      `insert into churn select g, repeat('x', 100) from generate_series(1, 2000) g; delete from churn;`,
    );
  return db;
}

const pagesOf = async (db: Database) =>
  (await db.query<{ pages: number }>(`select (pg_relation_size('churn') / 8192)::int as pages`))[0]!.pages;

it('gives back the pages of deleted rows by vacuuming every interval', async () => {
  const db = await churned(50);
  // A vacuum that finds the table empty truncates it.
  expect(
    await until('the churned table vacuumed', async () => ((await pagesOf(db)) === 0 ? true : undefined)),
  ).toBe(true);
  // And again after another round of churn: every interval, not once.
  await db.exec(`insert into churn select g, 'y' from generate_series(1, 2000) g; delete from churn;`);
  expect(
    await until('the table vacuumed again', async () => ((await pagesOf(db)) === 0 ? true : undefined)),
  ).toBe(true);
});

it('keeps every page without its vacuum (interval 0), and closes while one is due', async () => {
  const never = await churned(0);
  const pages = await pagesOf(never);
  expect(pages).toBeGreaterThan(10);
  // The other database's vacuums (every 50 ms) have had time to run; this one's table is as it was.
  const due = await churned(50);
  await until('the other table vacuumed', async () => ((await pagesOf(due)) === 0 ? true : undefined));
  expect(await pagesOf(never)).toBe(pages);
  await due.close();
  await never.close();
});
