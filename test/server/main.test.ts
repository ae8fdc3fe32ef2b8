/**
 * `npm start` as a process: no configuration needed (embedded database), one start-up line with
 * the URL and mode, the eight agents served, a clean exit on SIGTERM, and a clear message and
 * exit 1 on bad configuration.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killGroup, spawnInGroup } from '../support/child-processes.js';
import { embeddedTemplatePath } from '../../src/db/embedded-template.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
/**
 * Ceiling for `npm start` to print its start-up line: tsx compiling, PGlite's WASM start and the
 * migrations take a few seconds on a quiet machine and many times that on a loaded one.
 */
const START_CEILING_MS = 150_000;

function startMain(env: Record<string, string>) {
  // As `npm start` runs it: Node with tsx as an import hook (the tsx CLI re-sends signals), in a
  // process group of its own that the harness kills whatever happens.
  const child = spawnInGroup(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
    cwd: ROOT,
    // Only what the test sets: the service must need nothing else.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => ({ stdout, stderr }) };
}

/** The start-up line (JSON, the one with the URL), once printed. */
function readyLineOf(main: ReturnType<typeof startMain>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no start-up line: ${JSON.stringify(main.output())}`)),
      START_CEILING_MS,
    );
    main.child.stdout!.on('data', () => {
      const line = main
        .output()
        .stdout.split('\n')
        .find((text) => text.includes('"url"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, unknown>);
      }
    });
    void main.exited.then((code) => reject(new Error(`exited ${code}: ${JSON.stringify(main.output())}`)));
  });
}

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'cas-main-'));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

it(
  'starts on the embedded database, serves the agents, and stops cleanly on SIGTERM',
  { timeout: START_CEILING_MS + 30_000 },
  async () => {
    // No HOST: the default binds 127.0.0.1 only.
    const main = startMain({ PORT: '0', CAS_DATA_DIR: dataDir });
    try {
      const readyLine = await readyLineOf(main);
      expect(readyLine.mode).toBe('embedded');
      // A first start copies the template `npm install` built (postinstall), when it matches.
      const installed = existsSync(await embeddedTemplatePath());
      expect(main.output().stdout.includes('starting from the installed template')).toBe(installed);
      expect(readyLine.msg).toMatch(/^CAS Runtime API ready at http:\/\/127\.0\.0\.1:\d+\/graphql/);
      expect(readyLine.msg).toContain('GraphiQL in a browser');
      const url = readyLine.url as string;
      // No authentication configured: one warning line says every caller is the local admin.
      const warnings = main
        .output()
        .stdout.split('\n')
        .filter((line) => line.includes('no authentication configured'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, host: '127.0.0.1', auth: 'local' });

      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ agents { id status } }' }),
      });
      const { data } = (await response.json()) as { data: { agents: { id: string; status: string }[] } };
      expect(data.agents).toHaveLength(8);
      expect(data.agents.every((agent) => agent.status === 'IDLE')).toBe(true);
      const page = await fetch(url, { headers: { accept: 'text/html' } });
      expect(await page.text()).toContain('<title>CAS Runtime API</title>');

      main.child.kill('SIGTERM');
      expect(await main.exited).toBe(0);
      expect(main.output().stdout).toContain('"msg":"stopped"');
    } finally {
      await killGroup(main.child);
    }
  },
);

it('exits 1 with a clear message on invalid configuration', { timeout: START_CEILING_MS }, async () => {
  const main = startMain({ PORT: 'not-a-port', DATABASE_URL: 'mysql://nope' });
  expect(await main.exited).toBe(1);
  const { stderr } = main.output();
  expect(stderr).toContain('invalid configuration');
  expect(stderr).toContain('PORT');
  expect(stderr).toContain('DATABASE_URL');
  expect(stderr).not.toMatch(/\n\s+at /);
});

it('refuses to start in production without authentication, in one line', { timeout: 30_000 }, async () => {
  const main = startMain({ NODE_ENV: 'production', PORT: '0', CAS_DATA_DIR: dataDir });
  expect(await main.exited).toBe(1);
  const { stderr, stdout } = main.output();
  expect(stderr).toContain(
    'NODE_ENV=production needs authentication: set SUPABASE_JWT_SECRET, SUPABASE_URL or CAS_JWKS_URL',
  );
  expect(stderr).not.toMatch(/\n\s+at /);
  expect(stdout).not.toContain('ready at');
});

it(
  'in production, does not announce GraphiQL, which is off there',
  { timeout: START_CEILING_MS + 30_000 },
  async () => {
    const main = startMain({
      NODE_ENV: 'production',
      SUPABASE_JWT_SECRET: 'test-only-jwt-secret-with-at-least-32-characters',
      PORT: '0',
      CAS_DATA_DIR: dataDir,
    });
    try {
      const readyLine = await readyLineOf(main);
      expect(readyLine.msg).toMatch(/^CAS Runtime API ready at http:\/\/127\.0\.0\.1:\d+\/graphql/);
      expect(readyLine.msg).not.toContain('GraphiQL');
      main.child.kill('SIGTERM');
      expect(await main.exited).toBe(0);
    } finally {
      await killGroup(main.child);
    }
  },
);
