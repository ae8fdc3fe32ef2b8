/**
 * A first embedded start when no template matches the migrations (a pull that added some, without
 * a fresh `npm install`): the template is built in a child process, then copied into the new data
 * folder; two first starts at once both start and leave one whole template. Each test uses a
 * template folder of its own, never the installed one (node_modules/.cache), and kills the build
 * processes it caused, also when it fails or times out.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Database } from '../../src/db/database.js';
import { openDatabase } from '../../src/runtime/create-runtime.js';

/** No wall-clock assertion: a ceiling for two WebAssembly initdbs and migrations on a busy machine. */
const BUILD_CEILING_MS = 300_000;

const folders: string[] = [];
const buildPids: number[] = [];
const databases: Database[] = [];

afterEach(async () => {
  // The builds this test caused, if still running (a failure or timeout midway).
  for (const pid of buildPids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already exited.
    }
  }
  await Promise.all(databases.splice(0).map((db) => db.close().catch(() => undefined)));
  await Promise.all(folders.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempFolder(name: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `cas-template-test-${name}-`));
  folders.push(dir);
  return dir;
}

/** A first start's database on a new data folder, with its log messages. */
async function firstStart(templateDir: string) {
  const dataDir = path.join(await tempFolder('data'), 'data');
  const messages: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        messages.push((JSON.parse(line) as { msg: string }).msg);
      done();
    },
  });
  const db = await openDatabase(loadConfig({ CAS_DATA_DIR: dataDir }), pino({ level: 'info' }, sink), {
    templateDir,
    onTemplateBuild: (pid) => buildPids.push(pid),
  });
  databases.push(db);
  return { db, dataDir, messages };
}

/**
 * The one folder in `templateDir`, a template (`pgdata-<key>`), with no build folder beside it. Not
 * recomputed from the migrations: a migration edited meanwhile would change the key.
 */
async function builtTemplate(templateDir: string): Promise<string> {
  const names = await readdir(templateDir);
  expect(names).toHaveLength(1);
  expect(names[0]).toMatch(/^pgdata-[0-9a-f]{16}$/);
  return path.join(templateDir, names[0]!);
}

/** PostgreSQL's system identifier (the first 8 bytes of global/pg_control), set once by initdb. */
const systemIdentifier = async (dataDir: string) =>
  (await readFile(path.join(dataDir, 'global', 'pg_control'))).subarray(0, 8).toString('hex');

it(
  'builds the missing template in a child process, then starts the new data folder from it',
  { timeout: BUILD_CEILING_MS },
  async () => {
    const templateDir = await tempFolder('templates');
    const { db, dataDir, messages } = await firstStart(templateDir);

    expect(buildPids).toHaveLength(1);
    expect(buildPids[0]).not.toBe(process.pid);
    const template = await builtTemplate(templateDir);
    expect(existsSync(path.join(template, 'PG_VERSION'))).toBe(true);
    expect(messages).toEqual([
      'new embedded database: building the template for these migrations first (once, in a child process)',
      'new embedded database: starting from the installed template',
    ]);
    // Migrated already, though openDatabase does not migrate: the template's files.
    expect(
      await db.query<{ table: string | null }>(`select to_regclass('cas_tasks')::text as table`),
    ).toEqual([{ table: 'cas_tasks' }]);
    await db.close();
    // A copy, not a database initialised here: the same system identifier.
    expect(await systemIdentifier(dataDir)).toBe(await systemIdentifier(template));
  },
);

it(
  'two first starts at once both start, and leave one whole template and no partial build',
  { timeout: BUILD_CEILING_MS },
  async () => {
    const templateDir = await tempFolder('templates');
    const starts = await Promise.all([firstStart(templateDir), firstStart(templateDir)]);

    expect(buildPids).toHaveLength(2);
    const template = await builtTemplate(templateDir);
    for (const { db, dataDir } of starts) {
      expect(
        await db.query<{ table: string | null }>(`select to_regclass('cas_tasks')::text as table`),
      ).toEqual([{ table: 'cas_tasks' }]);
      await db.close();
      expect(await systemIdentifier(dataDir)).toBe(await systemIdentifier(template));
    }
  },
);
