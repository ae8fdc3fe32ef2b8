import { describe, expect, it } from 'vitest';
import { CompletionBatcher } from '../../src/domains/task/completion-batcher.js';
import type { Lease } from '../../src/domains/task/task.js';

const lease = (id: string): Lease => ({ id, leaseToken: `${id}-token` });

/**
 * The batcher's order of work, with a writer that stands for the database by answering after a
 * timer; what the batches write is covered against the real store in leases.test.ts.
 */
describe('completion batches', () => {
  it("tells a batch's callers after the batch their completions set off has been sent", async () => {
    const order: string[] = [];
    let bTold: Promise<unknown> | undefined;
    const batches = new CompletionBatcher<{ id: string }>({
      one: (item) => Promise.resolve({ id: item.id }),
      many: async (items) => {
        const ids = items.map((item) => item.lease.id);
        order.push(`write ${ids.join(',')}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        // As a worker's batch does, this one claims an attempt that ends as soon as it starts.
        if (ids.includes('a')) bTold = batches.complete(lease('b'), null).then(() => order.push('b told'));
        return items.map((item) => ({ id: item.lease.id }));
      },
    });
    await batches.complete(lease('a'), null).then(() => order.push('a told'));
    await bTold;
    expect(order).toEqual(['write a', 'write b', 'a told', 'b told']);
  });

  it('tells the callers of a batch that set nothing off at the next turn, and refuses at once when the write fails', async () => {
    let fail = false;
    const batches = new CompletionBatcher<{ id: string }>({
      one: (item) => Promise.resolve({ id: item.id }),
      many: async (items) => {
        if (fail) throw new Error('database unreachable');
        return items.map((item) => ({ id: item.lease.id }));
      },
    });
    await expect(
      Promise.all([batches.complete(lease('a'), 1), batches.complete(lease('b'), 2)]),
    ).resolves.toEqual([{ id: 'a' }, { id: 'b' }]);
    fail = true;
    await expect(batches.complete(lease('c'), 3)).rejects.toThrow('database unreachable');
  });
});
