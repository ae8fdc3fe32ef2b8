import { z } from 'zod';
import { sleep } from '../feed/change-feed.js';
import { TaskFailure } from '../runtime/handlers.js';
import { defineAction, type Action } from './actions.js';

/** Longest a `wait` diagnostic may take: one hour. */
const MAX_WAIT_MS = 3_600_000;

/**
 * Actions every agent accepts, so operators can check the pipeline end to end:
 * `ping` answers at once, `wait` reports progress and honours cancellation, `fail` fails the
 * first `times` attempts and then succeeds.
 */
export const diagnosticActions: Record<string, Action> = {
  ping: defineAction({
    description: 'Answers { pong: true } at once: checks that tasks of this agent reach a worker.',
    input: z.unknown(),
    output: z.object({ pong: z.literal(true) }),
    run: () => ({ pong: true as const }),
  }),

  wait: defineAction({
    description:
      'Waits `ms` milliseconds, reporting progress `steps` times; honours cancellation. Admins only.',
    input: z
      .object({
        ms: z.number().int().min(0).max(MAX_WAIT_MS).default(1000),
        steps: z.number().int().min(0).max(10_000).default(0),
      })
      .nullish()
      .transform((value) => value ?? { ms: 1000, steps: 0 }),
    output: z.object({ waitedMs: z.number(), steps: z.number().int() }),
    run: async ({ ms, steps }, ctx) => {
      const stepCount = Math.max(steps, 1);
      for (let step = 1; step <= stepCount; step += 1) {
        await sleep(ms / stepCount, ctx.signal);
        ctx.signal.throwIfAborted();
        if (steps > 0) ctx.progress(step / steps, `step ${step} of ${steps}`);
      }
      return { waitedMs: ms, steps };
    },
  }),

  fail: defineAction({
    description:
      'Fails the first `times` attempts (retryable, code DIAGNOSTIC_FAILURE), then succeeds. Admins only.',
    input: z
      .object({
        message: z.string().max(1000).default('diagnostic failure'),
        times: z.number().int().min(0).max(1000).default(1),
      })
      .nullish()
      .transform((value) => value ?? { message: 'diagnostic failure', times: 1 }),
    output: z.object({ attempt: z.number().int(), failedAttempts: z.number().int() }),
    run: ({ message, times }, ctx) => {
      if (ctx.attempt <= times) throw new TaskFailure(message, 'DIAGNOSTIC_FAILURE', true);
      return { attempt: ctx.attempt, failedAttempts: times };
    },
  }),
};
