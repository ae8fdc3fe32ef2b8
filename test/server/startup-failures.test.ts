/**
 * A failed start, as a person sees it: the real process prints one or two lines saying what is
 * wrong and what to do, exits 1, and shows no stack (unless LOG_LEVEL=debug). Also the bundled
 * example client when no server runs.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { databaseUrl } from '../support/postgres-admin.js';
import { openTestDatabase, type TestDatabase } from '../support/databases.js';
import { freePort } from '../support/net.js';
import { killSpawned, spawnService, type Spawned } from '../support/spawned.js';

const STACK_LINE = /\n\s+at /;
const postgres = inject('casPostgres');

afterEach(() => killSpawned());

/** Runs an entry point with `env` only (plus fast settings), as `npm start` would. */
function run(entry: string, env: Record<string, string>): Spawned {
  return spawnService(process.execPath, ['--import', 'tsx', entry], {
    env: { HOST: '127.0.0.1', CAS_WORKER_POLL_MS: '100', ...env },
  });
}

/** Waits for the exit and checks the shape every start-up failure shares; returns stderr. */
async function failedStart(service: Spawned): Promise<string> {
  expect(await service.exited).toBe(1);
  const stderr = service.stderr().trim();
  expect(stderr).not.toMatch(STACK_LINE);
  expect(stderr.split('\n').length).toBeLessThanOrEqual(2);
  expect(stderr).toMatch(/^cas-runtime-api: /);
  return stderr;
}

const closedPort = async () => String(await freePort());

describe('start-up failures print what is wrong and what to do, without a stack', () => {
  it('an unreachable database', { timeout: 180_000 }, async () => {
    const url = `postgres://postgres:secret@127.0.0.1:${await closedPort()}/cas`;
    const stderr = await failedStart(run('src/server/main.ts', { DATABASE_URL: url }));
    expect(stderr).toContain(`cannot reach the database at postgres://postgres:***@127.0.0.1:`);
    expect(stderr).toContain('ECONNREFUSED');
    expect(stderr).toContain('start PostgreSQL there, or fix DATABASE_URL');
    expect(stderr).not.toContain('secret');
  });

  it('an unreachable database, for npm run worker too', { timeout: 180_000 }, async () => {
    const url = `postgres://postgres@127.0.0.1:${await closedPort()}/cas`;
    const stderr = await failedStart(run('src/server/worker-main.ts', { DATABASE_URL: url }));
    expect(stderr).toContain('cannot reach the database at');
  });

  it('shows the stack at LOG_LEVEL=debug', { timeout: 180_000 }, async () => {
    const url = `postgres://postgres@127.0.0.1:${await closedPort()}/cas`;
    const failed = run('src/server/main.ts', { DATABASE_URL: url, LOG_LEVEL: 'debug' });
    expect(await failed.exited).toBe(1);
    expect(failed.stderr()).toContain('cannot reach the database at');
    expect(failed.stderr()).toMatch(STACK_LINE);
  });

  describe.skipIf(!postgres)('on the PostgreSQL server', () => {
    let testDb: TestDatabase;
    let busyPort: Server;
    beforeAll(async () => {
      testDb = await openTestDatabase('postgres');
      busyPort = createServer();
      await new Promise<void>((resolve) => busyPort.listen(0, '127.0.0.1', resolve));
    });
    afterAll(async () => {
      await new Promise((resolve) => busyPort?.close(resolve));
      await testDb?.close();
    });

    it('a database that does not exist', { timeout: 180_000 }, async () => {
      const name = `cas_missing_${randomUUID().slice(0, 8)}`;
      const stderr = await failedStart(
        run('src/server/main.ts', { DATABASE_URL: databaseUrl(postgres!.adminUrl, name) }),
      );
      expect(stderr).toContain(`database "${name}" does not exist`);
      expect(stderr).toContain(`createdb ${name}`);
    });

    it('a login the server refuses', { timeout: 180_000 }, async () => {
      const url = new URL(testDb.url!);
      url.username = 'cas_no_such_role';
      url.password = 'wrong';
      const stderr = await failedStart(run('src/server/main.ts', { DATABASE_URL: url.toString() }));
      expect(stderr).toContain('the database refused the login');
      expect(stderr).toContain('fix the user name or password in DATABASE_URL');
      expect(stderr).not.toContain('wrong');
    });

    it('a port in use', { timeout: 180_000 }, async () => {
      const { port } = busyPort.address() as { port: number };
      const stderr = await failedStart(
        run('src/server/main.ts', { DATABASE_URL: testDb.url!, PORT: String(port) }),
      );
      expect(stderr).toBe(
        `cas-runtime-api: port ${port} is already in use on 127.0.0.1 (is another server running?)\nstop it, or set PORT to a free port`,
      );
    });
  });

  describe('Supabase', () => {
    let project: TestDatabase;
    beforeAll(async () => {
      project = await openTestDatabase('supabase');
    });
    afterAll(() => project?.close());

    it('a service role key the project refuses', { timeout: 180_000 }, async () => {
      const stderr = await failedStart(
        run('src/server/main.ts', { ...project.env!, SUPABASE_SERVICE_ROLE_KEY: 'not-the-key-'.repeat(4) }),
      );
      expect(stderr).toMatch(/SUPABASE_SERVICE_ROLE_KEY was refused by http:\/\/127\.0\.0\.1:\d+ \(HTTP 401/);
    });

    it('a URL nothing answers at', { timeout: 180_000 }, async () => {
      const url = `http://127.0.0.1:${await closedPort()}`;
      const stderr = await failedStart(run('src/server/main.ts', { ...project.env!, SUPABASE_URL: url }));
      expect(stderr).toContain(`cannot reach SUPABASE_URL ${url}`);
    });
  });
});

it('the example client asks whether the server is running', { timeout: 180_000 }, async () => {
  const url = `http://127.0.0.1:${await closedPort()}/graphql`;
  const client = run('examples/run-task.ts', { CAS_API_URL: url });
  expect(await client.exited).toBe(1);
  const stderr = client.stderr().trim();
  expect(stderr).toContain(`is the server running at ${url}?`);
  expect(stderr).not.toMatch(STACK_LINE);
  expect(stderr).not.toContain('fetch failed');
});
