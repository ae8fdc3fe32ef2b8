import type { z } from 'zod';
import type { TaskContext, TaskHandler } from '../runtime/handlers.js';

/**
 * An action with schemas: `input` is checked (and normalised: defaults, transforms) when the task
 * is queued, so a bad input is a BAD_USER_INPUT of executeTask and never reaches a worker; `output`,
 * when given, is checked when the attempt ends (a mismatch fails the task, code INVALID_RESULT).
 * Both are published as JSON Schema on `Agent.actions` (see src/agents/json-schema.ts for which
 * schemas can be).
 */
export interface ActionDefinition<
  Input extends z.ZodType = z.ZodType,
  Output extends z.ZodType = z.ZodType<unknown>,
> {
  /** What the action does, for people: shown on `Agent.actions`. */
  description?: string;
  input: Input;
  output?: Output;
  /**
   * True when `run` calls the model provider (ctx.model): such a task is refused at enqueue with
   * PROVIDER_NOT_CONFIGURED while no provider is configured, instead of failing on a worker.
   */
  model?: boolean;
  // Method syntax on purpose: a definition with a narrower input type stays assignable to the
  // general `ActionDefinition` the registry holds (method parameters are bivariant).
  run(input: z.output<Input>, ctx: TaskContext): z.input<Output> | Promise<z.input<Output>>;
}

/** What an agent's action may be: a definition with schemas, or a plain function (no schemas). */
export type Action = TaskHandler | ActionDefinition;

/** Actions by name. */
export type ActionMap = Record<string, Action>;

/**
 * Declares an action. Returns the definition itself, typed: `run` gets its input typed from the
 * `input` schema's output and must return what the `output` schema accepts.
 */
export const defineAction = <Input extends z.ZodType, Output extends z.ZodType = z.ZodType<unknown>>(
  definition: ActionDefinition<Input, Output>,
): ActionDefinition<Input, Output> => definition;
