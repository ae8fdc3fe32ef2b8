/** What the figures were measured on. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { serverVersion } from './postgres.js';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string;
  pglite: string;
  graphileWorker: string;
  autocannon: string;
  gitCommit: string;
  /** 1-minute load average when the run started and ended: high values mean a noisy machine. */
  loadAverageAtStart: number;
  loadAverageAtEnd?: number;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function packageVersion(name: string): string {
  try {
    const file = readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8');
    return (JSON.parse(file) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT })
      .toString()
      .trim();
    return dirty ? `${commit} (with uncommitted changes)` : commit;
  } catch {
    return 'unknown';
  }
}

/** The machine's CPU time so far, all cores (Linux: /proc/stat), in clock ticks. */
export interface CpuTimes {
  busy: number;
  total: number;
}

export function cpuTimes(): CpuTimes | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    // cpu user nice system idle iowait irq softirq steal ...
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.reduce((sum, value) => sum + value, 0);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/**
 * The share of the machine's CPU (every core, every process) that was busy between two readings:
 * near 1 means the machine had no CPU left, so more processes could only share it.
 */
export function busyShare(from: CpuTimes | undefined, to: CpuTimes | undefined): number | undefined {
  if (!from || !to || to.total <= from.total) return undefined;
  return (to.busy - from.busy) / (to.total - from.total);
}

export async function machineInfo(): Promise<MachineInfo> {
  const pgVersion = await serverVersion();
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: pgVersion.split(' on ')[0] ?? pgVersion,
    pglite: packageVersion('@electric-sql/pglite'),
    graphileWorker: packageVersion('graphile-worker'),
    autocannon: packageVersion('autocannon'),
    gitCommit: gitCommit(),
    loadAverageAtStart: os.loadavg()[0]!,
  };
}

/** CPU time (user + system) the process has used, in ms: /proc/<pid>/stat in clock ticks (100 Hz). */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** Linux's USER_HZ: /proc reports CPU times in these ticks on every architecture node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;
