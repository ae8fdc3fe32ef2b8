/** Reads of concurrent operations merged into one call per turn of the event loop. */
import { describe, expect, it } from 'vitest';
import { MAX_SHARED_READ_IDS, SharedReads } from '../../src/graphql/shared-reads.js';

/** A read that records each call's ids and answers `value:<id>`. */
function recordingRead() {
  const calls: string[][] = [];
  const read = async (ids: readonly string[]) => {
    calls.push([...ids]);
    return ids.map((id) => `value:${id}`);
  };
  return { calls, read };
}

describe('shared reads', () => {
  it('one call per key for everything asked in the same turn, each caller answered in its own order', async () => {
    const shared = new SharedReads();
    const { calls, read } = recordingRead();
    const other = recordingRead();
    const [a, b, c] = await Promise.all([
      shared.load('k', ['1', '2'], read),
      shared.load('k', ['2', '3', '1'], read),
      shared.load('other', ['1'], other.read),
    ]);
    expect(calls).toEqual([['1', '2', '3']]);
    expect(other.calls).toEqual([['1']]);
    expect(a).toEqual(['value:1', 'value:2']);
    expect(b).toEqual(['value:2', 'value:3', 'value:1']);
    expect(c).toEqual(['value:1']);
  });

  it('a read asked for after a batch left starts a new call', async () => {
    const shared = new SharedReads();
    const { calls, read } = recordingRead();
    await shared.load('k', ['1'], read);
    await shared.load('k', ['1'], read);
    expect(calls).toEqual([['1'], ['1']]);
  });

  it('a batch holds at most MAX_SHARED_READ_IDS ids; more go to the next call', async () => {
    const shared = new SharedReads();
    const { calls, read } = recordingRead();
    const ids = Array.from({ length: MAX_SHARED_READ_IDS + 5 }, (_, i) => String(i));
    const answers = await Promise.all(ids.map((id) => shared.load('k', [id], read)));
    expect(calls.map((call) => call.length)).toEqual([MAX_SHARED_READ_IDS, 5]);
    expect(answers.flat()).toEqual(ids.map((id) => `value:${id}`));
  });

  it('a failed call fails every caller of its batch, and the next batch is a new call', async () => {
    const shared = new SharedReads();
    const failing = async (): Promise<string[]> => {
      throw new Error('database unreachable');
    };
    const results = await Promise.allSettled([
      shared.load('k', ['1'], failing),
      shared.load('k', ['2'], failing),
    ]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    const { read } = recordingRead();
    await expect(shared.load('k', ['1'], read)).resolves.toEqual(['value:1']);
  });

  it('a read answering the wrong number of values fails its callers', async () => {
    const shared = new SharedReads();
    await expect(shared.load('k', ['1', '2'], async () => ['only one'])).rejects.toThrow(
      /1 values for 2 ids/,
    );
  });
});
