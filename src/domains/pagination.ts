import { z } from 'zod';
import { badInput } from '../errors.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
  /** Set by pages read backwards (`last`/`before`): more items come before the first. */
  hasPreviousPage?: boolean;
  /** Cursor of the last item, to pass as `after` for the next page. */
  endCursor: string | null;
}

/** `last` of a backward page: as `first`, but absent unless asked for. */
export const backwardPageSize = z
  .number()
  .int()
  .min(1, 'must be at least 1')
  .max(MAX_PAGE_SIZE, `must be at most ${MAX_PAGE_SIZE}`)
  .nullish();

export const pageSize = z
  .number()
  .int()
  .min(1, 'must be at least 1')
  .max(MAX_PAGE_SIZE, `must be at most ${MAX_PAGE_SIZE}`)
  .default(DEFAULT_PAGE_SIZE);

/**
 * Cursors are opaque to clients: base64url of "<kind>:<position>". The kind stops a task cursor
 * from being used to page events.
 */
export function encodeCursor(kind: string, position: number): string {
  return Buffer.from(`${kind}:${position}`).toString('base64url');
}

export function decodeCursor(kind: string, cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString();
  const [cursorKind, position, ...rest] = text.split(':');
  const value = Number(position);
  if (cursorKind !== kind || rest.length > 0 || !Number.isSafeInteger(value) || value < 0) {
    throw badInput(`"${cursor.slice(0, 100)}" is not a valid ${kind} cursor`);
  }
  return value;
}

/**
 * A cursor past the newest position of its log (the events or the log entries): never handed out,
 * and a reader resuming there would silently skip everything up to it.
 */
export const cursorPastHead = (log: 'event' | 'log') =>
  badInput(`"after" is past the end of the ${log} log: not a cursor this server handed out`);

/** Given rows fetched with limit + 1, the page and whether more follow. */
export function toPage<T>(rows: T[], limit: number, cursorOf: (item: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, hasNextPage: rows.length > limit, endCursor: last ? cursorOf(last) : null };
}

/**
 * Given rows read newest first with limit + 1 (the items before a cursor), the page in log order,
 * as a forward page would hold them.
 */
export function toPageBefore<T>(rowsNewestFirst: T[], limit: number, cursorOf: (item: T) => string): Page<T> {
  const items = rowsNewestFirst.slice(0, limit).reverse();
  const last = items.at(-1);
  return {
    items,
    hasNextPage: false,
    hasPreviousPage: rowsNewestFirst.length > limit,
    endCursor: last ? cursorOf(last) : null,
  };
}
