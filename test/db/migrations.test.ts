import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  migrate,
  migrationsApplied,
  readMigrations,
  SUPABASE_DIR,
  type Migration,
} from '../../src/db/migrate.js';
import { openPostgres } from '../../src/db/postgres.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';

const BUILT_IN_AGENTS = [
  'analyst',
  'developer',
  'engineer',
  'marketer',
  'planner',
  'qa',
  'security',
  'tester',
];
const CAS_TABLES = [
  'cas_agent_config',
  'cas_agent_events',
  'cas_agent_logs',
  'cas_agent_status',
  'cas_agents',
  'cas_event_sequence',
  'cas_metrics_timeseries',
  'cas_tasks',
];

let files: Migration[];
beforeAll(async () => {
  files = await readMigrations();
});

interface MigrationRow {
  version: string;
  name: string;
  statements: string[];
}

const recordedMigrations = (db: Database) =>
  db.query<MigrationRow>(
    'select version, name, statements from supabase_migrations.schema_migrations order by version',
  );

const agentIds = async (db: Database) =>
  (await db.query<{ id: string }>('select id from cas_agents order by id')).map((row) => row.id);

const userTables = (db: Database) =>
  db.query<{ relname: string }>(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = current_schema() and c.relkind in ('r', 'p') order by c.relname`,
  );

describeEachDatabase('migrations', (kind) => {
  describe('on an empty database', () => {
    let testDb: TestDatabase;
    beforeAll(async () => {
      testDb = await openTestDatabase(kind, { empty: true });
    });
    afterAll(() => testDb?.close());

    it('starts with no cas_ tables', async () => {
      expect((await userTables(testDb.db)).filter((t) => t.relname.startsWith('cas_'))).toEqual([]);
    });

    it('applies every migration file in order and records each one', async () => {
      expect(files.length).toBeGreaterThan(0);
      const result = await migrate(testDb.db);
      expect(result).toEqual({ applied: files.map((f) => f.version), changed: [], total: files.length });

      const rows = await recordedMigrations(testDb.db);
      expect(rows.map((r) => [r.version, r.name])).toEqual(files.map((f) => [f.version, f.name]));
      expect(rows.map((r) => r.statements)).toEqual(files.map((f) => [f.sql]));
      expect(await migrationsApplied(testDb.db)).toBe(true);
    });

    it('creates the cas_ tables with row level security enabled on every one', async () => {
      const rows = await testDb.db.query<{ relname: string; relrowsecurity: boolean }>(
        `select c.relname, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = current_schema() and c.relkind in ('r', 'p') and c.relname like 'cas\\_%'
         order by c.relname`,
      );
      expect(rows.map((r) => r.relname)).toEqual(expect.arrayContaining(CAS_TABLES));
      expect(rows.filter((r) => !r.relrowsecurity).map((r) => r.relname)).toEqual([]);
    });

    it('seeds exactly the eight built-in agents, all idle', async () => {
      expect(await agentIds(testDb.db)).toEqual(BUILT_IN_AGENTS);
      const status = await testDb.db.query<{
        agent_id: string;
        status: string;
        running_tasks: number;
        started: boolean;
      }>(
        `select agent_id, status, running_tasks, started_at is not null as started
         from cas_agent_status order by agent_id`,
      );
      expect(status).toEqual(
        BUILT_IN_AGENTS.map((id) => ({ agent_id: id, status: 'idle', running_tasks: 0, started: true })),
      );
    });

    it('applies nothing on a second run and changes no rows', async () => {
      const before = await recordedMigrations(testDb.db);
      const result = await migrate(testDb.db);
      expect(result).toEqual({ applied: [], changed: [], total: files.length });
      expect(await recordedMigrations(testDb.db)).toEqual(before);
      expect(await agentIds(testDb.db)).toEqual(BUILT_IN_AGENTS);
      const [counts] = await testDb.db.query<{ statuses: number; events: number; last_seq: number }>(
        `select (select count(*)::int from cas_agent_status) as statuses,
                (select count(*)::int from cas_agent_events) as events,
                (select last_seq from cas_event_sequence) as last_seq`,
      );
      expect(counts).toEqual({ statuses: 8, events: 0, last_seq: 0 });
    });
  });

  describe('an upgrade of a database with task history', () => {
    // 20261216000200_cas_all_time_metrics_per_agent.sql starts each agent's all-time row from the
    // hourly totals folded so far; the deltas not folded yet stay deltas.
    const ALL_TIME = '20261216000200';
    let testDb: TestDatabase;
    beforeAll(async () => {
      testDb = await openTestDatabase(kind, { empty: true });
    });
    afterAll(() => testDb?.close());

    const finished = (status: string, hoursAgo: number, durationMs: number) =>
      testDb.db.exec(
        `insert into cas_tasks (agent_id, action, status, attempts, started_at, finished_at, duration_ms)
         values ('analyst', 'ping', '${status}', 1, now() - interval '${hoursAgo} hours',
                 now() - interval '${hoursAgo} hours', ${durationMs})`,
      );

    it("starts every agent's all-time metrics from the hourly rollups it folded before", async () => {
      for (const file of files.filter((f) => f.version < ALL_TIME)) await testDb.db.exec(file.sql);
      await testDb.db.exec(await readFile(path.join(SUPABASE_DIR, 'seed.sql'), 'utf8'));
      await finished('succeeded', 30, 100);
      await finished('failed', 2, 500);
      await testDb.db.query('select cas_fold_task_counters()');
      await finished('succeeded', 0, 300);

      for (const file of files.filter((f) => f.version >= ALL_TIME)) await testDb.db.exec(file.sql);
      const [row] = await testDb.db.query<Record<string, number>>(
        `select succeeded::int, failed::int, duration_count::int, duration_ms_sum::float8
         from cas_task_rollup_agent_totals where agent_id = 'analyst'`,
      );
      expect(row).toEqual({ succeeded: 1, failed: 1, duration_count: 2, duration_ms_sum: 600 });
      const metrics = await testDb.db.query<Record<string, number>>(
        `select total_runs::int, succeeded::int, failed::int, avg_duration_ms from cas_agent_metrics(array['analyst'])`,
      );
      expect(metrics).toEqual([{ total_runs: 3, succeeded: 2, failed: 1, avg_duration_ms: 300 }]);
      await testDb.db.query('select cas_fold_task_counters()');
      expect(
        await testDb.db.query(
          `select total_runs::int, succeeded::int, failed::int, avg_duration_ms from cas_agent_metrics(array['analyst'])`,
        ),
      ).toEqual(metrics);
    });
  });

  describe('an upgrade to keys that append', () => {
    // 20261217000100_cas_keys_that_append.sql: the event log's primary key becomes seq, and new task
    // ids are time-ordered; what was written before keeps its ids and positions.
    const KEYS = '20261217000100';
    let testDb: TestDatabase;
    beforeAll(async () => {
      testDb = await openTestDatabase(kind, { empty: true });
    });
    afterAll(() => testDb?.close());

    const enqueue = async () =>
      (
        await testDb.db.query<{ id: string; created_ms: string }>(
          `select id::text, floor(extract(epoch from created_at) * 1000)::bigint::text as created_ms
           from cas_enqueue_task('analyst', 'ping', null)`,
        )
      )[0]!;
    const events = () =>
      testDb.db.query<{ seq: number; id: string; task_id: string }>(
        'select seq::int, id::text, task_id::text from cas_agent_events order by seq',
      );
    const primaryKeyColumns = async (table: string) =>
      (
        await testDb.db.query<{ column: string }>(
          `select a.attname as column from pg_index i
           join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
           where i.indrelid = $1::regclass and i.indisprimary order by a.attnum`,
          [table],
        )
      ).map((row) => row.column);

    it('keys the event log by seq and gives new tasks time-ordered ids, keeping earlier ones', async () => {
      for (const file of files.filter((f) => f.version < KEYS)) await testDb.db.exec(file.sql);
      await testDb.db.exec(await readFile(path.join(SUPABASE_DIR, 'seed.sql'), 'utf8'));
      const before = await enqueue();
      expect(before.id[14]).toBe('4'); // gen_random_uuid's version
      const eventsBefore = await events();
      expect(await primaryKeyColumns('cas_agent_events')).toEqual(['id']);

      for (const file of files.filter((f) => f.version >= KEYS)) await testDb.db.exec(file.sql);
      expect(await primaryKeyColumns('cas_agent_events')).toEqual(['seq']);
      expect(await events()).toEqual(eventsBefore);

      const after = [await enqueue(), await enqueue(), await enqueue()];
      const [now] = await testDb.db.query<{ ms: string }>(
        'select floor(extract(epoch from clock_timestamp()) * 1000)::bigint::text as ms',
      );
      for (const task of after) {
        expect(task.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        // The first 48 bits: the Unix milliseconds when the row was written, within its transaction.
        const ms = BigInt(`0x${task.id.replace(/-/g, '').slice(0, 12)}`);
        expect(ms >= BigInt(task.created_ms) && ms <= BigInt(now!.ms)).toBe(true);
      }
      const prefixes = after.map((task) => task.id.slice(0, 13));
      expect([...prefixes].sort()).toEqual(prefixes);
      // The old task and its event are still found by their ids; seq stays unique.
      expect((await testDb.db.query('select 1 from cas_tasks where id = $1', [before.id])).length).toBe(1);
      await expect(
        testDb.db.query(
          `insert into cas_agent_events (seq, event_type, agent_id) values ($1, 'task_queued', 'analyst')`,
          [eventsBefore[0]!.seq],
        ),
      ).rejects.toThrow(/duplicate key/);
    });
  });

  describe('the per-file test database', () => {
    let testDb: TestDatabase;
    beforeAll(async () => {
      testDb = await openTestDatabase(kind);
    });
    afterAll(() => testDb?.close());

    it('starts migrated and seeded, so migrate() has nothing to do', async () => {
      expect(testDb.kind).toBe(kind);
      expect(await migrationsApplied(testDb.db)).toBe(true);
      expect(await agentIds(testDb.db)).toEqual(BUILT_IN_AGENTS);
      expect(await migrate(testDb.db)).toEqual({ applied: [], changed: [], total: files.length });
    });

    it('is writable and private to this file', async () => {
      await testDb.db.query(`insert into cas_agents (id, name, role) values ('migrations-test', 'M', 'm')`);
      expect(await agentIds(testDb.db)).toContain('migrations-test');
      if (kind === 'postgres') {
        expect(testDb.url).toMatch(/^postgres(ql)?:\/\/.+\/cas_test_\d+_\d+_[0-9a-f]{10}$/);
        expect(testDb.url?.endsWith(`/${testDb.name}`)).toBe(true);
      } else {
        expect(testDb.url).toBeUndefined();
      }
    });
  });

  describe('concurrent migrate() calls', () => {
    let testDb: TestDatabase;
    const extra: Database[] = [];
    beforeAll(async () => {
      testDb = await openTestDatabase(kind, { empty: true });
    });
    afterAll(async () => {
      await Promise.all(extra.map((db) => db.close()));
      await testDb?.close();
    });

    it('apply each migration exactly once', async () => {
      // On the server: two separate pools, as two processes starting together would have. PGlite is
      // one connection, so there the two calls share it and its transactions take turns.
      const [first, second] =
        kind === 'postgres'
          ? [openPostgres({ connectionString: testDb.url! }), openPostgres({ connectionString: testDb.url! })]
          : [testDb.db, testDb.db];
      if (kind === 'postgres') extra.push(first, second);

      const results = await Promise.all([migrate(first), migrate(second)]);
      const applied = results.map((r) => r.applied).sort((a, b) => b.length - a.length);
      expect(applied).toEqual([files.map((f) => f.version), []]);

      const counts = await testDb.db.query<{ version: string; n: number }>(
        `select version, count(*)::int as n from supabase_migrations.schema_migrations
         group by version order by version`,
      );
      expect(counts).toEqual(files.map((f) => ({ version: f.version, n: 1 })));
      expect(await agentIds(testDb.db)).toEqual(BUILT_IN_AGENTS);
    });
  });
});
