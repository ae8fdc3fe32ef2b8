/**
 * The embedded default as `npm start` runs it: the compiled server (dist/) on a fresh CAS_DATA_DIR,
 * from spawn to its first answered `{ health { ok } }` (the first start: the installed template is
 * copied, PGlite opens it), then its RSS once idle. The same from src/ under tsx, as the tests run
 * it, for what the compiled start saves.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../test/support/net.js';
import { startChild } from './lib/child.js';
import { progress, sleep } from './lib/progress.js';

export interface EmbeddedSettings {
  /** Starts per way of running; medians are reported. */
  starts: number;
  /** How long the server idles before its RSS is read. */
  idleSeconds: number;
}

export interface EmbeddedRun {
  /** 'compiled': npm start (dist/); 'tsx': src/ under tsx. */
  build: 'compiled' | 'tsx';
  readyMs: number[];
  rssMiB: number[];
}

export interface EmbeddedResults {
  settings: EmbeddedSettings;
  runs: EmbeddedRun[];
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
}

/** Milliseconds from now until `url` answers `{ health { ok } }` with ok true. */
async function untilHealthy(url: string, startedAt: number, timeoutMs: number): Promise<number> {
  while (performance.now() - startedAt < timeoutMs) {
    const ok = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ health { ok } }' }),
    })
      .then(
        async (response) =>
          ((await response.json()) as { data?: { health?: { ok?: boolean } } }).data?.health?.ok,
      )
      .catch(() => false);
    if (ok) return performance.now() - startedAt;
    await sleep(20);
  }
  throw new Error(`the embedded server did not answer health within ${timeoutMs} ms`);
}

async function startOnce(build: EmbeddedRun['build'], settings: EmbeddedSettings) {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cas-bench-embedded-'));
  const port = await freePort();
  const startedAt = performance.now();
  const child = await startChild(
    'src/server/main.ts',
    // info: the start-up line is what startChild waits for.
    { CAS_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' },
    'CAS Runtime API ready',
    60_000,
    { underTsx: build === 'tsx' },
  );
  try {
    const readyMs = await untilHealthy(`http://127.0.0.1:${port}/graphql`, startedAt, 60_000);
    await sleep(settings.idleSeconds * 1000);
    return { readyMs, rssMiB: await rssMiB(child.pid) };
  } finally {
    await child.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function runEmbedded(settings: EmbeddedSettings): Promise<EmbeddedResults> {
  const runs: EmbeddedRun[] = [];
  for (const build of ['compiled', 'tsx'] as const) {
    const run: EmbeddedRun = { build, readyMs: [], rssMiB: [] };
    for (let start = 0; start < settings.starts; start++) {
      const { readyMs, rssMiB } = await startOnce(build, settings);
      run.readyMs.push(readyMs);
      run.rssMiB.push(rssMiB);
      progress(
        `embedded (${build}): ready in ${Math.round(readyMs)} ms, RSS ${rssMiB.toFixed(1)} MiB after ${settings.idleSeconds} s idle`,
      );
    }
    runs.push(run);
  }
  return { settings, runs };
}
