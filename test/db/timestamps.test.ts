import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTimestamptz, parseTimestamptzAsPg } from '../../src/db/timestamps.js';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';

/**
 * timestamptz values read by position (src/db/timestamps.ts) must read exactly as pg's own parser
 * (postgres-date) reads them: the same instant, or the same non-Date value where it gives one.
 */
const asComparable = (value: Date | number | null) => (value instanceof Date ? value.getTime() : value);

/** Texts in the server's ISO output format, with every fraction length and offset shape. */
function isoTexts(count: number): string[] {
  const offsets = ['+00', '-03', '+05:30', '-09:30', '+14', '+05:45', '-11', '+01'];
  const pad = (value: number, width: number) => String(value).padStart(width, '0');
  let seed = 7;
  const next = (below: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % below;
  };
  return Array.from({ length: count }, (_, index) => {
    const fraction = index % 7 === 0 ? '' : `.${pad(next(10 ** (index % 7)), index % 7)}`;
    return (
      `${pad(1000 + next(9000), 4)}-${pad(1 + next(12), 2)}-${pad(1 + next(28), 2)} ` +
      `${pad(next(24), 2)}:${pad(next(60), 2)}:${pad(next(60), 2)}${fraction}${offsets[index % offsets.length]}`
    );
  });
}

describe('reading timestamptz by position', () => {
  it('reads every ISO text as postgres-date does', () => {
    const texts = isoTexts(5000);
    expect(texts.map((text) => asComparable(parseTimestamptz(text)))).toEqual(
      texts.map((text) => asComparable(parseTimestamptzAsPg(text))),
    );
  });

  it('leaves what it does not read by position to postgres-date', () => {
    const others = [
      'infinity',
      '-infinity',
      '0099-03-04 05:06:07+00',
      '0999-12-31 23:59:59.999+00',
      '12345-06-07 01:02:03+00',
      '2020-01-01 00:00:00+00 BC',
      '1895-01-01 00:00:00+05:53:28',
      '2026-12-06 08:45:33.+00',
      '2026-12-06 08:45:33.5',
      '2026-12-06T08:45:33Z',
      '2026-12-06',
    ];
    expect(others.map((text) => asComparable(parseTimestamptz(text)))).toEqual(
      others.map((text) => asComparable(parseTimestamptzAsPg(text))),
    );
  });
});

describeEachDatabase('timestamptz values from the database', (kind) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await openTestDatabase(kind);
  });
  afterAll(() => testDb.close());

  it.each(['UTC', 'Asia/Kathmandu', 'America/St_Johns', 'Pacific/Kiritimati', 'Europe/Amsterdam'])(
    'read as the instant the server sent, in time zone %s',
    async (zone) => {
      const rows = await testDb.db.transaction(async (tx) => {
        await tx.query(`select set_config('TimeZone', $1, true)`, [zone]);
        return tx.query<{ value: Date; text: string }>(`
          select value, value::text as text
          from (select timestamptz '1999-12-31 23:59:59.999999+00' + n * interval '37 days 3 hours 17.123457 seconds'
                from generate_series(0, 400) as n
                union all select clock_timestamp()
                union all select timestamptz '1000-01-01 00:00:00+00') as t(value)`);
      });
      expect(rows).toHaveLength(403);
      for (const row of rows) {
        expect(row.value).toBeInstanceOf(Date);
        if (kind === 'postgres')
          expect(row.value.getTime()).toBe(asComparable(parseTimestamptzAsPg(row.text)));
      }
    },
  );
});
