import type { GraphAction } from '../../agents/actions.js';
import type { ResolvedAction } from '../../agents/registry.js';
import { CustomRuntime } from '../custom-runtime.js';
import { oneNodeGraph } from './run-graph.js';

/**
 * CAS_RUNTIME=langgraph: the same engine, queue, events and API as the custom runtime, with every
 * action run as a LangGraph graph. A graph action runs its own graph; a `run` action runs as a
 * one-node graph around its handler. Every attempt is checkpointed in the project's database
 * (thread = task), so an attempt that starts again (a crash, a retry, a wait) resumes from the last
 * checkpoint, and `interrupt()` works anywhere, answered by signalTask(id, "resume", value).
 */
export class LangGraphRuntime extends CustomRuntime {
  override readonly name: string = 'langgraph';
  /** One wrapper graph per action, built when it first runs. */
  private readonly wrapped = new WeakMap<ResolvedAction, GraphAction>();

  protected override graphOf(action: ResolvedAction): GraphAction {
    if (action.graph) return action.graph;
    let graph = this.wrapped.get(action);
    if (!graph) {
      graph = oneNodeGraph(action.run);
      this.wrapped.set(action, graph);
    }
    return graph;
  }
}
