/**
 * Relay-style connections over the runtime's pages. Cursors are the runtime's own opaque cursors
 * (base64url, kind-tagged), so `after` goes back to the runtime unchanged.
 */
import { badInput } from '../errors.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type Page } from '../domains/pagination.js';
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

/** `after` is opaque but bounded: the runtime's cursors are short. */
export function cursorArg(after: string | null | undefined): string | null {
  if (after === null || after === undefined || after === '') return null;
  if (after.length > 200) throw badInput('"after" is not a valid cursor');
  return after;
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
      // Forward pagination only (first/after); the spec allows false here.
      hasPreviousPage: false,
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
