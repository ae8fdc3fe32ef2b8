import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { killGroup, spawnInGroup } from './child-processes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ServiceProcess {
  child: ChildProcess;
  /** Everything it printed, for failure messages. */
  output(): string;
  /** Resolves with the exit code (or signal) once it has exited. */
  exited: Promise<number | string | null>;
}

/**
 * Starts `npm run worker`'s entry point (or another src file) in a child process of its own process
 * group (test/support/child-processes.ts) with `env` and resolves once a stdout line contains
 * `readyText`. A child that is not ready within `timeoutMs` is killed before the error is thrown.
 */
export async function startProcess(
  entry: string,
  env: Record<string, string>,
  readyText: string,
  timeoutMs = 60_000,
): Promise<ServiceProcess> {
  const child = spawnInGroup(process.execPath, ['--import', 'tsx', entry], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | string | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal)),
  );
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${entry} did not become ready:\n${output}`)),
        timeoutMs,
      );
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes(readyText)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${entry} exited (${code}) before it was ready:\n${output}`));
      });
    });
  } catch (error) {
    await killGroup(child);
    throw error;
  }
  return { child, output: () => output, exited };
}

/**
 * Stops a process with SIGTERM (or `signal`) and waits for it to exit; whatever it left running in
 * its process group is killed when it exits.
 */
export async function stopProcess(service: ServiceProcess, signal: NodeJS.Signals = 'SIGTERM') {
  if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill(signal);
  return service.exited;
}

/**
 * Runs a command to its end in a process group of its own (killed with the file's tests if they
 * are abandoned) and resolves with its exit code and output.
 */
export async function runCommand(
  command: string,
  args: readonly string[],
): Promise<{ code: number | string | null; stdout: string; stderr: string }> {
  const child = spawnInGroup(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | string | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode, signal) => resolve(exitCode ?? signal));
  });
  return { code, stdout, stderr };
}
