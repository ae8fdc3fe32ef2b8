/**
 * Every child process that tests and the benchmark start goes through `spawnInGroup`, so that none
 * outlives the run, whatever happens to the test (a failure, a timeout that abandons its `finally`,
 * a crashed test worker):
 *
 * - the child leads a process group of its own (`detached`), so whatever it starts (the `tsx` CLI
 *   starts node; `npm start` starts sh, tsx and node) is killed with it, by signalling the group;
 * - when the child exits, the rest of its group is killed (a grandchild left behind is a stray);
 * - every group still running is killed when the file's tests end (`killAllChildren`, an `afterAll`
 *   of test/support/setup-file.ts) and when the starting process exits;
 * - each group is also written down in a registry folder shared by runs, so that a run's global
 *   teardown (and the next run's setup) kills groups whose starting process died without cleaning
 *   up (`sweepOrphanedChildren`).
 *
 * Process ids are recycled (pid_max is often 32,768), so a registry entry records the start time of
 * the group's leader and of its owner, and a process is only killed if it is in the group and
 * started no earlier than the leader.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Where running groups are written down; shared by every run of this user on this machine. */
const REGISTRY_DIR = path.join(tmpdir(), 'cas-test-children');

interface RegistryEntry {
  /** The group's id: the pid of the child that leads it. */
  pgid: number;
  /** Start time of the leader (clock ticks since boot), to tell it from a recycled pid. */
  leaderStart: number;
  owner: number;
  ownerStart: number;
  command: string;
}

interface Tracked {
  child: ChildProcess;
  entry: RegistryEntry;
  file: string;
  exited: Promise<void>;
}

const running = new Map<number, Tracked>();

/** Fields of /proc/<pid>/stat, or undefined when the process is gone (or there is no /proc). */
function procStat(pid: number): { pgrp: number; start: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pgrp: Number(fields[2]), start: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

const hasProc = () => procStat(process.pid) !== undefined;

/** The processes of group `pgid` started no earlier than its leader (all of them, without /proc). */
function groupMembers(entry: Pick<RegistryEntry, 'pgid' | 'leaderStart'>): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(Number(name));
    if (stat && stat.pgrp === entry.pgid && stat.start >= entry.leaderStart) members.push(Number(name));
  }
  return members;
}

/** Sends `signal` to every process of the group; true if any was there to receive it. */
function signalGroupOf(entry: RegistryEntry, signal: NodeJS.Signals): boolean {
  if (!hasProc()) {
    try {
      process.kill(-entry.pgid, signal);
      return true;
    } catch {
      return false;
    }
  }
  let any = false;
  for (const pid of groupMembers(entry)) {
    try {
      process.kill(pid, signal);
      any = true;
    } catch {
      // Exited meanwhile.
    }
  }
  return any;
}

function forget(tracked: Tracked) {
  running.delete(tracked.entry.pgid);
  rmSync(tracked.file, { force: true });
}

/**
 * `spawn`, with the child leading a process group of its own, written down so that it and all it
 * starts are killed when it exits, when the file's tests end, or when this process exits.
 */
export function spawnInGroup(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true });
  if (child.pid === undefined) return child; // Failed to start: 'error' follows, nothing to track.
  const entry: RegistryEntry = {
    pgid: child.pid,
    leaderStart: procStat(child.pid)?.start ?? 0,
    owner: process.pid,
    ownerStart: procStat(process.pid)?.start ?? 0,
    command: [command, ...args].join(' '),
  };
  mkdirSync(REGISTRY_DIR, { recursive: true });
  const file = path.join(REGISTRY_DIR, `${process.pid}-${child.pid}.json`);
  writeFileSync(file, JSON.stringify(entry));
  const tracked: Tracked = {
    child,
    entry,
    file,
    exited: new Promise((resolve) =>
      child.once('exit', () => {
        // What the child started and left behind goes with it.
        signalGroupOf(entry, 'SIGKILL');
        forget(tracked);
        resolve();
      }),
    ),
  };
  running.set(child.pid, tracked);
  return child;
}

/** Sends `signal` to the child's whole process group (as a terminal's Ctrl-C does). */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  const tracked = child.pid === undefined ? undefined : running.get(child.pid);
  if (tracked) signalGroupOf(tracked.entry, signal);
}

/** Kills the child and everything it started (SIGKILL to the group); resolves once it has exited. */
export async function killGroup(child: ChildProcess): Promise<void> {
  const tracked = child.pid === undefined ? undefined : running.get(child.pid);
  if (!tracked) return;
  signalGroupOf(tracked.entry, 'SIGKILL');
  await tracked.exited;
}

/** Kills every group this process started that is still running. */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...running.values()].map((tracked) => killGroup(tracked.child)));
}

// Last resort when the process leaves without the hooks running (an uncaught error, process.exit).
process.once('exit', () => {
  for (const tracked of running.values()) {
    signalGroupOf(tracked.entry, 'SIGKILL');
    rmSync(tracked.file, { force: true });
  }
});

function isAlive(pid: number, start: number): boolean {
  if (hasProc()) return procStat(pid)?.start === start;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Kills the groups written down by processes that are gone (a test worker that crashed or was
 * killed, a run interrupted with Ctrl-C) and forgets them; groups of live processes (another run
 * beside this one) are left alone. Returns how many groups still had processes to kill.
 */
export function sweepOrphanedChildren(): number {
  let killed = 0;
  let files: string[];
  try {
    files = readdirSync(REGISTRY_DIR);
  } catch {
    return 0;
  }
  for (const name of files) {
    const file = path.join(REGISTRY_DIR, name);
    let entry: RegistryEntry;
    try {
      entry = JSON.parse(readFileSync(file, 'utf8')) as RegistryEntry;
    } catch {
      continue; // Being written or removed right now.
    }
    if (isAlive(entry.owner, entry.ownerStart)) continue;
    if (signalGroupOf(entry, 'SIGKILL')) killed += 1;
    rmSync(file, { force: true });
  }
  return killed;
}
