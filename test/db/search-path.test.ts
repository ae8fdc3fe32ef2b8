import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';

/**
 * Every cas_ function runs with a fixed search_path, so an object a caller puts earlier on its own
 * path (a temporary table or function named like ours) cannot change what our SQL refers to. Every
 * migration that creates or redefines a cas_ function must say `set search_path = public, pg_temp`
 * (`create or replace` without the clause drops it); this test keeps that true.
 */
describeEachDatabase('search_path of cas_ functions', (kind) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await openTestDatabase(kind);
  });
  afterAll(() => testDb.close());

  it('every function named cas_% in public has a fixed search_path', async () => {
    const functions = await testDb.db.query<{ signature: string; search_path: string | null }>(`
      select p.oid::regprocedure::text as signature,
             (select c from unnest(p.proconfig) c where c like 'search\\_path=%') as search_path
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public' and p.proname like 'cas\\_%'
      order by 1`);
    expect(functions.length).toBeGreaterThan(30);
    expect(functions.filter((fn) => fn.search_path === null).map((fn) => fn.signature)).toEqual([]);
  });
});
