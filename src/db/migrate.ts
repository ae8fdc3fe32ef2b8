import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Database } from './database.js';

/** supabase/ at the repository root: migrations/ and seed.sql, as the Supabase CLI lays them out. */
export const SUPABASE_DIR = fileURLToPath(new URL('../../supabase/', import.meta.url));

/** Held for the whole run so two processes starting together never apply a migration twice. */
const MIGRATION_LOCK_KEY = '4846791580151137001';

const MIGRATION_FILE = /^(\d+)_(.+)\.sql$/;

export interface Migration {
  version: string;
  name: string;
  sql: string;
}

export interface MigrationResult {
  applied: string[];
  /** Versions applied earlier whose file has changed since: that database runs the old text. */
  changed: string[];
  total: number;
}

export async function readMigrations(dir = path.join(SUPABASE_DIR, 'migrations')): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => MIGRATION_FILE.test(file)).sort();
  return Promise.all(
    files.map(async (file) => {
      const [, version, name] = MIGRATION_FILE.exec(file)!;
      return { version: version!, name: name!, sql: await readFile(path.join(dir, file), 'utf8') };
    }),
  );
}

/**
 * Applies pending migrations in order and then the seed, all in one transaction, recording each
 * migration where the Supabase CLI records its own (supabase_migrations.schema_migrations).
 */
export async function migrate(db: Database, options: { seed?: boolean } = {}): Promise<MigrationResult> {
  const migrations = await readMigrations();
  const seed = options.seed === false ? null : await readFile(path.join(SUPABASE_DIR, 'seed.sql'), 'utf8');
  return db.transaction(async (tx) => {
    await tx.query(`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await tx.exec(`
      create schema if not exists supabase_migrations;
      create table if not exists supabase_migrations.schema_migrations (
        version text primary key, statements text[], name text
      );`);
    const recorded = new Map(
      (
        await tx.query<{ version: string; statements: string[] | null }>(
          'select version, statements from supabase_migrations.schema_migrations',
        )
      ).map((row) => [row.version, row.statements?.join('') ?? null]),
    );
    const done = new Set(recorded.keys());
    const changed = migrations
      .filter(
        (m) =>
          recorded.has(m.version) && recorded.get(m.version) !== null && recorded.get(m.version) !== m.sql,
      )
      .map((m) => m.version);
    const applied: string[] = [];
    for (const migration of migrations.filter((m) => !done.has(m.version))) {
      await tx.exec(migration.sql);
      await tx.query(
        'insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, $2, $3)',
        [migration.version, migration.name, [migration.sql]],
      );
      applied.push(migration.version);
    }
    if (seed) await tx.exec(seed);
    return { applied, changed, total: migrations.length };
  });
}

let migrationVersions: Promise<string[]> | null = null;

/**
 * True when every migration in supabase/migrations is recorded as applied. One query; the list of
 * files is read once per process (health checks call this often).
 */
export async function migrationsApplied(db: Database): Promise<boolean> {
  migrationVersions ??= readMigrations().then((migrations) => migrations.map((m) => m.version));
  const versions = await migrationVersions;
  try {
    const rows = await db.query<{ n: number }>(
      `select count(*)::int as n from supabase_migrations.schema_migrations where version = any ($1)`,
      [versions],
    );
    return rows[0]?.n === versions.length;
  } catch (error) {
    // No migration was ever applied here: the table does not exist yet (undefined_table).
    if ((error as { code?: string }).code === '42P01') return false;
    throw error;
  }
}
