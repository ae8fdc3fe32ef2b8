/**
 * A PostgreSQL server that will not vacuum the cas_ tables is named at start: without vacuum, the
 * dead rows every task leaves are never given back (docs/operations.md).
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { databaseBackend } from '../../src/runtime/backend.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';

describeEachDatabase('autovacuum check at start', (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase(kind);
  });
  afterAll(() => t?.close());

  /** The warnings of a start (prepare) on the test database. */
  async function startWarnings(): Promise<string[]> {
    const warnings: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          const entry = JSON.parse(line) as { level: number; msg: string };
          if (entry.level === 40) warnings.push(entry.msg);
        }
        done();
      },
    });
    await databaseBackend(t.db, pino({ level: 'info' }, sink)).prepare();
    return warnings.filter((msg) => msg.startsWith('autovacuum is off'));
  }

  it.runIf(kind === 'postgres')(
    'warns when the server will not vacuum, and names cas_ tables that will not',
    async () => {
      const [server] = await t.db.query<{ on: boolean }>(
        `select current_setting('autovacuum')::boolean as on`,
      );
      const serverWarning = /^autovacuum is off on this PostgreSQL server: .*VACUUM ANALYZE on the cas_/;
      const before = await startWarnings();
      if (server!.on) expect(before).toEqual([]);
      else expect(before).toEqual([expect.stringMatching(serverWarning)]);

      await t.db.exec(`alter table cas_task_count_deltas set (autovacuum_enabled = false)`);
      try {
        const after = await startWarnings();
        expect(after).toEqual([
          expect.stringMatching(
            server!.on ? /^autovacuum is off for cas_task_count_deltas: / : serverWarning,
          ),
        ]);
      } finally {
        await t.db.exec(`alter table cas_task_count_deltas reset (autovacuum_enabled)`);
      }
    },
  );

  it.runIf(kind === 'pglite')('says nothing on the embedded database, which vacuums itself', async () => {
    expect(await startWarnings()).toEqual([]);
  });
});
