/**
 * An action whose steps the test releases one at a time, so that what a live stream shows of a
 * running task depends on the order of events, not on how fast the machine is: the task reports
 * progress `step / steps` only after the test called `release()` for that step, and the test
 * releases the next step once it has seen the last one arrive (`advance`).
 */
import type { TaskHandler } from '../../src/runtime/handlers.js';

export interface SteppedAction {
  /** The handler: `steps` progress reports, each after a release; then `{ steps }`. */
  run: TaskHandler;
  /** Lets the task take its next step (or, before it started, its first). */
  release(): void;
  /**
   * Releases the next step once `progress` (what a stream shows of the task; null before any)
   * has reached the step released last: call it with each snapshot, from the first one on.
   */
  advance(progress: number | null | undefined): void;
}

export function steppedAction(steps: number): SteppedAction {
  let released = 0;
  let wake: (() => void) | null = null;
  // One abort listener per step, removed once the step is released: a task of many steps would
  // otherwise pile them up on its signal (Node warns past ten).
  const permit = (step: number, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        wake = null;
        reject(signal.reason as Error);
      };
      const check = () => {
        if (released < step) return void (wake = check);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      check();
    });
  const release = () => {
    released += 1;
    wake?.();
  };
  return {
    run: async (_input, ctx) => {
      for (let step = 1; step <= steps; step += 1) {
        await permit(step, ctx.signal);
        ctx.progress(step / steps, `step ${step} of ${steps}`);
      }
      return { steps };
    },
    release,
    advance(progress) {
      if (released < steps && (progress ?? 0) >= released / steps) release();
    },
  };
}
