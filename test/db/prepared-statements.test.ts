/**
 * On the PostgreSQL server the SQL-function calls run as prepared statements: each connection
 * parses and plans a call's text once. CAS_PREPARED_STATEMENTS=false runs them unprepared (for a
 * transaction pooler), and a function whose result columns changed under a running process (a
 * rolling deploy's migration) is prepared afresh rather than failing from then on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { openPostgres } from '../../src/db/postgres.js';
import { sqlFunctionsOver } from '../../src/db/sql-functions.js';
import { openTestDatabase, testDatabaseKinds, type TestDatabase } from '../support/databases.js';

const PREPARED = `select name, statement from pg_prepared_statements`;

describe.skipIf(!testDatabaseKinds.includes('postgres'))('prepared SQL-function calls [postgres]', () => {
  let testDb: TestDatabase;
  /** One connection each, so that what one prepared is what the next statement sees. */
  const open: Database[] = [];
  const connection = (preparedStatements?: boolean) => {
    const db = openPostgres({ connectionString: testDb.url!, maxConnections: 1, preparedStatements });
    open.push(db);
    return db;
  };

  beforeAll(async () => {
    testDb = await openTestDatabase('postgres');
    await testDb.db.exec(`create function cas_test_shape() returns table (a int) language sql as 'select 1'`);
  });
  afterAll(async () => {
    await Promise.all(open.map((db) => db.close()));
    await testDb?.close();
  });

  it('prepares a call once per connection and runs it again by name', async () => {
    const db = connection();
    const sql = sqlFunctionsOver(db);
    expect(await sql.rows('cas_test_shape', {})).toEqual([{ a: 1 }]);
    expect(await sql.rows('cas_test_shape', {})).toEqual([{ a: 1 }]);
    expect(await db.query(PREPARED)).toEqual([
      { name: expect.stringMatching(/^cas_statement_/), statement: 'select * from cas_test_shape()' },
    ]);
    // Other statements (migrations, ad-hoc reads) are never kept.
    await db.query('select $1::int as n', [1]);
    expect(await db.query(PREPARED)).toHaveLength(1);
  });

  it('prepares nothing with CAS_PREPARED_STATEMENTS=false', async () => {
    const db = connection(false);
    expect(await sqlFunctionsOver(db).rows('cas_test_shape', {})).toEqual([{ a: 1 }]);
    expect(await db.query(PREPARED)).toEqual([]);
  });

  it('prepares a call afresh when its function now returns other columns', async () => {
    const db = connection();
    const sql = sqlFunctionsOver(db);
    const call = () =>
      db.transaction((tx) => tx.query('select * from cas_test_shape()', [], { prepare: true }));
    expect(await sql.rows('cas_test_shape', {})).toEqual([{ a: 1 }]);
    expect(await call()).toEqual([{ a: 1 }]);
    // As another process's migration would.
    await testDb.db.exec(`
      drop function cas_test_shape();
      create function cas_test_shape() returns table (a int, b int) language sql as 'select 1, 2';`);
    // Outside a transaction the call is run again under a new name at once.
    expect(await sql.rows('cas_test_shape', {})).toEqual([{ a: 1, b: 2 }]);
    // Inside one, the failed statement has aborted it: that call fails, the next one prepares anew.
    await testDb.db.exec(`
      drop function cas_test_shape();
      create function cas_test_shape() returns table (a int, b int, c int) language sql as 'select 1, 2, 3';`);
    await expect(call()).rejects.toThrow('cached plan must not change result type');
    expect(await call()).toEqual([{ a: 1, b: 2, c: 3 }]);
    expect(await sql.rows('cas_test_shape', {})).toEqual([{ a: 1, b: 2, c: 3 }]);
  });
});
