import type { TaskContext } from '../handlers.js';

/**
 * Where a graph run keeps its task's context in the run's config. Kept apart from the runner so the
 * SDK's taskContext does not load LangGraph.
 */
export const TASK_CONTEXT_KEY = 'cas_task_context';

/**
 * The CAS task a graph node runs for: `ctx.progress`, `ctx.log`, `ctx.model`, `ctx.step`,
 * `ctx.call`, ... exactly as an action's `run` gets them. Pass the node's second argument:
 *
 *   .addNode('draft', async (state, config) => { const ctx = taskContext(config); ... })
 */
export function taskContext(config: { configurable?: Record<string, unknown> } | undefined): TaskContext {
  const ctx = config?.configurable?.[TASK_CONTEXT_KEY];
  if (!ctx) throw new Error('taskContext(config): this graph is not running as a CAS task');
  return ctx as TaskContext;
}
