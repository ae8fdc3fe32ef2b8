import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Database, Queryable, SqlParam } from './database.js';

export interface PgliteOptions {
  /**
   * A folder to keep the data in, or undefined for an in-memory database. The folder is locked
   * for this process while open (DATA_DIR_LOCK_FILE): PGlite has no server to share it through.
   */
  dataDir?: string;
  /** Told when a lock left by a process that no longer runs is taken over. */
  onStaleLock?: (lock: { file: string; pid: number | null }) => void;
  /** A data folder dump (from `dumpDataDir`) to start from; tests use a migrated template. */
  loadDataDir?: Blob | File;
  /** Fills a new `dataDir` (one without PG_VERSION) once this process holds its lock. */
  prepareNewDataDir?: (dataDir: string) => Promise<void>;
  /** How often to vacuum the database (EMBEDDED_VACUUM_INTERVAL_MS by default; 0: never). */
  vacuumIntervalMs?: number;
  /** Told when a periodic vacuum fails (the next one tries again). */
  onVacuumError?: (error: unknown) => void;
}

/**
 * How often the embedded database is vacuumed. PGlite runs no autovacuum, so without this a table
 * whose rows are deleted or updated keeps every dead row's page: the task counters' delta tables
 * (rows added by every batch and deleted by the fold each second, and read in full by every count
 * and by the fold) grew by about 27 pages (216 KiB) per 1,000 tasks for as long as the server ran.
 * Vacuuming the whole database after 18,000 tasks took 77 ms, then 13 ms: PGlite runs one statement
 * at a time, so a vacuum often and short holds other statements back less than a rare long one.
 */
export const EMBEDDED_VACUUM_INTERVAL_MS = 10_000;

/** Written last when a data folder is made: a folder without it was never finished. */
export const VERSION_FILE = 'PG_VERSION';

/** A data folder PGlite has not initialised yet (initdb writes PG_VERSION first). */
export const isNewDataDir = (dataDir: string) => !existsSync(path.join(dataDir, VERSION_FILE));

const queryable = (db: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
  async query<Row>(sql: string, params: readonly SqlParam[] = []) {
    const result = await db.query<Row>(sql, params as unknown[]);
    return result.rows;
  },
  async exec(sql: string) {
    await db.exec(sql);
  },
});

/** The file in a data folder that names the process using it (its pid). */
export const DATA_DIR_LOCK_FILE = 'cas-runtime.lock';

/** The data folder is open in another process; two writers would corrupt it. */
export class DataDirInUseError extends Error {
  override readonly name = 'DataDirInUseError';
}

/** Folders this process holds, so its own pid in a lock file can be told apart from a stale one. */
const heldDataDirs = new Set<string>();

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Creates the lock file (exclusively) with this process's pid, taking over a lock whose process
 * no longer runs (a crash, a kill -9, or a container restart that gave this process the old pid).
 * Resolves with the function that releases it.
 */
async function lockDataDir(
  dataDir: string,
  onStaleLock: PgliteOptions['onStaleLock'],
): Promise<() => Promise<void>> {
  const file = path.join(dataDir, DATA_DIR_LOCK_FILE);
  const ours = `${process.pid}\n`;
  for (;;) {
    try {
      await writeFile(file, ours, { flag: 'wx' });
      heldDataDirs.add(dataDir);
      return async () => {
        heldDataDirs.delete(dataDir);
        const current = await readFile(file, 'utf8').catch(() => null);
        if (current === ours) await rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const content = await readFile(file, 'utf8').catch(() => '');
    const pid = /^\d+$/.test(content.trim()) ? Number(content.trim()) : null;
    const ownedHere = pid === process.pid && heldDataDirs.has(dataDir);
    if (pid !== null && (ownedHere || (pid !== process.pid && isRunning(pid)))) {
      throw new DataDirInUseError(
        `the data folder ${dataDir} is in use by another process (pid ${pid}): stop that process, or set CAS_DATA_DIR to another folder`,
      );
    }
    onStaleLock?.({ file, pid });
    await rm(file, { force: true });
  }
}

/**
 * PostgreSQL settings of the embedded database. PGlite runs one backend in this process's memory,
 * so the server defaults (128 MB of shared buffers, slots for 100 connections) only cost RSS. The
 * buffer pool is resident in full once the server runs (measured: the WebAssembly memory's resident
 * size follows this setting MB for MB, and that memory never shrinks), whatever the data: 16 MB
 * holds a fresh database's catalogs and hot tables, and the data folder's files stay in the OS page
 * cache beside it. With 32 MB an idle `npm start` was about 18 MiB larger; with 8 MB the embedded
 * task benchmark was slower. A few slots for the one backend.
 */
export const PGLITE_SETTINGS = ['shared_buffers = 16MB', 'max_connections = 10'];

export async function openPglite(options: PgliteOptions = {}): Promise<Database & { pglite: PGlite }> {
  let unlock = async () => {};
  if (options.dataDir) {
    await mkdir(options.dataDir, { recursive: true });
    unlock = await lockDataDir(path.resolve(options.dataDir), options.onStaleLock);
  }
  let pglite: PGlite;
  try {
    if (options.dataDir && options.prepareNewDataDir && isNewDataDir(options.dataDir))
      await options.prepareNewDataDir(options.dataDir);
    pglite = await PGlite.create({
      dataDir: options.dataDir,
      loadDataDir: options.loadDataDir,
      postgresqlconf: PGLITE_SETTINGS,
    });
  } catch (error) {
    await unlock();
    throw error;
  }
  let closed = false;
  const vacuums = vacuumEvery(
    pglite,
    options.vacuumIntervalMs ?? EMBEDDED_VACUUM_INTERVAL_MS,
    options.onVacuumError,
  );
  return {
    kind: 'pglite',
    pglite,
    ...queryable(pglite),
    transaction: (work) => pglite.transaction((tx) => work(queryable(tx))),
    async listen(channel, onNotify) {
      const unlisten = await pglite.listen(channel, onNotify);
      return async () => {
        if (!closed) await unlisten();
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await vacuums.stop();
        await pglite.close();
      } finally {
        await unlock();
      }
    },
  };
}

/** Vacuums the database every `intervalMs` (never when 0), one vacuum at a time, until stopped. */
function vacuumEvery(
  pglite: PGlite,
  intervalMs: number,
  onError: (error: unknown) => void = () => undefined,
): { stop(): Promise<void> } {
  if (intervalMs <= 0) return { stop: async () => {} };
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    running ??= pglite
      .exec('vacuum')
      .then(() => undefined, onError)
      .finally(() => (running = null));
  }, intervalMs);
  // A timer of the database's own upkeep does not keep the process alive.
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
