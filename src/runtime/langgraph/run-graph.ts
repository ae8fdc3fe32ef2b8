import { Annotation, Command, END, START, StateGraph, type StateSnapshot } from '@langchain/langgraph';
import type { RunnableConfig } from '@langchain/core/runnables';
import type { Lease } from '../../domains/task/task.js';
import type { TaskCheckpointStore } from '../../domains/task/checkpoints.js';
import type { GraphAction } from '../../agents/actions.js';
import type { TaskContext, TaskHandler } from '../handlers.js';
import { TaskCheckpointSaver } from './checkpoint-saver.js';
import { TASK_CONTEXT_KEY, taskContext } from './task-context.js';

/**
 * How a task runs a LangGraph graph: the thread is the task, checkpoints go to the project's
 * database under the attempt's lease, and the graph's streams become the task's events.
 *
 * - `tasks` and `updates`: a node's start and end are step_started / step_completed (step_failed
 *   when it throws) events, `step: "node:<name>"`.
 * - `messages`: the text of chat-model tokens goes to the task's output (taskOutput).
 * - `custom`: `config.writer({ progress, message? })` reports progress; other values are logged.
 *
 * An attempt that finds a checkpoint resumes from it (after a crash, a retry, a wait): finished
 * nodes do not run again. An `interrupt()` makes the task WAITING for the signal "resume", with
 * the interrupt's value on Task.waitingFor.value; the signal's payload resumes the graph with
 * Command({ resume }).
 */

export interface GraphRunDeps {
  checkpoints: TaskCheckpointStore;
  lease: Lease;
  /** Waits durably for signal "resume" as step `key`, `value` shown on Task.waitingFor. */
  waitForResume(key: string, value: unknown): Promise<unknown>;
  /** Characters of output the task already has: a resumed graph writes after them. */
  continueOutputAfterStored(): void;
}

/** The stream modes a task graph runs with (see above). */
const STREAM_MODES = ['tasks', 'updates', 'messages', 'custom'] as const;

/** The graph's run interface as the runner uses it (CompiledStateGraph has it). */
interface RunnableGraph {
  getState(config: RunnableConfig): Promise<StateSnapshot>;
  stream(
    input: unknown,
    options: RunnableConfig & { streamMode: readonly string[]; durability: GraphAction['durability'] },
  ): Promise<AsyncIterable<unknown>>;
}

type NextRun = { input: unknown } | { done: unknown };

export async function runGraph(
  action: GraphAction,
  input: unknown,
  ctx: TaskContext,
  deps: GraphRunDeps,
): Promise<unknown> {
  const graph = action.graph as unknown as RunnableGraph;
  const config: RunnableConfig = {
    configurable: {
      thread_id: ctx.taskId,
      // LangGraph's way to lend a run a checkpointer: the compiled graph is shared by every task.
      __pregel_checkpointer: new TaskCheckpointSaver(deps.checkpoints, deps.lease),
      [TASK_CONTEXT_KEY]: ctx,
    },
  };
  let state = await graph.getState(config);
  let next: NextRun;
  if (checkpointOf(state)) {
    if (action.continuesOutput) deps.continueOutputAfterStored();
    next = await afterRun(state, deps);
  } else {
    next = { input: action.input(input) };
  }
  while ('input' in next) {
    const before = checkpointOf(state);
    await streamRun(graph, next.input, config, ctx, action, deps);
    state = await graph.getState(config);
    // A run that went on from a checkpoint and stored none made no progress: it is finished.
    next =
      next.input === null && checkpointOf(state) === before
        ? { done: state.values }
        : await afterRun(state, deps);
  }
  return action.result(next.done);
}

const checkpointOf = (state: StateSnapshot): string | undefined => state.config.configurable?.checkpoint_id;

/** What the graph does next: resume an interrupt (after its signal), go on, or nothing (done). */
async function afterRun(state: StateSnapshot, deps: GraphRunDeps): Promise<NextRun> {
  const interrupt = state.tasks.flatMap((task) => task.interrupts)[0];
  if (interrupt) {
    const key = `graph:resume:${interrupt.id ?? state.config.configurable?.checkpoint_id}`;
    const value = await deps.waitForResume(key, interrupt.value ?? null);
    return { input: new Command({ resume: interrupt.id ? { [interrupt.id]: value } : value }) };
  }
  // Nodes left to run, or a superstep whose finished tasks' writes are stored but whose next
  // checkpoint is not (the attempt stopped in between): running on applies them and goes on.
  if (state.next.length > 0 || state.tasks.length > 0) return { input: null };
  return { done: state.values };
}

interface TaskChunk {
  id: string;
  name: string;
  input?: unknown;
  error?: unknown;
}

/** The graph tasks of a run whose start was recorded and not their end, and those that ended. */
interface NodeTracker {
  running: Map<string, TaskChunk>;
  ended: Set<string>;
}

/**
 * One run of the graph to its end, an interrupt or an error, its stream forwarded. A node that
 * throws ends the stream with the error: the nodes still running then are recorded as failed
 * (unless the attempt was stopped: a cancellation, a suspension, a shutdown is not their failure).
 */
async function streamRun(
  graph: RunnableGraph,
  input: unknown,
  config: RunnableConfig,
  ctx: TaskContext,
  action: GraphAction,
  deps: GraphRunDeps,
): Promise<void> {
  const nodes: NodeTracker = { running: new Map(), ended: new Set() };
  try {
    // A graph action's steps are checkpointed before the next starts (GraphAction.durability). With
    // LangGraph's default ("async") a worker killed under load lost the checkpoints still queued,
    // and the attempt that resumed ran all the finished nodes again.
    const stream = await graph.stream(input, {
      ...config,
      signal: ctx.signal,
      streamMode: STREAM_MODES,
      durability: action.durability,
    });
    for await (const chunk of stream) await forward(chunk as [string, unknown], ctx, action, deps, nodes);
  } catch (error) {
    if (action.nodeEvents && !ctx.signal.aborted) await recordFailedNodes(graph, config, deps, nodes, error);
    throw error;
  }
}

/**
 * The nodes that were running when the stream ended with an error are recorded as failed. A node
 * that threw at once may be missing from `running`: an erroring stream drops the chunks it had not
 * handed over yet, its start among them. The failed tasks of the stored state name it; it gets its
 * step_started before its step_failed.
 */
async function recordFailedNodes(
  graph: RunnableGraph,
  config: RunnableConfig,
  deps: GraphRunDeps,
  { running, ended }: NodeTracker,
  error: unknown,
): Promise<void> {
  const stored = await graph.getState(config).catch(() => null);
  for (const task of stored?.tasks ?? []) {
    if (task.error === undefined || running.has(task.id) || ended.has(task.id)) continue;
    const unseen = { id: task.id, name: task.name };
    running.set(task.id, { ...unseen, error: task.error });
    await nodeEvent(deps, 'step_started', unseen).catch(() => undefined);
  }
  for (const task of running.values()) {
    await nodeEvent(deps, 'step_failed', { ...task, error: task.error ?? error }).catch(() => undefined);
  }
}

async function forward(
  [mode, chunk]: [string, unknown],
  ctx: TaskContext,
  action: GraphAction,
  deps: GraphRunDeps,
  { running, ended }: NodeTracker,
) {
  switch (mode) {
    case 'tasks': {
      if (!action.nodeEvents) return;
      const task = chunk as TaskChunk;
      if ('input' in task) {
        running.set(task.id, task);
        await nodeEvent(deps, 'step_started', task);
      } else if (task.error) {
        running.delete(task.id);
        ended.add(task.id);
        await nodeEvent(deps, 'step_failed', task);
      }
      return;
    }
    case 'updates': {
      if (!action.nodeEvents) return;
      for (const name of Object.keys(chunk as Record<string, unknown>)) {
        // __interrupt__ and the like are LangGraph's own keys, not nodes.
        if (name.startsWith('__')) continue;
        const task = [...running.values()].find((candidate) => candidate.name === name) ?? { id: '', name };
        running.delete(task.id);
        ended.add(task.id);
        await nodeEvent(deps, 'step_completed', task);
      }
      return;
    }
    case 'messages': {
      const [message] = chunk as [unknown, unknown];
      const text = textOf(message);
      if (text) ctx.output(text);
      return;
    }
    case 'custom':
      return custom(chunk, ctx);
  }
}

function nodeEvent(
  deps: GraphRunDeps,
  type: 'step_started' | 'step_completed' | 'step_failed',
  task: TaskChunk,
) {
  const error = task.error instanceof Error ? { message: task.error.message.slice(0, 2000) } : undefined;
  return deps.checkpoints.nodeEvent(deps.lease, type, {
    step: `node:${task.name}`,
    node: task.name,
    graphTaskId: task.id,
    ...(error ? { error } : {}),
  });
}

function custom(value: unknown, ctx: TaskContext): void {
  const write = value as { progress?: unknown; message?: unknown } | null;
  if (typeof write?.progress === 'number') {
    ctx.progress(write.progress, typeof write.message === 'string' ? write.message : undefined);
  } else {
    ctx.log('debug', 'graph custom stream write', { value: value as Record<string, unknown> });
  }
}

/** The text of a chat-model message chunk: its string content, or its text parts. */
function textOf(message: unknown): string {
  const content = (message as { content?: unknown } | null)?.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: { type?: unknown; text?: unknown }) =>
      part?.type === 'text' && typeof part.text === 'string' ? part.text : '',
    )
    .join('');
}

/** A plain action's state in its one-node graph: the task's input, then the handler's result. */
const PlainActionState = Annotation.Root({
  input: Annotation<unknown>(),
  result: Annotation<unknown>(),
});

/**
 * A plain action as a one-node graph (CAS_RUNTIME=langgraph): the handler is the node, so its run
 * is checkpointed like any graph's. Its start and end are the task's own events, so the node adds
 * no step events of its own.
 */
export function oneNodeGraph(run: TaskHandler): GraphAction {
  const graph = new StateGraph(PlainActionState)
    .addNode('run', async (state, config) => ({
      result: (await run(state.input, taskContext(config))) ?? null,
    }))
    .addEdge(START, 'run')
    .addEdge('run', END)
    .compile();
  return {
    graph,
    input: (input) => ({ input }),
    result: (values) => (values as { result?: unknown }).result ?? null,
    nodeEvents: false,
    continuesOutput: false,
    durability: 'exit',
  };
}
