/**
 * A migrated, seeded embedded database made once at `npm install` (scripts/build-embedded-template.ts)
 * so the first `npm start` copies it (about a second) instead of running initdb in WebAssembly and
 * every migration (6 to 11 seconds). Keyed by the PGlite version and the text of every migration
 * and the seed: after a change to either, the first start falls back to building its database.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate, readMigrations, SUPABASE_DIR } from './migrate.js';
import { openPglite } from './pglite.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where templates are kept: beside the installed packages, rebuilt with them. */
const TEMPLATE_DIR = path.join(ROOT, 'node_modules', '.cache', 'cas-runtime-api');

async function templateKey(): Promise<string> {
  const hash = createHash('sha256');
  const pglite = JSON.parse(
    await readFile(path.join(ROOT, 'node_modules', '@electric-sql', 'pglite', 'package.json'), 'utf8'),
  ) as { version: string };
  hash.update(pglite.version);
  for (const migration of await readMigrations()) hash.update(`${migration.version}\0${migration.sql}\0`);
  hash.update(await readFile(path.join(SUPABASE_DIR, 'seed.sql'), 'utf8'));
  return hash.digest('hex').slice(0, 16);
}

export async function embeddedTemplatePath(): Promise<string> {
  return path.join(TEMPLATE_DIR, `pgdata-${await templateKey()}.tgz`);
}

/** The template matching this code, if `npm install` made one; null otherwise. */
export async function findEmbeddedTemplate(): Promise<Blob | null> {
  const file = await embeddedTemplatePath();
  return existsSync(file) ? new Blob([await readFile(file)]) : null;
}

/** A data folder PGlite has not initialised yet (initdb writes PG_VERSION first). */
export const isNewDataDir = (dataDir: string) => !existsSync(path.join(dataDir, 'PG_VERSION'));

/** Builds the template for this code (replacing older ones); resolves with its path. */
export async function buildEmbeddedTemplate(): Promise<string> {
  const file = await embeddedTemplatePath();
  const db = await openPglite();
  try {
    await migrate(db);
    const dump = await db.pglite.dumpDataDir('gzip');
    await rm(TEMPLATE_DIR, { recursive: true, force: true });
    await mkdir(TEMPLATE_DIR, { recursive: true });
    // Written aside, then renamed: a start never reads half a template.
    const partial = path.join(tmpdir(), `cas-template-${process.pid}.tgz`);
    await writeFile(partial, Buffer.from(await dump.arrayBuffer()));
    await rename(partial, file).catch(async () => {
      await writeFile(file, await readFile(partial));
      await rm(partial, { force: true });
    });
    return file;
  } finally {
    await db.close();
  }
}
