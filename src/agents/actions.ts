import type { z } from 'zod';
import type { TaskHandler } from '../runtime/handlers.js';

/** An action with an input schema: input is checked when the task is queued, not when it runs. */
export interface ActionDefinition<Schema extends z.ZodType = z.ZodType> {
  input: Schema;
  run: (input: z.output<Schema>, ctx: Parameters<TaskHandler>[1]) => unknown;
}

export type Action = TaskHandler | ActionDefinition;

export const defineAction = <Schema extends z.ZodType>(
  definition: ActionDefinition<Schema>,
): ActionDefinition => definition as unknown as ActionDefinition;
