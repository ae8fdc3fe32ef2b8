/**
 * Real processes for tests of the service as people run it (`npm start`, `npm run worker`):
 * spawned with only the environment the test gives, their output collected, and every one of them
 * killed (its whole process group when detached) by `killSpawned`, which the test file calls in
 * afterEach, so a failed or timed-out test leaves nothing running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Spawned {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Exit code, or the signal's name when a signal ended it. */
  exited: Promise<number | string | null>;
  /** Resolves with stdout once it matches `pattern`; rejects on exit or after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

const running = new Set<Spawned>();
/** Process groups started here: members may outlive their leader (an orphaned server). */
const groups = new Set<number>();

export interface SpawnOptions {
  /** The whole environment (PATH and HOME are added): the service must need nothing else. */
  env?: Record<string, string>;
  cwd?: string;
  /** Its own process group, as a terminal gives a command; killSpawned then kills the group. */
  detached?: boolean;
}

export function spawnService(command: string, args: string[], options: SpawnOptions = {}): Spawned {
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | string | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal)),
  );
  const spawned: Spawned = {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitForOutput: (pattern, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = stdout.match(pattern);
          if (!match) return;
          cleanup();
          resolve(match);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${stdout}\n${stderr}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          child.stdout!.off('data', check);
        };
        child.stdout!.on('data', check);
        void exited.then((code) => {
          cleanup();
          reject(new Error(`exited (${code}) before ${pattern}:\n${stdout}\n${stderr}`));
        });
        check();
      }),
  };
  running.add(spawned);
  void exited.then(() => running.delete(spawned));
  if (options.detached && child.pid) groups.add(child.pid);
  return spawned;
}

/** Is a process with this pid alive? */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILLs every process spawned here that still runs (with its group when detached). */
export async function killSpawned(): Promise<void> {
  for (const group of groups) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // The whole group has exited already.
    }
  }
  groups.clear();
  const left = [...running];
  for (const { child } of left) child.kill('SIGKILL');
  await Promise.all(left.map((spawned) => spawned.exited));
}
