/**
 * Drivers return timestamps as Date (node-postgres, PGlite) or ISO strings (PostgREST), and
 * bigints as numbers or strings; row mappers normalise through these.
 */
export const toDate = (value: unknown): Date => (value instanceof Date ? value : new Date(String(value)));
export const toDateOrNull = (value: unknown): Date | null => (value == null ? null : toDate(value));
export const toNumber = (value: unknown): number => (typeof value === 'number' ? value : Number(value));
export const toNumberOrNull = (value: unknown): number | null => (value == null ? null : toNumber(value));
export const toStringOrNull = (value: unknown): string | null => (value == null ? null : String(value));
