/**
 * `npm start` as a process: no configuration needed (embedded database), one start-up line with
 * the URL and mode, the eight agents served, a clean exit on SIGTERM, and a clear message and
 * exit 1 on bad configuration.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killGroup, spawnInGroup } from '../support/child-processes.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
/**
 * Ceiling for `npm start` to print its start-up line: tsx compiling, PGlite's WASM start and the
 * migrations take a few seconds on a quiet machine and many times that on a loaded one.
 */
const START_CEILING_MS = 150_000;

function startMain(env: Record<string, string>) {
  // The tsx CLI runs the server in a node child of its own: both are in the group, killed together.
  const child = spawnInGroup(TSX, ['src/server/main.ts'], {
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

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'cas-main-'));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

it(
  'starts on the embedded database, serves the agents, and stops cleanly on SIGTERM',
  { timeout: START_CEILING_MS + 30_000 },
  async () => {
    const main = startMain({ PORT: '0', HOST: '127.0.0.1', CAS_DATA_DIR: dataDir });
    try {
      const readyLine = await new Promise<Record<string, unknown>>((resolve, reject) => {
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
        void main.exited.then((code) =>
          reject(new Error(`exited ${code}: ${JSON.stringify(main.output())}`)),
        );
      });
      expect(readyLine.mode).toBe('embedded');
      expect(readyLine.msg).toMatch(/^CAS Runtime API ready at http:\/\/127\.0\.0\.1:\d+\/graphql/);
      const url = readyLine.url as string;

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
