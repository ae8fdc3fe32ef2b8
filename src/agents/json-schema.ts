import { z } from 'zod';

/** A JSON Schema document (draft 2020-12), as zod produces it. */
export type JsonSchema = Record<string, unknown>;

/**
 * The JSON Schema of an action's input or output, for `Agent.actions`.
 *
 * - Input schemas are described as the client must send them (`io: 'input'`): transforms,
 *   defaults and pipes are fine, since a client sends the value before the transform runs.
 * - Output schemas are described as the result is stored (`io: 'output'`): a transform there has
 *   no JSON Schema and is refused.
 * - Types JSON cannot carry are refused in both: dates, bigints, maps, sets, symbols, functions,
 *   `z.custom` and the like. A task's input and result are JSON, so such a schema could never be
 *   met by a real client (use `z.iso.datetime()` for a date, a string or number for a bigint).
 *
 * Throws an Error saying why when the schema cannot be described.
 */
export function toJsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  return z.toJSONSchema(schema, { io, unrepresentable: 'throw' }) as JsonSchema;
}
