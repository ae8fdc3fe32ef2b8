/**
 * Relay-style connections over the runtime's pages. Cursors are the runtime's own opaque cursors
 * (base64url, kind-tagged), so `after` goes back to the runtime unchanged.
 */
import { badInput } from '../errors.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type Page } from '../domains/pagination.js';
import type { AgentRuntime } from '../runtime/agent-runtime.js';
import { builder } from './builder.js';

/** `first` checked at the edge: an integer in 1..max (BAD_USER_INPUT otherwise), or the default. */
export function pageSizeArg(
  first: number | null | undefined,
  { defaultSize = DEFAULT_PAGE_SIZE, max = MAX_PAGE_SIZE, name = 'first' } = {},
): number {
  if (first === null || first === undefined) return defaultSize;
  if (!Number.isInteger(first) || first < 1 || first > max) {
    throw badInput(`"${name}" must be between 1 and ${max} (was ${first})`);
  }
  return first;
}

/** `after` (or `before`) is opaque but bounded: the runtime's cursors are short. */
export function cursorArg(cursor: string | null | undefined, name = 'after'): string | null {
  if (cursor === null || cursor === undefined || cursor === '') return null;
  if (cursor.length > 200) throw badInput(`"${name}" is not a valid cursor`);
  return cursor;
}

export interface ConnectionResult<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: {
    hasNextPage: boolean;
    hasPreviousPage: boolean;
    startCursor: string | null;
    endCursor: string | null;
  };
  totalCount?: () => Promise<number>;
}

export function toConnection<T>(
  page: Page<T>,
  cursorOf: (item: T) => string,
  totalCount?: () => Promise<number>,
): ConnectionResult<T> {
  const edges = page.items.map((node) => ({ cursor: cursorOf(node), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: page.hasNextPage,
      // Known for backward pages (last/before); for forward ones the spec allows false.
      hasPreviousPage: page.hasPreviousPage ?? false,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: page.endCursor ?? edges.at(-1)?.cursor ?? null,
    },
    ...(totalCount ? { totalCount } : {}),
  };
}

/** The `first`/`after` arguments of every connection field. */
export const connectionArgs = builder.args((t) => ({
  first: t.int({
    required: false,
    description: `How many items (1-${MAX_PAGE_SIZE}, default ${DEFAULT_PAGE_SIZE}).`,
  }),
  after: t.string({
    required: false,
    description: 'Opaque cursor: the `endCursor` (or an edge `cursor`) of the page before.',
  }),
}));

/** The `last`/`before` arguments of connections that page backwards too (the log-like ones). */
export const backwardConnectionArgs = builder.args((t) => ({
  last: t.int({
    required: false,
    description: `Backward paging: how many items before \`before\` (1-${MAX_PAGE_SIZE}); without \`before\`, the newest. Returned in the same order as forward pages.`,
  }),
  before: t.string({
    required: false,
    description: 'Opaque cursor: the `startCursor` (or an edge `cursor`) of the page after.',
  }),
}));

/**
 * The paging of a connection that pages both ways: `first`/`after` (the default) or
 * `last`/`before`, never a mix (BAD_USER_INPUT).
 */
export function pagingArgs(args: {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}): { first: number; after: string | null } | { last: number; before: string | null } {
  const backward = args.last != null || (args.before != null && args.before !== '');
  if (!backward) return { first: pageSizeArg(args.first), after: cursorArg(args.after) };
  if (args.first != null || (args.after != null && args.after !== '')) {
    throw badInput('page forwards (first/after) or backwards (last/before), not both');
  }
  return {
    last: pageSizeArg(args.last, { name: 'last' }),
    before: cursorArg(args.before, 'before'),
  };
}

/**
 * A subscription resuming from a cursor retention has passed is refused up front with
 * CURSOR_EXPIRED (and a malformed cursor with BAD_USER_INPUT), not as an error mid-stream: reading
 * one event after the cursor makes the database check it.
 */
export async function refuseExpiredCursor(runtime: AgentRuntime, after: string | null): Promise<void> {
  if (after) await runtime.getEventHistory({ after, first: 1 });
}
