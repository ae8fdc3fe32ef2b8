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

/**
 * A compiled LangGraph graph, as `new StateGraph(...).compile()` returns it (only what the runtime
 * calls is spelled out, so this package's types do not pin a LangGraph version).
 */
export interface CompiledGraphLike {
  // Method syntax: any compiled graph's narrower parameter types stay assignable.
  getState(config: never, options?: never): Promise<unknown>;
  stream(input: never, options?: never): Promise<unknown>;
}

/**
 * An action that runs a LangGraph graph: the task's input (checked by `input`) is the graph's
 * input state, and its final state is the task's result (checked, and narrowed, by `output`).
 * Nodes reach their task with `taskContext(config)`. See docs/agents.md, "Graph actions".
 */
export interface GraphActionDefinition<
  Input extends z.ZodType = z.ZodType,
  Output extends z.ZodType = z.ZodType<unknown>,
> {
  description?: string;
  input: Input;
  output?: Output;
  /** As for ActionDefinition: a node calls the model provider (ctx.model). */
  model?: boolean;
  graph: CompiledGraphLike;
}

/** How a task runs a graph: the graph, and how the task's input and result map to its state. */
export interface GraphAction {
  graph: CompiledGraphLike;
  /** The graph's input state for the task's (parsed) input. */
  input(input: unknown): unknown;
  /** The task's result for the graph's final state. */
  result(values: unknown): unknown;
  /** Node starts and ends become the task's step_* events. */
  nodeEvents: boolean;
  /**
   * Resumed from a checkpoint, the run writes its output after the text the task already has
   * (the nodes that finished do not run again to re-emit theirs). False for a plain action's
   * one-node graph: its handler runs again from the start, as in the custom runtime.
   */
  continuesOutput: boolean;
  /**
   * LangGraph's checkpoint durability. "sync": a step's checkpoint is stored before the next step
   * starts, so a worker killed in a node finds every finished node's checkpoint. "exit" (one
   * checkpoint, stored when the graph exits: done, failed or interrupted) only for a plain action's
   * one-node graph: it has no finished node to lose, a crash runs its handler again from the
   * task's input either way, and its input and first-step checkpoints cost two writes per task
   * (each a transaction checking the lease) that nothing reads.
   */
  durability: 'sync' | 'exit';
}

/** What an agent's action may be: a definition with schemas (or a graph), or a plain function. */
export type Action = TaskHandler | ActionDefinition | GraphActionDefinition;

/** Actions by name. */
export type ActionMap = Record<string, Action>;

/**
 * Declares an action. Returns the definition itself, typed: `run` gets its input typed from the
 * `input` schema's output and must return what the `output` schema accepts.
 */
export function defineAction<Input extends z.ZodType, Output extends z.ZodType = z.ZodType<unknown>>(
  definition: ActionDefinition<Input, Output>,
): ActionDefinition<Input, Output>;
/** Declares an action that runs a LangGraph graph (see GraphActionDefinition). */
export function defineAction<Input extends z.ZodType, Output extends z.ZodType = z.ZodType<unknown>>(
  definition: GraphActionDefinition<Input, Output>,
): GraphActionDefinition<Input, Output>;
export function defineAction(definition: ActionDefinition | GraphActionDefinition) {
  return definition;
}

export const isGraphDefinition = (action: Action): action is GraphActionDefinition =>
  typeof action === 'object' && 'graph' in action;
