import { z } from 'zod';
import { registerAgentInput, type RegisterAgentInput } from '../domains/agent/agent.js';
import { agentId } from '../validation.js';
import type { Action, ActionMap } from './actions.js';
import { DIAGNOSTIC_ACTION_NAMES, resolveAction } from './registry.js';

/**
 * Marks what defineAgent returned. `Symbol.for`, so a definition made by another copy of this
 * package (a deployer's project that installed its own) is still recognised.
 */
const AGENT_DEFINITION = Symbol.for('cas-runtime-api/agent-definition');

/** An agent in code: who it is (as registerAgent takes it) and what it can do. */
export interface AgentDefinition<Actions extends ActionMap = ActionMap> {
  /** The agent's slug, e.g. "writer": 1-63 of a-z, 0-9, "-", "_", starting with a letter or digit. */
  id: string;
  name: string;
  role: string;
  description?: string | null;
  /** Most tasks of this agent running at once over all workers; omitted or null for no limit. */
  maxConcurrency?: number | null;
  /** Its own actions by name; the diagnostics `ping`, `wait` and `fail` come with every agent. */
  actions: Actions;
}

/** What defineAgent returns: the definition, marked so the loader can tell it from anything else. */
export type DefinedAgent<Actions extends ActionMap = ActionMap> = Readonly<AgentDefinition<Actions>> & {
  readonly [AGENT_DEFINITION]: true;
};

/**
 * Declares an agent; a file in the agents folder default-exports the result. Checked when loaded
 * (see loadAgents), not here, so a mistake is reported with the file's name.
 */
export function defineAgent<const Actions extends ActionMap>(
  definition: AgentDefinition<Actions>,
): DefinedAgent<Actions> {
  return Object.freeze({ ...definition, [AGENT_DEFINITION]: true as const });
}

export function isDefinedAgent(value: unknown): value is DefinedAgent {
  return typeof value === 'object' && value !== null && AGENT_DEFINITION in value;
}

/** An action name in code: letters, digits, "-", "_", starting with a letter (fits executeTask's 100). */
const ACTION_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,99}$/;

const zodSchema = z.custom<z.ZodType>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    '_zod' in value &&
    typeof (value as { safeParse?: unknown }).safeParse === 'function',
  { error: 'must be a zod schema, e.g. z.object({ ... })' },
);

const aFunction = (what: string) =>
  z.custom<(...args: never[]) => unknown>((value) => typeof value === 'function', {
    error: `must be a function ${what}`,
  });

const compiledGraph = z.custom<object>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { stream?: unknown }).stream === 'function' &&
    typeof (value as { getState?: unknown }).getState === 'function',
  { error: 'must be a compiled LangGraph graph, e.g. new StateGraph(...).compile()' },
);

const actionFields = {
  description: z.string().max(2000).optional(),
  input: zodSchema,
  output: zodSchema.optional(),
  model: z.boolean().optional(),
};

const runDefinition = z.strictObject({ ...actionFields, run: aFunction('(input, ctx) => result') });
const graphDefinition = z.strictObject({ ...actionFields, graph: compiledGraph });

/** A definition runs a function or a graph: each checked with its own fields. */
const actionDefinition = (value: unknown) =>
  (typeof value === 'object' && value !== null && 'graph' in value
    ? graphDefinition
    : runDefinition
  ).safeParse(value);

/** A plain function, or a definition (its own issues reported, rather than "no union member matched"). */
const action = z.unknown().superRefine((value, context) => {
  if (typeof value === 'function') return;
  const parsed = actionDefinition(value);
  if (parsed.success) return;
  for (const issue of parsed.error.issues) {
    context.addIssue({ code: 'custom', message: issue.message, path: issue.path });
  }
});

/** Action names, checked here rather than as record keys so each problem keeps its own message. */
const actionNames = (actions: Record<string, unknown>, context: z.RefinementCtx) => {
  for (const name of Object.keys(actions)) {
    if (!ACTION_NAME.test(name)) {
      context.addIssue({
        code: 'custom',
        path: [name],
        message: 'an action name is 1-100 letters, digits, "-" or "_", starting with a letter',
      });
    } else if (DIAGNOSTIC_ACTION_NAMES.includes(name)) {
      context.addIssue({
        code: 'custom',
        path: [name],
        message: `"${name}" is a diagnostic action every agent has (${DIAGNOSTIC_ACTION_NAMES.join(', ')}); choose another name`,
      });
    }
  }
};

const agentDefinition = z.strictObject({
  ...registerAgentInput.shape,
  id: agentId,
  actions: z.record(z.string(), action).superRefine(actionNames),
});

/** A definition that passed checkDefinition: what the runtime registers and runs. */
export interface CheckedAgent {
  registration: RegisterAgentInput;
  actions: ActionMap;
}

/**
 * Checks a definition: the agent's fields as registerAgent takes them, action names, action
 * shapes, and that every schema has a JSON Schema. Returns the problems, one line each, or the
 * agent ready to register.
 */
export function checkDefinition(
  definition: DefinedAgent,
): { ok: true; agent: CheckedAgent } | { ok: false; problems: string[] } {
  const parsed = agentDefinition.safeParse({ ...definition });
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((issue) =>
        issue.path.length ? `${issue.path.map(String).join('.')}: ${issue.message}` : issue.message,
      ),
    };
  }
  const { actions, ...registration } = parsed.data;
  const checkedActions = actions as Record<string, Action>;
  const problems: string[] = [];
  for (const [name, action] of Object.entries(checkedActions)) {
    try {
      resolveAction(name, action);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, agent: { registration, actions: checkedActions } };
}
