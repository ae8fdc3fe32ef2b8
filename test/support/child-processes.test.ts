/**
 * The harness leaves no process behind: a child started through it is killed with everything it
 * started when a test is abandoned (failure or timeout: the file's afterAll runs killAllChildren),
 * when it exits on its own leaving a grandchild, when it never becomes ready, and when the test
 * worker that started it dies without cleaning up (the global setup's sweep).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { killAllChildren, sweepOrphanedChildren } from './child-processes.js';
import { startProcess } from './processes.js';

const TREE = 'test/support/fixtures/process-tree.ts';
const OWNER = 'test/support/fixtures/orphaning-owner.ts';
/** How long a killed process may take to disappear on a loaded machine: a ceiling, not a claim. */
const GONE_WITHIN_MS = 20_000;

/** Alive and not a zombie waiting to be reaped. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function expectGone(pids: number[]) {
  await expect.poll(() => pids.filter(isRunning), { timeout: GONE_WITHIN_MS, interval: 50 }).toEqual([]);
}

/** The pids of the `tree <child> <grandchild>` line a process printed. */
function treeOf(output: string): [number, number] {
  const match = /tree (\d+) (\d+)/.exec(output);
  if (!match) throw new Error(`no tree line in:\n${output}`);
  return [Number(match[1]), Number(match[2])];
}

describe.skipIf(process.platform !== 'linux')('child processes started by tests', () => {
  it('are killed with their grandchildren when a test is abandoned (the afterAll of every file)', async () => {
    const tree = await startProcess(TREE, {}, 'tree ');
    const [child, grandchild] = treeOf(tree.output());
    expect([child, grandchild].filter(isRunning)).toEqual([child, grandchild]);

    // What a timed-out test leaves: no stopProcess ran; the setup file's afterAll does this.
    await killAllChildren();

    await expectGone([child, grandchild]);
  });

  it('take what they started with them when they exit on their own', async () => {
    const tree = await startProcess(TREE, { PROCESS_TREE_LEADER_EXITS: '1' }, 'tree ');
    const [child, grandchild] = treeOf(tree.output());
    expect(await tree.exited).toBe(0);

    await expectGone([child, grandchild]);
  });

  it('are killed when they do not become ready in time', { timeout: 60_000 }, async () => {
    const failure = await startProcess(TREE, {}, 'a line it never prints', 20_000).catch(
      (error: Error) => error,
    );
    expect(failure).toBeInstanceOf(Error);
    await expectGone(treeOf((failure as Error).message));
  });

  it('are killed by the sweep when the test worker that started them died', async () => {
    const owner = await startProcess(OWNER, {}, 'tree ');
    const [child, grandchild] = treeOf(owner.output());

    // A worker killed outright runs no hook and no exit handler.
    owner.child.kill('SIGKILL');
    await owner.exited;
    expect([child, grandchild].filter(isRunning)).toEqual([child, grandchild]);

    expect(sweepOrphanedChildren()).toBeGreaterThanOrEqual(1);
    await expectGone([child, grandchild]);
  });
});
