import { z } from 'zod';
import type { TaskContext } from '../../runtime/handlers.js';
import type { ModelTool } from './session.js';

/**
 * The runtime tools a model may call from generateText: `delegate` runs another agent's action as
 * a child task (ctx.call: durable, the task waits without a worker slot), `get_state` reads this
 * agent's state.
 */
export function runtimeTools(ctx: TaskContext): ModelTool[] {
  return [
    {
      name: 'delegate',
      description: "Runs another agent's action and returns its result, e.g. security.scan_secrets { text }.",
      parameters: z.object({
        agentId: z.string().min(1).max(63),
        action: z.string().min(1).max(100),
        input: z.record(z.string(), z.unknown()).optional(),
      }),
      durable: true,
      run: (args) => {
        const { agentId, action, input } = args as { agentId: string; action: string; input?: unknown };
        return ctx.call(agentId, action, input ?? null);
      },
    },
    {
      name: 'get_state',
      description: "Reads this agent's saved state (JSON) and its version.",
      parameters: z.object({}),
      run: async () => {
        const state = await ctx.state.get();
        return state ? { data: state.data, version: state.version } : null;
      },
    },
  ];
}
