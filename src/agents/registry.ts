import { parseInput } from '../validation.js';
import type { TaskHandler } from '../runtime/handlers.js';
import type { Action } from './actions.js';
import { diagnosticActions } from './diagnostics.js';

export interface ResolvedAction {
  /** Checks and normalises input; throws BAD_USER_INPUT. */
  parse(input: unknown): unknown;
  run: TaskHandler;
}

const resolve = (action: Action): ResolvedAction =>
  typeof action === 'function'
    ? { parse: (input) => input, run: action }
    : { parse: (input) => parseInput(action.input, input), run: action.run as TaskHandler };

/**
 * Which actions each agent runs in this process. Every agent has the diagnostics; code adds its
 * own with `define`. Workers in other processes load the same code, so they agree.
 */
export class ActionRegistry {
  private readonly actions = new Map<string, Map<string, Action>>();

  define(agentId: string, actions: Record<string, Action>): void {
    const own = this.actions.get(agentId) ?? new Map<string, Action>();
    for (const [name, action] of Object.entries(actions)) own.set(name, action);
    this.actions.set(agentId, own);
  }

  names(agentId: string): string[] {
    return [
      ...new Set([...Object.keys(diagnosticActions), ...(this.actions.get(agentId)?.keys() ?? [])]),
    ].sort();
  }

  resolve(agentId: string, name: string): ResolvedAction | null {
    const action =
      this.actions.get(agentId)?.get(name) ??
      (Object.hasOwn(diagnosticActions, name) ? diagnosticActions[name] : undefined);
    return action ? resolve(action) : null;
  }
}
