/**
 * Agents in code as people run the service: `npm start` and `npm run worker` load CAS_AGENTS_DIR
 * before anything else; a broken file stops start-up with one line naming it (exit 1, no stack),
 * and a good folder's agents show their actions in GraphQL. The entries run under tsx here, except
 * in the last test, which runs `npm start` itself: the compiled service (dist/) loading TypeScript
 * agents.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { data } from '../server/harness.js';
import { freePort } from '../support/net.js';
import { killSpawned, ROOT, spawnService, type Spawned } from '../support/spawned.js';

const STACK_LINE = /\n\s+at /;
/** tsx compiling, PGlite's WASM start and the migrations: seconds when quiet, much more when busy. */
const START_CEILING_MS = 150_000;

afterEach(() => killSpawned());

let scratch: string;
let brokenDir: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'cas-agents-'));
  // Inside the repository (git-ignored .cas/), where 'cas-runtime-api/sdk' resolves.
  brokenDir = path.join('.cas', 'test-agents', `startup-${randomUUID()}`);
  await mkdir(path.join(ROOT, brokenDir), { recursive: true });
  await writeFile(
    path.join(ROOT, brokenDir, 'broken.ts'),
    `import { defineAgent } from 'cas-runtime-api/sdk';\nexport default defineAgent({ id: 'broken', name: 'B', role: 'r', actions: {} ;\n`,
  );
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
  await rm(path.join(ROOT, brokenDir), { recursive: true, force: true });
});

function run(entry: string, env: Record<string, string>): Spawned {
  return spawnService(process.execPath, ['--import', 'tsx', entry], {
    env: { HOST: '127.0.0.1', CAS_WORKER_POLL_MS: '100', CAS_DATA_DIR: path.join(scratch, 'data'), ...env },
  });
}

async function failedStart(service: Spawned): Promise<string> {
  expect(await service.exited).toBe(1);
  const stderr = service.stderr().trim();
  expect(stderr).not.toMatch(STACK_LINE);
  expect(stderr.split('\n').length).toBeLessThanOrEqual(2);
  return stderr;
}

describe('a broken agent file stops start-up, naming the file', () => {
  it('npm start', { timeout: 120_000 }, async () => {
    const stderr = await failedStart(run('src/server/main.ts', { CAS_AGENTS_DIR: brokenDir }));
    expect(stderr).toMatch(
      new RegExp(`^cas-runtime-api: agent file ${brokenDir}/broken\\.ts failed to load: .*Expected`),
    );
  });

  it('npm run worker', { timeout: 120_000 }, async () => {
    // Agents load before the database is reached: the unreachable URL is never tried.
    const url = `postgres://postgres@127.0.0.1:${await freePort()}/cas`;
    const stderr = await failedStart(
      run('src/server/worker-main.ts', { CAS_AGENTS_DIR: brokenDir, DATABASE_URL: url }),
    );
    expect(stderr).toMatch(
      new RegExp(`^cas-runtime-api: agent file ${brokenDir}/broken\\.ts failed to load: `),
    );
  });

  it('a CAS_AGENTS_DIR that does not exist', { timeout: 120_000 }, async () => {
    const stderr = await failedStart(run('src/server/main.ts', { CAS_AGENTS_DIR: 'no-such-agents' }));
    expect(stderr).toBe(
      `cas-runtime-api: CAS_AGENTS_DIR is "no-such-agents", which does not exist (${path.join(ROOT, 'no-such-agents')})\ncreate it, or fix or unset CAS_AGENTS_DIR`,
    );
  });
});

it(
  'npm start registers the agents of CAS_AGENTS_DIR; GraphQL shows their actions',
  { timeout: START_CEILING_MS + 30_000 },
  async () => {
    const port = await freePort();
    const main = run('src/server/main.ts', { CAS_AGENTS_DIR: 'examples/agents', PORT: String(port) });
    await main.waitForOutput(/ready at/, START_CEILING_MS);
    expect(main.stdout()).toContain('registered 2 agent(s) from code');
    const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: '{ agent(id: "writer") { status actions { name inputSchema } } }',
      }),
    });
    const { data } = (await response.json()) as {
      data: { agent: { status: string; actions: { name: string; inputSchema: unknown }[] } };
    };
    expect(data.agent.status).toBe('IDLE');
    const publish = data.agent.actions.find((action) => action.name === 'publish');
    expect(publish?.inputSchema).toMatchObject({ type: 'object', required: ['topic'] });
  },
);

it(
  'a promise an agent left unawaited is logged; the server keeps serving',
  { timeout: START_CEILING_MS + 30_000 },
  async () => {
    const port = await freePort();
    const main = run('src/server/main.ts', {
      CAS_AGENTS_DIR: 'test/support/fixtures/durable-agents',
      PORT: String(port),
    });
    await main.waitForOutput(/ready at/, START_CEILING_MS);
    const graphql = async (query: string) => {
      const response = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      });
      return ((await response.json()) as { data: Record<string, { status?: string; ok?: boolean }> }).data;
    };
    const { executeTask } = await graphql(
      'mutation { executeTask(input: { agentId: "stray", action: "leave", wait: true }) { status } }',
    );
    expect(executeTask?.status).toBe('SUCCEEDED');
    await main.waitForOutput(/unhandled promise rejection/, START_CEILING_MS);
    expect((await graphql('{ health { ok } }')).health?.ok).toBe(true);
  },
);

it(
  'the compiled npm start loads TypeScript agents with its own SDK: their TaskFailure keeps its code',
  { timeout: START_CEILING_MS + 60_000 },
  async () => {
    const port = await freePort();
    const npm = spawnService('npm', ['start'], {
      detached: true,
      env: {
        HOST: '127.0.0.1',
        PORT: String(port),
        CAS_WORKER_POLL_MS: '100',
        CAS_DATA_DIR: path.join(scratch, 'compiled-data'),
        CAS_AGENTS_DIR: 'examples/agents',
      },
    });
    await npm.waitForOutput(/ready at/, START_CEILING_MS);
    expect(npm.stdout()).toContain('dist/server/main.js');
    const graphql = <T>(query: string) => data<T>(`http://127.0.0.1:${port}/graphql`, query);
    // writer.publish calls reviewer.review, then waits for "approval"; a payload without
    // `approved` makes it throw the SDK's TaskFailure('...', 'BAD_APPROVAL'). Were the agent's SDK
    // another copy than the server's, the code would be lost (instanceof fails).
    const { executeTask } = await graphql<{ executeTask: { id: string } }>(
      'mutation { executeTask(input: { agentId: "writer", action: "publish", input: { topic: "compiled" } }) { id } }',
    );
    const task = `task(id: "${executeTask.id}")`;
    for (;;) {
      const { task: state } = await graphql<{ task: { status: string } }>(`{ ${task} { status } }`);
      if (state.status === 'WAITING') {
        const { task: waiting } = await graphql<{ task: { waitingFor: { signals: string[] } | null } }>(
          `{ ${task} { waitingFor { signals } } }`,
        );
        if (waiting.waitingFor?.signals.includes('approval')) break;
      }
      expect(['QUEUED', 'RUNNING', 'WAITING']).toContain(state.status);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await graphql(
      `mutation { signalTask(id: "${executeTask.id}", name: "approval", payload: { ok: 1 }) { id } }`,
    );
    for (;;) {
      const { task: ended } = await graphql<{ task: { status: string; error: { code: string } | null } }>(
        `{ ${task} { status error { code } } }`,
      );
      if (ended.status === 'FAILED') {
        expect(ended.error?.code).toBe('BAD_APPROVAL');
        break;
      }
      expect(['WAITING', 'QUEUED', 'RUNNING']).toContain(ended.status);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  },
);
