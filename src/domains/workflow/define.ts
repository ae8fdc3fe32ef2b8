/**
 * Workflows in code: `export default defineWorkflow({ id, description?, steps, failPolicy? })` in
 * a file of the workflows folder (CAS_WORKFLOWS_DIR, default `workflows/`), loaded at start like
 * agents (src/agents/loader.ts) and started with `executeWorkflow(input: { workflowId })`. Agents
 * and actions are checked when a run starts: the agents may be registered after the file loads.
 */
import { z } from 'zod';
import { AgentLoadError, importDefaultExports, type LoadAgentsOptions } from '../../agents/loader.js';
import {
  FAIL_POLICIES,
  workflowDefinitionSchema,
  type FailPolicy,
  type WorkflowStepDefinition,
} from './workflow.js';

const DEFINED_WORKFLOW = Symbol.for('cas-runtime-api.workflow');

/** A workflow in code, with the id executeWorkflow({ workflowId }) starts it by. */
export interface DefinedWorkflow {
  id: string;
  description?: string;
  steps: WorkflowStepDefinition[];
  /** What a failed step does to the run; `fail_fast` by default (docs/workflows.md). */
  failPolicy?: FailPolicy;
}

const definedWorkflowSchema = workflowDefinitionSchema.extend({
  id: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, "_" and "-"'),
  description: z.string().max(1000).optional(),
  failPolicy: z.enum(FAIL_POLICIES).optional(),
});

/** Declares a workflow for the workflows folder (see the top of this file). */
export function defineWorkflow(definition: DefinedWorkflow): DefinedWorkflow {
  return Object.defineProperty({ ...definition }, DEFINED_WORKFLOW, { value: true, enumerable: false });
}

const isDefinedWorkflow = (value: unknown): value is DefinedWorkflow =>
  typeof value === 'object' && value !== null && DEFINED_WORKFLOW in value;

/** Imports and checks every workflow file of the folder; an AgentLoadError naming the file otherwise. */
export async function loadWorkflows(options: LoadAgentsOptions): Promise<DefinedWorkflow[]> {
  const imported = await importDefaultExports({
    ...options,
    setting: 'CAS_WORKFLOWS_DIR',
    kind: 'workflow',
    sdkHint:
      "end it with: export default defineWorkflow({ id, steps }) (import { defineWorkflow } from 'cas-runtime-api/sdk')",
  });
  const loaded: DefinedWorkflow[] = [];
  for (const { name, value } of imported) {
    if (!isDefinedWorkflow(value)) {
      throw new AgentLoadError(
        `workflow file ${name}: its default export is not a defineWorkflow(...) result`,
      );
    }
    const checked = definedWorkflowSchema.safeParse(value);
    if (!checked.success) {
      const problems = checked.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
      throw new AgentLoadError(`workflow file ${name} has an invalid definition: ${problems.join('; ')}`);
    }
    if (loaded.some((workflow) => workflow.id === checked.data.id)) {
      throw new AgentLoadError(
        `two workflow files define the workflow "${checked.data.id}"\ngive each its own id`,
      );
    }
    loaded.push(checked.data);
  }
  return loaded;
}
