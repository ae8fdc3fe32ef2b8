import { z } from 'zod';
import { badInput } from './errors.js';

/** Parses input at the runtime boundary; a failure is a BAD_USER_INPUT error naming each field. */
export function parseInput<Schema extends z.ZodType>(schema: Schema, value: unknown): z.output<Schema> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
  const summary = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message));
  throw badInput(`invalid input: ${summary.join('; ')}`, { issues });
}

/** Largest JSON document accepted for task input, results and state (serialised bytes). */
export const MAX_JSON_BYTES = 1_000_000;

const jsonByteLength = (value: unknown) => {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? Number.POSITIVE_INFINITY : Buffer.byteLength(text);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
};

/** Any JSON value of at most MAX_JSON_BYTES. */
export const jsonValue = z.unknown().refine((value) => jsonByteLength(value) <= MAX_JSON_BYTES, {
  message: `must be JSON of at most ${MAX_JSON_BYTES} bytes`,
});

export const jsonObject = z
  .record(z.string(), z.unknown())
  .refine((value) => jsonByteLength(value) <= MAX_JSON_BYTES, {
    message: `must be a JSON object of at most ${MAX_JSON_BYTES} bytes`,
  });

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
