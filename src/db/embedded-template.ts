/**
 * A migrated, seeded embedded database made once at `npm install` (scripts/build-embedded-template.ts)
 * so the first `npm start` copies it (about a second) instead of running initdb in WebAssembly and
 * every migration (6 to 11 seconds). Keyed by the PGlite version and the text of every migration
 * and the seed: after a change to either, the first start falls back to building its database.
 */
import { createHash } from 'node:crypto';
import { copyFile, cp, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate, readMigrations, SUPABASE_DIR } from './migrate.js';
import { isNewDataDir, openPglite, VERSION_FILE } from './pglite.js';

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
  return path.join(TEMPLATE_DIR, `pgdata-${await templateKey()}`);
}

/** The template matching this code, if `npm install` made one; null otherwise. */
export async function findEmbeddedTemplate(): Promise<string | null> {
  const folder = await embeddedTemplatePath();
  return isNewDataDir(folder) ? null : folder;
}

/**
 * Copies a template into a new data folder, PG_VERSION last, so a start interrupted midway leaves
 * a folder the next start fills again. Copied as files, not loaded with PGlite's `loadDataDir`:
 * that unpacks a dump through the WebAssembly heap, which grows to hold it and never shrinks (the
 * process then idled about 90 MiB larger).
 */
export async function copyEmbeddedTemplate(template: string, dataDir: string): Promise<void> {
  const versionFile = path.join(template, VERSION_FILE);
  await cp(template, dataDir, { recursive: true, filter: (source) => source !== versionFile });
  await copyFile(versionFile, path.join(dataDir, VERSION_FILE));
}

/** Builds the template for this code (replacing older ones); resolves with its path. */
export async function buildEmbeddedTemplate(): Promise<string> {
  const folder = await embeddedTemplatePath();
  // Built aside, then renamed: a start never copies half a template.
  const building = path.join(tmpdir(), `cas-template-${process.pid}`);
  await rm(building, { recursive: true, force: true });
  const db = await openPglite({ dataDir: building });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  await rm(TEMPLATE_DIR, { recursive: true, force: true });
  await mkdir(TEMPLATE_DIR, { recursive: true });
  await rename(building, folder).catch(async () => {
    // Another file system: copied instead.
    await cp(building, folder, { recursive: true });
    await rm(building, { recursive: true, force: true });
  });
  return folder;
}
