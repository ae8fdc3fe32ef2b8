/**
 * `npm start` as people run it: Ctrl-C in a terminal (SIGINT to the whole process group) means one
 * graceful shutdown that honours CAS_SHUTDOWN_TIMEOUT_MS and never loses a running task;
 * `kill <pid of npm>` stops the server too; a second `npm start` on the same data folder refuses
 * to start; a stale lock is taken over.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DATA_DIR_LOCK_FILE, DataDirInUseError, openPglite } from '../../src/db/pglite.js';
import { freePort } from '../support/net.js';
import { isRunning, killSpawned, spawnService, type Spawned } from '../support/spawned.js';

const READY = /CAS Runtime API ready at (http:\/\/\S+\/graphql)/;

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'cas-lifecycle-'));
});
afterEach(async () => {
  await killSpawned();
  await rm(dataDir, { recursive: true, force: true });
});

/** `npm start` in its own process group, as a terminal runs it. */
async function npmStart(env: Record<string, string> = {}): Promise<{ npm: Spawned; url: string }> {
  const npm = spawnService('npm', ['start'], {
    detached: true,
    env: { HOST: '127.0.0.1', PORT: String(await freePort()), CAS_DATA_DIR: dataDir, ...env },
  });
  const [, url] = await npm.waitForOutput(READY, 170_000);
  return { npm, url: url! };
}

async function graphql<T>(url: string, query: string): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  const body = (await response.json()) as { data: T; errors?: unknown };
  expect(body.errors).toBeUndefined();
  return body.data;
}

/** Queues a `wait` task of `ms` and resolves with its id once a worker runs it. */
async function startWaitTask(url: string, ms: number): Promise<string> {
  const { executeTask } = await graphql<{ executeTask: { id: string } }>(
    url,
    `mutation { executeTask(input: { agentId: "tester", action: "wait", input: { ms: ${ms} } }) { id } }`,
  );
  for (;;) {
    const { task } = await graphql<{ task: { status: string } }>(
      url,
      `{ task(id: "${executeTask.id}") { status } }`,
    );
    if (task.status === 'RUNNING') return executeTask.id;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The task's row, read from the data folder once the server has let go of it. */
async function storedTask(taskId: string) {
  const db = await openPglite({ dataDir });
  try {
    const [row] = await db.query<{ status: string; attempts: number; worker_id: string | null }>(
      'select status, attempts, worker_id from cas_tasks where id = $1',
      [taskId],
    );
    return row;
  } finally {
    await db.close();
  }
}

const shutdownLines = (npm: Spawned) => npm.stdout().match(/"msg":"shutting down/g) ?? [];

describe('Ctrl-C on npm start (SIGINT to its process group)', () => {
  it('shuts down once and hands the running task back to the queue', { timeout: 300_000 }, async () => {
    const { npm, url } = await npmStart({ CAS_SHUTDOWN_TIMEOUT_MS: '0' });
    const taskId = await startWaitTask(url, 600_000);

    process.kill(-npm.child.pid!, 'SIGINT');
    expect(await npm.exited).toBe(0);

    expect(shutdownLines(npm)).toHaveLength(1);
    expect(npm.stdout()).not.toContain('second signal');
    expect(npm.stdout()).toContain('"msg":"stopped"');
    expect(await storedTask(taskId)).toMatchObject({ status: 'queued', worker_id: null });
  });

  it('lets a running task finish within CAS_SHUTDOWN_TIMEOUT_MS', { timeout: 300_000 }, async () => {
    // Longer than the 10 s the server once hard-coded, far shorter than the deadline set here.
    const { npm, url } = await npmStart({ CAS_SHUTDOWN_TIMEOUT_MS: '300000' });
    const taskId = await startWaitTask(url, 15_000);

    process.kill(-npm.child.pid!, 'SIGINT');
    expect(await npm.exited).toBe(0);

    expect(shutdownLines(npm)).toHaveLength(1);
    expect(npm.stdout()).toContain('"deadlineMs":300000');
    expect(await storedTask(taskId)).toMatchObject({ status: 'succeeded' });
  });
});

describe('the data folder belongs to one process', () => {
  it(
    'refuses a second npm start on it, and `kill <pid of npm>` stops the first',
    { timeout: 300_000 },
    async () => {
      const { npm } = await npmStart();
      const serverPid = Number((await readFile(path.join(dataDir, DATA_DIR_LOCK_FILE), 'utf8')).trim());
      expect(serverPid).not.toBe(npm.child.pid);
      expect(isRunning(serverPid)).toBe(true);

      const second = spawnService('npm', ['start', '--silent'], {
        detached: true,
        env: { HOST: '127.0.0.1', PORT: String(await freePort()), CAS_DATA_DIR: dataDir },
      });
      expect(await second.exited).toBe(1);
      const message = second.stderr().trim();
      expect(message).toBe(
        `cas-runtime-api: the data folder ${dataDir} is in use by another process (pid ${serverPid}): stop that process, or set CAS_DATA_DIR to another folder`,
      );

      // SIGTERM to npm alone, as `kill <pid>` sends it: the server must stop with it.
      npm.child.kill('SIGTERM');
      await npm.exited;
      await expect.poll(() => isRunning(serverPid), { timeout: 60_000, interval: 100 }).toBe(false);
      expect(npm.stdout()).toContain('"msg":"stopped"');
      await expect(readFile(path.join(dataDir, DATA_DIR_LOCK_FILE))).rejects.toThrow(/ENOENT/);
    },
  );

  it(
    'takes over a lock whose process no longer runs, and refuses one whose process runs',
    { timeout: 300_000 }, // a fresh PGlite folder (initdb) is slow on a loaded machine
    async () => {
      const gone = spawnService(process.execPath, ['-e', '']);
      await gone.exited;
      const lockFile = path.join(dataDir, DATA_DIR_LOCK_FILE);
      await writeFile(lockFile, `${gone.child.pid}\n`);

      const staleLocks: unknown[] = [];
      const db = await openPglite({ dataDir, onStaleLock: (lock) => staleLocks.push(lock) });
      try {
        expect(staleLocks).toEqual([{ file: lockFile, pid: gone.child.pid }]);
        expect(await readFile(lockFile, 'utf8')).toBe(`${process.pid}\n`);
        // Opened twice in one process is two writers too.
        await expect(openPglite({ dataDir })).rejects.toThrow(DataDirInUseError);
      } finally {
        await db.close();
      }
      await expect(readFile(lockFile)).rejects.toThrow(/ENOENT/);

      await writeFile(lockFile, `${process.ppid}\n`);
      await expect(openPglite({ dataDir })).rejects.toThrow(
        `the data folder ${dataDir} is in use by another process (pid ${process.ppid})`,
      );
    },
  );
});
