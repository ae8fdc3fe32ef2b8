/**
 * A migrated, seeded embedded database made once at `npm install` (scripts/build-embedded-template.ts)
 * so the first `npm start` copies it (about a second) instead of running initdb in WebAssembly and
 * every migration (6 to 11 seconds). Keyed by the PGlite version and the text of every migration
 * and the seed. After a change to either (a pull that adds migrations), the first start on a new
 * data folder builds the template for the new key in a child process (`buildEmbeddedTemplateInChild`)
 * and copies it as usual: migrating in the server's own process would leave its WebAssembly heap
 * grown for good (about 720 instead of 205 MiB resident).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate, readMigrations, SUPABASE_DIR } from './migrate.js';
import { isNewDataDir, openPglite, VERSION_FILE } from './pglite.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where templates are kept: beside the installed packages, rebuilt with them. */
export const TEMPLATE_DIR = path.join(ROOT, 'node_modules', '.cache', 'cas-runtime-api');
/** Templates are `pgdata-<key>` folders in the template folder. */
const TEMPLATE_PREFIX = 'pgdata-';
/** A template being built by process <pid>: `.building-<pid>`, renamed to its key when complete. */
const BUILDING_PREFIX = '.building-';
/** The child process's entry (src/db/embedded-template-child.ts, or its compiled .js in dist/). */
const CHILD_ENTRY = fileURLToPath(
  new URL(`./embedded-template-child${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);
/** The last characters of a failed child's stderr kept for the error message. */
const CHILD_STDERR_KEPT = 4096;

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

/** The folder the template for this code has (or would have) in `templateDir`. */
export async function embeddedTemplatePath(templateDir = TEMPLATE_DIR): Promise<string> {
  return path.join(templateDir, `${TEMPLATE_PREFIX}${await templateKey()}`);
}

/** The template matching this code, if one was built; null otherwise. */
export async function findEmbeddedTemplate(templateDir = TEMPLATE_DIR): Promise<string | null> {
  const folder = await embeddedTemplatePath(templateDir);
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
  await copyTree(template, dataDir, (source) => source !== versionFile);
  await copyFile(versionFile, path.join(dataDir, VERSION_FILE));
}

/**
 * Copies the files and folders under `from` that `include` keeps into `to`, every file of a folder
 * at once (Node's thread pool runs a few at a time). fs.cp checks each file in JavaScript, one
 * after another: 0.72 s for the template's 1,118 files, a fifth of a first start on a slow
 * machine; this takes about what `cp -r` does (0.24 s).
 */
async function copyTree(from: string, to: string, include: (source: string) => boolean): Promise<void> {
  await mkdir(to, { recursive: true });
  const entries = await readdir(from, { withFileTypes: true });
  await Promise.all(
    entries.map((entry) => {
      const source = path.join(from, entry.name);
      if (!include(source)) return undefined;
      const target = path.join(to, entry.name);
      if (entry.isDirectory()) return copyTree(source, target, include);
      return copyFile(source, target);
    }),
  );
}

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Builds the template for this code in this process (the WebAssembly heap grows to migrate and
 * stays so: run it in a process of its own, as postinstall and `buildEmbeddedTemplateInChild` do);
 * resolves with its path. Built aside in `.building-<pid>`, then renamed to its key: a start never
 * copies half a template, and of two processes building the same key at once the first rename
 * wins and the other's copy is discarded. The folders of builds whose process no longer runs are
 * removed after; with `removeOthers` (`npm install`), templates of other keys too. A start does
 * not remove them: another process, of other code, may be copying one at that moment.
 */
export async function buildEmbeddedTemplate(
  templateDir = TEMPLATE_DIR,
  options: { removeOthers?: boolean } = {},
): Promise<string> {
  const folder = await embeddedTemplatePath(templateDir);
  await mkdir(templateDir, { recursive: true });
  const building = path.join(templateDir, `${BUILDING_PREFIX}${process.pid}`);
  await rm(building, { recursive: true, force: true });
  try {
    const db = await openPglite({ dataDir: building });
    try {
      await migrate(db);
    } finally {
      await db.close();
    }
    await rename(building, folder).catch((error: NodeJS.ErrnoException) => {
      // Another process renamed the same template into place first.
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
    });
  } finally {
    await rm(building, { recursive: true, force: true });
  }
  for (const name of await readdir(templateDir)) {
    const pid = name.startsWith(BUILDING_PREFIX) ? Number(name.slice(BUILDING_PREFIX.length)) : null;
    const older = options.removeOthers && name.startsWith(TEMPLATE_PREFIX) && name !== path.basename(folder);
    const abandoned = pid !== null && Number.isInteger(pid) && !isRunning(pid);
    if (older || abandoned) await rm(path.join(templateDir, name), { recursive: true, force: true });
  }
  return folder;
}

/**
 * Builds the template for this code in a child process (src/db/embedded-template-child.ts), so the
 * migration's WebAssembly heap goes away with it; resolves with the path of the template it built
 * (the one to copy, even if the migrations changed meanwhile: the start then migrates the rest).
 * `onSpawn` is told the child's pid. The child is killed when this process exits, and exits itself
 * when this process dies without exiting (a SIGKILL closes its IPC channel). Rejects with the
 * child's stderr when it fails.
 */
export async function buildEmbeddedTemplateInChild(
  options: { templateDir?: string; onSpawn?: (pid: number) => void } = {},
): Promise<string> {
  const templateDir = options.templateDir ?? TEMPLATE_DIR;
  // Source under tsx (tests), compiled JavaScript under `npm start`.
  const loader = CHILD_ENTRY.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...loader, CHILD_ENTRY, templateDir], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-CHILD_STDERR_KEPT);
  });
  let built: string | null = null;
  child.on('message', (message: EmbeddedTemplateBuilt) => {
    built = message.template;
  });
  // Messages are read before the channel closes: after both, `built` is final.
  const disconnected = new Promise<void>((resolve) => child.once('disconnect', resolve));
  // Killed if this process exits first (a failed start, Ctrl-C): a build nobody waits for.
  const killChild = () => child.kill('SIGKILL');
  process.once('exit', killChild);
  try {
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    const exit = await new Promise<number | string | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? signal));
    });
    await disconnected;
    if (exit !== 0) {
      throw new Error(`building the embedded template failed (child exited ${exit}): ${stderr.trim()}`);
    }
  } finally {
    process.off('exit', killChild);
  }
  const template: string | null = built;
  if (template === null || isNewDataDir(template)) {
    throw new Error(`building the embedded template left none in ${templateDir}`);
  }
  return template;
}

/** The message the child sends when its template is in place. */
export interface EmbeddedTemplateBuilt {
  template: string;
}
