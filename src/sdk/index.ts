/**
 * The Agent SDK: what a file in the agents folder (CAS_AGENTS_DIR) imports, as
 * `import { defineAgent, defineAction, z } from 'cas-runtime-api/sdk'` (package.json `exports`).
 * See docs/agents.md.
 */
export { defineAgent, type AgentDefinition, type DefinedAgent } from '../agents/definition.js';
export {
  defineAction,
  type Action,
  type ActionDefinition,
  type ActionMap,
  type CompiledGraphLike,
  type GraphActionDefinition,
} from '../agents/actions.js';
export { taskContext } from '../runtime/langgraph/task-context.js';
export {
  ChildTaskFailed,
  SignalTimeout,
  TaskFailure,
  type ChildCall,
  type TaskContext,
  type TaskHandler,
  type WaitForSignalOptions,
} from '../runtime/handlers.js';
/**
 * The zod the runtime checks schemas with: importing it from here keeps one copy of zod, so a
 * deployer's schemas and the runtime's JSON Schema conversion agree.
 */
export { z } from 'zod';
export { defineWorkflow, type DefinedWorkflow } from '../domains/workflow/define.js';
export type { WorkflowStepDefinition } from '../domains/workflow/workflow.js';
export type {
  ModelTool,
  ObjectRequest,
  TaskModel,
  TextRequest,
  ToolTextRequest,
} from '../agents/model/session.js';
export { runtimeTools } from '../agents/model/tools.js';
