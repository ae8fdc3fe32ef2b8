/**
 * Child processes of the benchmark: `node --import tsx <entry>` from the repository root, ready
 * once a line of its output contains a text; `RESULT <json>` lines are the way a child reports
 * numbers back. Output is kept (the last 64 KiB) for error messages. Each child leads a process
 * group of its own, killed with everything in it when the child exits or the benchmark does
 * (test/support/child-processes.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killGroup, spawnInGroup } from '../../test/support/child-processes.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const KEEP_OUTPUT = 64 * 1024;

/**
 * Extra node options for every child, e.g. `BENCH_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/p"`
 * to profile the servers under the benchmark's load (NODE_OPTIONS refuses --cpu-prof).
 */
const CHILD_NODE_ARGS = (process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean);

export interface Child {
  child: ChildProcess;
  pid: number;
  output(): string;
  /** Every `RESULT <json>` line printed so far, parsed. */
  results(): unknown[];
  exited: Promise<number | string | null>;
  /** SIGTERM (or `signal`), then waits for the exit; SIGKILL after `killAfterMs`. */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | string | null>;
}

/**
 * The service's entries run compiled, as `npm start` and `npm run worker` run them (dist/, built by
 * scripts/build-server.mjs when the benchmark starts); the benchmark's own servers run under tsx.
 */
const COMPILED_ENTRIES: Record<string, string> = {
  'src/server/main.ts': 'dist/server/main.js',
  'src/server/worker-main.ts': 'dist/server/worker-main.js',
};

/**
 * The environment package.json's start and worker scripts give the compiled server: glibc malloc's
 * fixed mmap threshold (docs/operations.md). Read from the start script so the two cannot differ.
 */
function compiledEnv(): Record<string, string> {
  const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const threshold = /MALLOC_MMAP_THRESHOLD_=\$\{MALLOC_MMAP_THRESHOLD_:-(\d+)\}/.exec(
    scripts.start ?? '',
  )?.[1];
  if (!threshold) throw new Error('package.json: the start script no longer sets MALLOC_MMAP_THRESHOLD_');
  return { MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? threshold };
}

/** Node's arguments to run `entry` (a path from the repository root); `underTsx` even a service entry. */
export function nodeArgsFor(entry: string, underTsx = false): string[] {
  const compiled = COMPILED_ENTRIES[entry];
  return compiled && !underTsx ? ['--conditions=cas-compiled', compiled] : ['--import', 'tsx', entry];
}

const running = new Set<Child>();

export async function startChild(
  entry: string,
  env: Record<string, string>,
  readyText: string,
  timeoutMs = 60_000,
  options: { underTsx?: boolean } = {},
): Promise<Child> {
  const child = spawnInGroup(
    process.execPath,
    [...CHILD_NODE_ARGS, ...nodeArgsFor(entry, options.underTsx)],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        ...(COMPILED_ENTRIES[entry] && !options.underTsx ? compiledEnv() : {}),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  let pending = '';
  const results: unknown[] = [];
  const exited = new Promise<number | string | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal)),
  );
  const keep = (text: string) => {
    output += text;
    if (output.length > KEEP_OUTPUT * 2) output = output.slice(-KEEP_OUTPUT);
  };
  const handle: Child = {
    child,
    pid: child.pid!,
    output: () => output,
    results: () => results,
    exited,
    async stop(signal = 'SIGTERM', killAfterMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => void killGroup(child), killAfterMs);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return exited;
    },
  };
  running.add(handle);
  void exited.then(() => running.delete(handle));

  await new Promise<void>((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(
      () => reject(new Error(`${entry} did not print "${readyText}" within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    child.stdout!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      keep(text);
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('RESULT ')) results.push(JSON.parse(line.slice('RESULT '.length)));
        if (!ready && line.includes(readyText)) {
          ready = true;
          clearTimeout(timer);
          resolve();
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => keep(chunk.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`${entry} exited (${code}) before it was ready:\n${output}`));
    });
  });
  return handle;
}

/** Stops every child still running (on the way out, also after a failure). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => child.stop('SIGTERM', 5_000)));
}

/** Waits for the child's exit and returns its last RESULT line. */
export async function resultOf<T>(child: Child): Promise<T> {
  const code = await child.exited;
  const results = child.results();
  if (results.length === 0) throw new Error(`no RESULT line (exit ${code}):\n${child.output()}`);
  return results[results.length - 1] as T;
}

/**
 * Per-caller quotas off for servers the benchmark starts: it sends thousands of operations and
 * opens thousands of subscriptions from one address on purpose.
 */
export const BENCH_QUOTAS_OFF = {
  CAS_MUTATION_RATE_LIMIT: '0',
  CAS_MAX_SOCKETS_PER_CALLER: '0',
  CAS_MAX_SSE_STREAMS_PER_CALLER: '0',
  CAS_MAX_SUBSCRIPTIONS_PER_SOCKET: '0',
};
