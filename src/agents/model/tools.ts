import { z } from 'zod';
import type { TaskContext } from '../../runtime/handlers.js';
import type { ModelTool } from './session.js';
import { LOG_LEVELS, type LogLevel } from '../../domains/log/log.js';
import { TASK_STATUSES, type TaskStatus } from '../../domains/task/task.js';

/** Most log entries or tasks one read tool returns (each row is sent to the model). */
const MAX_TOOL_ROWS = 50;

/**
 * The runtime tools a model may call from generateText: `delegate` runs another agent's action as
 * a child task (ctx.call: durable, the task waits without a worker slot); `get_state`,
 * `get_metrics`, `get_logs` and `list_tasks` read this agent's own records (ctx.read), each call a
 * step, so a replay answers from the recorded result. What they read is sent to the provider.
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
    {
      name: 'get_metrics',
      description:
        "This agent's task metrics: runs, succeeded, failed, cancelled, success rate, average duration (ms), " +
        'all time or between ISO dates `from` and `to`.',
      parameters: z.object({ from: z.iso.datetime().optional(), to: z.iso.datetime().optional() }),
      run: (args) => {
        const { from, to } = args as { from?: string; to?: string };
        return ctx.read.metrics({ from: from ? new Date(from) : null, to: to ? new Date(to) : null });
      },
    },
    {
      name: 'get_logs',
      description: "This agent's newest log entries (level, message, task id, time), newest first.",
      parameters: z.object({
        first: z.number().int().min(1).max(MAX_TOOL_ROWS).optional(),
        levels: z.array(z.enum(LOG_LEVELS)).optional(),
      }),
      run: async (args) =>
        (await ctx.read.logs(args as { first?: number; levels?: LogLevel[] })).map((entry) => ({
          level: entry.level,
          message: entry.message,
          taskId: entry.taskId,
          at: entry.createdAt,
        })),
    },
    {
      name: 'list_tasks',
      description:
        "This agent's newest tasks (id, action, status, error, duration in ms, time), optionally by status.",
      parameters: z.object({
        first: z.number().int().min(1).max(MAX_TOOL_ROWS).optional(),
        statuses: z.array(z.enum(TASK_STATUSES)).optional(),
      }),
      run: async (args) =>
        (await ctx.read.tasks(args as { first?: number; statuses?: TaskStatus[] })).map((task) => ({
          id: task.id,
          action: task.action,
          status: task.status,
          error: task.error?.message ?? null,
          durationMs: task.durationMs,
          at: task.createdAt,
        })),
    },
  ];
}
