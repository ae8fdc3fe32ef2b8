/**
 * The response cap's quick bound (src/server/limits.ts): whenever it says a result fits, the JSON
 * text really does; it declines values it cannot judge. RESPONSE_TOO_LARGE itself is tested end to
 * end in quotas.test.ts.
 */
import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { jsonBytesAtMost } from '../../src/server/limits.js';

const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/** Strings that JSON makes longest per character: control characters, quotes, non-BMP, CJK. */
const AWKWARD = ['\u0000\u001f', '"\\', '😀𝄞', '漢字', 'plain', ''];

function randomValue(depth: number, random: () => number): unknown {
  const pick = Math.floor(random() * (depth > 3 ? 5 : 7));
  switch (pick) {
    case 0:
      return AWKWARD[Math.floor(random() * AWKWARD.length)]!.repeat(1 + Math.floor(random() * 5));
    case 1:
      return random() < 0.5 ? -1.2345678901234567e-308 : Math.floor(random() * 1e9);
    case 2:
      return random() < 0.5;
    case 3:
      return null;
    case 4:
      return undefined;
    case 5:
      return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(depth + 1, random));
    default: {
      const object = Object.create(null) as Record<string, unknown>;
      for (let i = 0; i < Math.floor(random() * 4); i++)
        object[AWKWARD[i]! + i] = randomValue(depth + 1, random);
      return object;
    }
  }
}

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the response size bound', () => {
  it('never says a value fits when its JSON text is longer than the budget', () => {
    const random = seeded(17);
    let cleared = 0;
    for (let i = 0; i < 2_000; i++) {
      const value = { data: randomValue(0, random) };
      const size = bytes(value);
      for (const budget of [size - 1, size, size * 3, size * 10]) {
        if (jsonBytesAtMost(value, budget)) {
          cleared += 1;
          expect(size).toBeLessThanOrEqual(budget);
        }
      }
    }
    // It is useful too: generous budgets are cleared without measuring.
    expect(cleared).toBeGreaterThan(2_000);
  });

  it('declines what it cannot judge (toJSON), so the caller measures it', () => {
    expect(jsonBytesAtMost({ errors: [new GraphQLError('x')] }, 1_000_000)).toBe(false);
    expect(jsonBytesAtMost({ data: { when: new Date(0) } }, 1_000_000)).toBe(false);
    expect(jsonBytesAtMost({ data: { ok: true } }, 1_000_000)).toBe(true);
  });
});
