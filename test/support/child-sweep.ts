/**
 * vitest globalSetup: kills the child processes of test workers that are gone (see
 * test/support/child-processes.ts), at the start of a run (leftovers of an interrupted run) and at
 * its end (a worker that crashed or was killed before its clean-up ran).
 */
import { sweepOrphanedChildren } from './child-processes.js';

function sweep(when: string) {
  const killed = sweepOrphanedChildren();
  if (killed > 0) console.log(`[cas tests] ${when}: killed ${killed} leftover child process group(s)`);
}

export default function setup(): () => void {
  sweep('start');
  return () => sweep('end');
}
