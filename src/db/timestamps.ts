/**
 * `timestamptz` values as the PostgreSQL server sends them (DateStyle ISO, any TimeZone:
 * `2026-12-06 08:45:33.123456+00`, `…+05:30`), read into Dates by position instead of through
 * pg's regular expressions (postgres-date); anything else (infinity, BC, a year outside 1000–9999,
 * an offset with seconds) goes to postgres-date, so every value reads as it did.
 *
 * Why: a task row carries up to eight timestamps and a worker reads every row it claims and
 * completes; in a profile of a worker draining no-op tasks, postgres-date was the largest single
 * function (about 10% of the busy process), on the serial path between one batch's answer and the
 * next batch. Dashboards and listings read the same columns.
 */
import { createRequire } from 'node:module';

type TimestamptzParser = (text: string) => Date | number | null;

/** The parser pg uses for timestamptz (postgres-date, untyped): the reference, and the fallback. */
export const parseTimestamptzAsPg = createRequire(import.meta.url)('postgres-date') as TimestamptzParser;

const ZERO = 48;
const DASH = 45;
const COLON = 58;
const SPACE = 32;
const DOT = 46;
const PLUS = 43;
const MS_PER_MINUTE = 60_000;

/** The two-digit number at `at`, or NaN. */
function twoDigits(text: string, at: number): number {
  const tens = text.charCodeAt(at) - ZERO;
  const ones = text.charCodeAt(at + 1) - ZERO;
  return tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9 ? tens * 10 + ones : NaN;
}

/** The offset in ms of `+HH`, `-HH` or `±HH:MM` at `at` ending the text, or NaN. */
function offsetAt(text: string, at: number): number {
  const sign = text.charCodeAt(at);
  if (sign !== PLUS && sign !== DASH) return NaN;
  const hours = twoDigits(text, at + 1);
  let minutes = 0;
  if (text.length === at + 6 && text.charCodeAt(at + 3) === COLON) minutes = twoDigits(text, at + 4);
  else if (text.length !== at + 3) return NaN;
  const offset = (hours * 60 + minutes) * MS_PER_MINUTE;
  return sign === PLUS ? offset : -offset;
}

export function parseTimestamptz(text: string): Date | number | null {
  const year = twoDigits(text, 0) * 100 + twoDigits(text, 2);
  if (
    !(year >= 1000) ||
    text.charCodeAt(4) !== DASH ||
    text.charCodeAt(7) !== DASH ||
    text.charCodeAt(10) !== SPACE ||
    text.charCodeAt(13) !== COLON ||
    text.charCodeAt(16) !== COLON
  ) {
    return parseTimestamptzAsPg(text);
  }
  let end = 19;
  let ms = 0;
  if (text.charCodeAt(end) === DOT) {
    end += 1;
    while (end < text.length && text.charCodeAt(end) >= ZERO && text.charCodeAt(end) <= ZERO + 9) end += 1;
    // As postgres-date computes it, so that a fraction rounds the same way.
    ms = 1000 * parseFloat(text.slice(19, end));
  }
  const offset = offsetAt(text, end);
  const time =
    Date.UTC(
      year,
      twoDigits(text, 5) - 1,
      twoDigits(text, 8),
      twoDigits(text, 11),
      twoDigits(text, 14),
      twoDigits(text, 17),
      ms,
    ) - offset;
  return Number.isNaN(time) ? parseTimestamptzAsPg(text) : new Date(time);
}
