/**
 * The dashboard query's requests/s on this checkout against an earlier commit, on the same machine
 * in the same run: the question "how many times faster than then?" answered without comparing
 * figures from different days (the absolute ones move 2x with the host's load).
 *
 *   npx tsx bench/against-commit.ts [commit] [--rounds=N] [--seconds=S]
 *
 * The commit (default: BASELINE_COMMIT) is checked out as a git worktree in the temporary folder
 * and installed with its own `npm ci`. Each side runs as its own `npm start` runs it, on a database
 * of its own on the PostgreSQL server (BENCH_DATABASE_URL as for `npm run bench`), migrated by the
 * server itself and given the same history through the GraphQL API (the names clients rely on,
 * which both sides keep): a state and 5 finished ping tasks for each built-in agent, then, for the
 * second row, 192 more agents (a tenth with a state and a ping task). Each row loads the two servers
 * in alternating rounds (A B, B A, ...), 50 connections, API only (CAS_WORKERS=0), every response
 * checked against the side's own first answer. Prints the rounds and a summary; the worktree, the
 * databases and every process started are removed at the end, also on failure.
 */
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { killGroup, spawnInGroup } from '../test/support/child-processes.js';
import { freePort } from '../test/support/net.js';
import { BENCH_QUOTAS_OFF, ROOT } from './lib/child.js';
import { createBenchDatabase, databaseUrl, dropBenchDatabase } from './lib/postgres.js';
import { progress, sleep } from './lib/progress.js';
import { QUERIES } from './http.js';
import { BUILT_IN_AGENTS } from './fixtures.js';

const run = promisify(execFile);

/** The commit whose bench/REPORT.md gave issue 17's "today" figures (dashboard 547 req/s). */
const BASELINE_COMMIT = '6e8b5ff';

/** As the bench's HTTP section loads its servers. */
const CONNECTIONS = 50;

/** Agents registered for the second row, beside the built-in ones (as dashboard200 does). */
const MORE_AGENTS = 192;

/** How long a server may take from `npm start` to its first answer (an install may build first). */
const START_TIMEOUT_MS = 180_000;

interface Side {
  label: 'baseline' | 'this checkout';
  cwd: string;
  database: string;
}

interface Server {
  url: string;
  process: ChildProcess;
}

function argument(name: string, fallback: number): number {
  const raw = process.argv.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} takes a whole number >= 1`);
  return value;
}

async function graphql(url: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  if (response.status !== 200 || text.includes('"errors"')) {
    throw new Error(`${url} answered ${response.status}: ${text.slice(0, 500)}`);
  }
  return text;
}

/** `npm start` in the side's folder, on its database; resolves once it answers GraphQL. */
async function start(side: Side, workers: number): Promise<Server> {
  const port = await freePort();
  const child = spawnInGroup('npm', ['start', '--silent'], {
    cwd: side.cwd,
    env: {
      ...process.env,
      ...BENCH_QUOTAS_OFF,
      DATABASE_URL: side.database,
      CAS_WORKERS: String(workers),
      CAS_WORKER_POLL_MS: '100',
      LOG_LEVEL: 'warn',
      PORT: String(port),
      HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}/graphql`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${side.label}: npm start exited (${child.exitCode})`);
    try {
      await graphql(url, '{ __typename }');
      return { url, process: child };
    } catch (error) {
      if (Date.now() > deadline) {
        await killGroup(child);
        throw new Error(`${side.label}: no answer within ${START_TIMEOUT_MS} ms`, { cause: error });
      }
      await sleep(250);
    }
  }
}

const PING =
  'mutation($agentId: ID!) { executeTask(input: { agentId: $agentId, action: "ping", wait: true, timeoutMs: 30000 }) { status } }';
const STATE =
  'mutation($agentId: ID!, $data: JSON!) { updateAgentState(agentId: $agentId, data: $data) { version } }';
const REGISTER = 'mutation($input: RegisterAgentInput!) { registerAgent(input: $input) { id } }';

/** The same history on both sides, through the API: what bench/fixtures.ts gives the HTTP section. */
async function addHistory(url: string, moreAgents: number): Promise<void> {
  for (const agentId of BUILT_IN_AGENTS) {
    await graphql(url, STATE, { agentId, data: { note: `benchmark state of ${agentId}` } });
    await Promise.all(Array.from({ length: 5 }, () => graphql(url, PING, { agentId })));
  }
  for (let i = 0; i < moreAgents; i++) {
    const id = `bench-${String(i).padStart(3, '0')}`;
    await graphql(url, REGISTER, { input: { id, name: `Bench ${i}`, role: 'bench' } });
    if (i % 10 === 0) {
      await graphql(url, STATE, { agentId: id, data: { i } });
      await graphql(url, PING, { agentId: id });
    }
  }
}

async function load(url: string, expectBody: string, seconds: number): Promise<number> {
  const result = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: QUERIES.dashboard }),
    expectBody,
    connections: CONNECTIONS,
    duration: seconds,
  });
  const failed = result.errors + result.timeouts + result.non2xx + result.mismatches;
  if (failed > 0) throw new Error(`${url}: ${failed} failed or different responses`);
  return result.requests.total / result.duration;
}

/** One row: both sides' servers up (API only), alternating rounds; returns the requests/s of each. */
async function measureRow(sides: Side[], title: string, rounds: number, seconds: number) {
  const servers: Server[] = [];
  try {
    for (const side of sides) servers.push(await start(side, 0));
    const bodies: string[] = [];
    for (const server of servers) bodies.push(await graphql(server.url, QUERIES.dashboard));
    const agentCounts = bodies.map(
      (body) => (JSON.parse(body) as { data: { agents: unknown[] } }).data.agents.length,
    );
    if (agentCounts[0] !== agentCounts[1])
      throw new Error(`${title}: the sides answer ${agentCounts.join(' and ')} agents`);
    for (const [index, server] of servers.entries()) await load(server.url, bodies[index]!, 3);
    const perSide: number[][] = sides.map(() => []);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const index of order)
        perSide[index]!.push(await load(servers[index]!.url, bodies[index]!, seconds));
      progress(
        `${title}, round ${round + 1}/${rounds}: ` +
          sides.map((side, index) => `${side.label} ${Math.round(perSide[index]!.at(-1)!)}`).join(', ') +
          ' req/s',
      );
    }
    return perSide.map((values) => values.reduce((sum, value) => sum + value, 0) / values.length);
  } finally {
    await Promise.all(servers.map((server) => killGroup(server.process)));
  }
}

/** What a run leaves to remove: its worktree and databases (every process it starts dies with it). */
interface Leftovers {
  folder?: string;
  worktree?: string;
  databases: string[];
}

async function removeLeftovers(leftovers: Leftovers): Promise<void> {
  const databases = leftovers.databases.splice(0);
  await Promise.all(databases.map((name) => dropBenchDatabase(name)));
  if (leftovers.worktree) {
    await run('git', ['worktree', 'remove', '--force', leftovers.worktree], { cwd: ROOT }).catch(
      () => undefined,
    );
  }
  if (leftovers.folder) await rm(leftovers.folder, { recursive: true, force: true });
}

async function main(leftovers: Leftovers): Promise<void> {
  const commit = process.argv.slice(2).find((arg) => !arg.startsWith('--')) ?? BASELINE_COMMIT;
  const rounds = argument('rounds', 6);
  const seconds = argument('seconds', 10);
  leftovers.folder = await mkdtemp(path.join(tmpdir(), 'cas-against-'));
  const worktree = path.join(leftovers.folder, 'baseline');
  progress(`checking out ${commit} in ${worktree} and installing it (npm ci)`);
  await run('git', ['worktree', 'add', '--detach', worktree, commit], { cwd: ROOT });
  leftovers.worktree = worktree;
  await run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: worktree, maxBuffer: 64 * 1024 * 1024 });
  const rows: { title: string; moreAgents: number }[] = [
    { title: `dashboard, ${BUILT_IN_AGENTS.length} agents`, moreAgents: 0 },
    { title: `dashboard, ${BUILT_IN_AGENTS.length + MORE_AGENTS} agents`, moreAgents: MORE_AGENTS },
  ];
  const summary: string[] = [];
  for (const [rowIndex, row] of rows.entries()) {
    const sides: Side[] = [];
    for (const [label, cwd] of [
      ['baseline', worktree],
      ['this checkout', ROOT],
    ] as const) {
      const name = await createBenchDatabase(`against_${rowIndex}_${label === 'baseline' ? 'base' : 'head'}`);
      leftovers.databases.push(name);
      const side: Side = { label, cwd, database: databaseUrl(name) };
      progress(`${row.title}: ${label}: migrating and adding history through the API`);
      const seeding = await start(side, 1);
      try {
        await addHistory(seeding.url, row.moreAgents);
      } finally {
        await killGroup(seeding.process);
      }
      sides.push(side);
    }
    const [baseline, current] = await measureRow(sides, row.title, rounds, seconds);
    summary.push(
      `${row.title}: ${Math.round(current!)} req/s here, ${Math.round(baseline!)} at ${commit}: ` +
        `${(current! / baseline!).toFixed(2)}x (${rounds} alternating rounds of ${seconds} s, ${CONNECTIONS} connections)`,
    );
  }
  console.log(summary.join('\n'));
}

const leftovers: Leftovers = { databases: [] };
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    progress(`${signal}: removing the worktree and databases`);
    void removeLeftovers(leftovers).finally(() => process.exit(130));
  });
}
main(leftovers)
  .then(
    () => 0,
    (error: unknown) => {
      const cause = error instanceof Error && error.cause ? ` (${String(error.cause)})` : '';
      console.error(`against-commit: ${error instanceof Error ? error.message : String(error)}${cause}`);
      return 1;
    },
  )
  .then(async (code) => {
    await removeLeftovers(leftovers);
    process.exit(code);
  });
