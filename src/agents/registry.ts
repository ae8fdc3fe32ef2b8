import { parseInput } from '../validation.js';
import { TaskFailure, type TaskContext, type TaskHandler } from '../runtime/handlers.js';
import {
  isGraphDefinition,
  type Action,
  type ActionMap,
  type CompiledGraphLike,
  type GraphAction,
} from './actions.js';
import { diagnosticActions } from './diagnostics.js';
import { toJsonSchema, type JsonSchema } from './json-schema.js';

/** What `Agent.actions` shows of one action. */
export interface ActionDescription {
  name: string;
  description: string | null;
  /** JSON Schema of the input a client sends; null for a plain-function action (any JSON). */
  inputSchema: JsonSchema | null;
  /** JSON Schema of the result; null when the action declares no output schema. */
  outputSchema: JsonSchema | null;
}

export interface ResolvedAction extends ActionDescription {
  /** Checks and normalises input; throws BAD_USER_INPUT. */
  parse(input: unknown): unknown;
  /**
   * Checks a handler's result against the output schema and returns it as it is stored (the
   * schema's output); throws a TaskFailure INVALID_RESULT (not retryable) on a mismatch.
   * Identity when the action has no output schema.
   */
  parseOutput(result: unknown): unknown;
  /** Calls the model provider: refused at enqueue while none is configured. */
  modelBacked: boolean;
  /** The graph a graph action runs (see GraphActionDefinition); null for a `run` action. */
  graph: GraphAction | null;
  /** The handler of a `run` action (a graph action's refuses: it runs through its graph). */
  run: TaskHandler;
}

/** A graph action's task result is the graph's final state (narrowed by its output schema). */
const graphOf = (graph: CompiledGraphLike): GraphAction => ({
  graph,
  input: (input) => input,
  result: (values) => values,
  nodeEvents: true,
  continuesOutput: true,
  durability: 'sync',
});

const runsAsGraph: TaskHandler = () => {
  throw new Error('a graph action runs through its graph');
};

/** Most characters of a result's schema mismatch kept in the task's error message. */
const MAX_OUTPUT_ISSUES_CHARS = 1000;

/**
 * Resolves an action once: its JSON Schemas are computed here, not per request. Throws an Error
 * naming the action when a schema cannot be described as JSON Schema (see toJsonSchema).
 */
export function resolveAction(name: string, action: Action): ResolvedAction {
  if (typeof action === 'function') {
    return {
      name,
      description: null,
      inputSchema: null,
      outputSchema: null,
      parse: (input) => input,
      parseOutput: (result) => result,
      modelBacked: false,
      graph: null,
      run: action,
    };
  }
  const schemaOf = (schema: Parameters<typeof toJsonSchema>[0], io: 'input' | 'output') => {
    try {
      return toJsonSchema(schema, io);
    } catch (error) {
      throw new Error(`action "${name}": its ${io} schema has no JSON Schema: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
  const { input, output } = action;
  return {
    name,
    description: action.description ?? null,
    inputSchema: schemaOf(input, 'input'),
    outputSchema: output ? schemaOf(output, 'output') : null,
    parse: (value) => parseInput(input, value),
    parseOutput: (result) => {
      if (!output) return result;
      const parsed = output.safeParse(result);
      if (parsed.success) return parsed.data;
      const issues = parsed.error.issues
        .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
        .join('; ')
        .slice(0, MAX_OUTPUT_ISSUES_CHARS);
      throw new TaskFailure(`result does not match the output schema: ${issues}`, 'INVALID_RESULT', false);
    },
    modelBacked: action.model === true,
    ...(isGraphDefinition(action)
      ? { graph: graphOf(action.graph), run: runsAsGraph }
      : { graph: null, run: (value: unknown, ctx: TaskContext) => action.run(value, ctx) }),
  };
}

const resolvedDiagnostics: ReadonlyMap<string, ResolvedAction> = new Map(
  Object.entries(diagnosticActions).map(([name, action]) => [name, resolveAction(name, action)]),
);

/** The diagnostic action names (`ping`, `wait`, `fail`): every agent has them, none may redefine them. */
export const DIAGNOSTIC_ACTION_NAMES: readonly string[] = [...resolvedDiagnostics.keys()];

/**
 * Which actions each agent runs in this process. Every agent has the diagnostics; code adds its
 * own with `define`. Workers in other processes load the same code, so they agree.
 */
export class ActionRegistry {
  private readonly actions = new Map<string, Map<string, ResolvedAction>>();

  /** Adds or replaces actions of an agent; throws (defining none) when a schema cannot be described. */
  define(agentId: string, actions: ActionMap): void {
    const resolved = Object.entries(actions).map(([name, action]) => resolveAction(name, action));
    const own = this.actions.get(agentId) ?? new Map<string, ResolvedAction>();
    for (const action of resolved) own.set(action.name, action);
    this.actions.set(agentId, own);
  }

  names(agentId: string): string[] {
    return this.describe(agentId).map((action) => action.name);
  }

  /** Every action of the agent, the diagnostics included, sorted by name. */
  describe(agentId: string): ActionDescription[] {
    const byName = new Map(resolvedDiagnostics);
    for (const [name, action] of this.actions.get(agentId) ?? []) byName.set(name, action);
    return [...byName.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map(({ name, description, inputSchema, outputSchema }) => ({
        name,
        description,
        inputSchema,
        outputSchema,
      }));
  }

  resolve(agentId: string, name: string): ResolvedAction | null {
    return this.actions.get(agentId)?.get(name) ?? resolvedDiagnostics.get(name) ?? null;
  }
}
