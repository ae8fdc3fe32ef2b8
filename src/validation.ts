import { z } from 'zod';
import { badInput } from './errors.js';

interface Issue {
  path: string;
  message: string;
}

function refuse(issues: Issue[]): never {
  const summary = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message));
  throw badInput(`invalid input: ${summary.join('; ')}`, { issues });
}

/**
 * Parses input at the runtime boundary; a failure is a BAD_USER_INPUT error naming each field.
 * Every input passes here, so this is also where text PostgreSQL cannot store is refused: a NUL
 * character anywhere in it (a string, or a key of a JSON object at any depth).
 */
export function parseInput<Schema extends z.ZodType>(schema: Schema, value: unknown): z.output<Schema> {
  const nul = pathOfNulCharacter(value);
  if (nul) refuse([{ path: nul.join('.'), message: NUL_MESSAGE }]);
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  refuse(
    parsed.error.issues.map((issue) => ({
      path: issue.path.map(String).join('.'),
      message: issue.message,
    })),
  );
}

const NUL_MESSAGE = 'must not contain the NUL character (\\u0000)';

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
};

/** A position in a value, kept as a link to its parent so walking deep values copies nothing. */
interface Step {
  key: string | number;
  parent: Step | null;
}

const pathOf = (step: Step | null): (string | number)[] => {
  const path: (string | number)[] = [];
  for (let at = step; at; at = at.parent) path.unshift(at.key);
  return path;
};

/**
 * Where `value` holds a NUL character (U+0000) in a string or an object key, or null when it holds
 * none. PostgreSQL's text and jsonb cannot store U+0000, so such input could only fail in the
 * database. Iterative (no recursion limit), linear in the size of the value, safe on cycles.
 */
export function pathOfNulCharacter(value: unknown): (string | number)[] | null {
  const pending: { value: unknown; at: Step | null }[] = [{ value, at: null }];
  const seen = new Set<object>();
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { value: item, at } = next;
    if (typeof item === 'string') {
      if (item.includes('\u0000')) return pathOf(at);
    } else if (Array.isArray(item) || isPlainObject(item)) {
      if (seen.has(item)) continue;
      seen.add(item);
      for (const [key, element] of Object.entries(item)) {
        const step = { key: Array.isArray(item) ? Number(key) : key, parent: at };
        if (key.includes('\u0000')) return pathOf(step);
        pending.push({ value: element, at: step });
      }
    }
  }
  return null;
}

/** A `\u0000` escape in JSON text: one preceded by an even number of backslashes. */
const ESCAPED_NUL = /(?<!\\)((?:\\\\)*)\\u0000/g;

/**
 * `value` with every NUL character in its strings and keys replaced by U+FFFD, for text the service
 * writes on a handler's behalf (log entries, progress and error messages), which cannot be refused
 * as input can. Plain JSON values only.
 */
export function replaceNulCharacters<T>(value: T): T {
  const text = JSON.stringify(value);
  if (text === undefined || !text.includes('\\u0000')) return value;
  return JSON.parse(text.replace(ESCAPED_NUL, '$1\\ufffd')) as T;
}

/** Largest JSON document accepted for task input, results and state (serialised bytes). */
export const MAX_JSON_BYTES = 1_000_000;

/**
 * Deepest nesting of arrays and objects accepted in a JSON document: far beyond any real document,
 * well within what serialising and the database's JSON parser handle.
 */
export const MAX_JSON_DEPTH = 100;

/** Whether arrays and objects in `value` nest more than `limit` levels deep (iterative). */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  const pending: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { value: item, depth } = next;
    if (typeof item !== 'object' || item === null) continue;
    if (depth + 1 > limit) return true;
    for (const element of Object.values(item)) pending.push({ value: element, depth: depth + 1 });
  }
  return false;
}

const jsonByteLength = (value: unknown) => {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? Number.POSITIVE_INFINITY : Buffer.byteLength(text);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
};

/** Checks nesting first: a document too deep to serialise is reported as too deep, not as too large. */
const checkJsonDocument = (what: string) => (value: unknown, ctx: z.RefinementCtx) => {
  if (nestedDeeperThan(value, MAX_JSON_DEPTH)) {
    ctx.addIssue({ code: 'custom', message: `is nested too deeply (more than ${MAX_JSON_DEPTH} levels)` });
  } else if (jsonByteLength(value) > MAX_JSON_BYTES) {
    ctx.addIssue({ code: 'custom', message: `must be ${what} of at most ${MAX_JSON_BYTES} bytes` });
  }
};

/** Any JSON value of at most MAX_JSON_BYTES and MAX_JSON_DEPTH levels. */
export const jsonValue = z.unknown().superRefine(checkJsonDocument('JSON'));

export const jsonObject = z.record(z.string(), z.unknown()).superRefine(checkJsonDocument('a JSON object'));

/**
 * Dates accepted as input (runAt, from/to filters): from the Unix epoch to the end of year 9999,
 * the same in every mode. (The embedded database misreads years 1-99, and ISO-8601 has no
 * 4-digit form of years past 9999.)
 */
export const EARLIEST_DATE = new Date('1970-01-01T00:00:00.000Z');
export const LATEST_DATE = new Date('9999-12-31T23:59:59.999Z');

export const dateTime = z
  .date({ error: 'must be a date' })
  .min(EARLIEST_DATE, 'must be 1970-01-01T00:00:00Z or later')
  .max(LATEST_DATE, 'must be 9999-12-31T23:59:59.999Z or earlier');

export const agentId = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]{0,62}$/,
    'must be 1-63 characters of a-z, 0-9, "-" or "_", starting with a letter or digit',
  );

export const taskId = z.uuid('must be a UUID');

export const userId = z.string().min(1).max(200).optional();

/** Batch reads take at most this many ids. */
export const agentIds = z.array(agentId).max(10_000);
export const taskIds = z.array(taskId).max(10_000);
