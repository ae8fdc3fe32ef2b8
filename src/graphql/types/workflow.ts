/** Workflows: DAGs of agent steps run in SQL (docs/workflows.md). */
import { ADMIN_ONLY_ACTIONS, actorOf, mayAccessTask, taskCreatorFilter } from '../../auth/roles.js';
import {
  FAIL_POLICIES,
  WORKFLOW_RUN_STATUSES,
  WORKFLOW_STEP_STATUSES,
  workflowRunCursor,
  type WorkflowRun,
  type WorkflowStep,
} from '../../domains/workflow/workflow.js';
import { CasError, ErrorCode, badInput, notFound } from '../../errors.js';
import type { AgentRuntime } from '../../runtime/agent-runtime.js';
import type { Viewer } from '../../auth/roles.js';
import { taskId as uuidSchema } from '../../validation.js';
import { builder } from '../builder.js';
import { upperCaseEnum } from '../enums.js';
import { connectionArgs, cursorArg, pageSizeArg, toConnection } from '../pagination.js';
import { AgentEventRef } from './event.js';
import { TaskRef } from './task.js';
import type { DefinedWorkflow } from '../../domains/workflow/define.js';

const WorkflowRunStatusEnum = upperCaseEnum(
  'WorkflowRunStatus',
  WORKFLOW_RUN_STATUSES,
  'RUNNING → SUCCEEDED (every step succeeded) | FAILED (a step failed) | CANCELLED (cancelWorkflowRun).',
);
const WorkflowStepStatusEnum = upperCaseEnum(
  'WorkflowStepStatus',
  WORKFLOW_STEP_STATUSES,
  'PENDING (dependencies not done) → RUNNING (tasks queued) → SUCCEEDED | FAILED; SKIPPED when a ' +
    'dependency failed under CONTINUE, CANCELLED when the run failed fast or was cancelled.',
);
const FailPolicyEnum = upperCaseEnum(
  'WorkflowFailPolicy',
  FAIL_POLICIES,
  'FAIL_FAST (default): the first failed step cancels the rest. CONTINUE: independent branches go on.',
);

/** A workflow run id from a client: a UUID (BAD_USER_INPUT otherwise). */
function parseRunId(id: string): string {
  if (!uuidSchema.safeParse(id).success) throw badInput('"id" is not a workflow run id (a UUID)');
  return id;
}

/** The run, refused as NOT_FOUND when absent and FORBIDDEN when it is someone else's. */
async function visibleRun(runtime: AgentRuntime, viewer: Viewer, id: string): Promise<WorkflowRun> {
  const [run] = await runtime.getWorkflowRuns([parseRunId(id)]);
  if (!run) throw notFound('workflow run', id);
  if (!mayAccessTask(viewer, run.userId)) {
    throw new CasError(ErrorCode.FORBIDDEN, 'this workflow run was started by someone else');
  }
  return run;
}

/** The actions a definition's steps name (to apply ADMIN_ONLY_ACTIONS as executeTask does). */
function actionsIn(definition: unknown): string[] {
  const steps = (definition as { steps?: unknown } | null)?.steps;
  if (!Array.isArray(steps)) return [];
  return steps
    .map((step) => (step as { action?: unknown } | null)?.action)
    .filter((a) => typeof a === 'string');
}

const WorkflowStepRef = builder.objectRef<WorkflowStep>('WorkflowStep').implement({
  description: 'One step of a workflow run: one task, or one task per item for a map step.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The step id of the definition.' }),
    status: t.expose('status', { type: WorkflowStepStatusEnum }),
    agentId: t.exposeID('agentId'),
    action: t.exposeString('action'),
    dependsOn: t.exposeStringList('dependsOn'),
    map: t.exposeString('map', {
      nullable: true,
      description: 'The $ref of the array a map step runs over.',
    }),
    itemsTotal: t.exposeInt('itemsTotal', { nullable: true, description: 'Map steps: how many items.' }),
    itemsDone: t.exposeInt('itemsDone', { description: 'Map steps: items that succeeded.' }),
    task: t.field({
      type: TaskRef,
      nullable: true,
      description: "The step's task once queued; null for a map step (one task per item).",
      resolve: (step, _args, { loaders }) => (step.taskId ? loaders.tasks.load(step.taskId) : null),
    }),
    result: t.field({ type: 'JSON', nullable: true, resolve: (step) => step.result ?? null }),
    error: t.field({ type: 'JSON', nullable: true, resolve: (step) => step.error ?? null }),
  }),
});

const WorkflowRunRef = builder.objectRef<WorkflowRun>('WorkflowRun').implement({
  description: 'One execution of a workflow definition.',
  authScopes: (run) => ({ taskCreatedBy: run.userId }),
  fields: (t) => ({
    id: t.exposeID('id', { description: 'UUID.' }),
    status: t.expose('status', { type: WorkflowRunStatusEnum }),
    failPolicy: t.expose('failPolicy', { type: FailPolicyEnum }),
    progress: t.exposeFloat('progress', { description: 'Share of steps that reached a final status, 0..1.' }),
    steps: t.field({
      type: [WorkflowStepRef],
      description: 'In definition order.',
      resolve: (run, _args, { loaders }) => loaders.workflowSteps.load(run.id),
    }),
    input: t.field({ type: 'JSON', nullable: true, resolve: (run) => run.input ?? null }),
    definition: t.field({ type: 'JSON', resolve: (run) => run.definition ?? null }),
    result: t.field({
      type: 'JSON',
      nullable: true,
      description: 'Step id → result of each succeeded step no other step depends on.',
      resolve: (run) => run.result ?? null,
    }),
    error: t.field({ type: 'JSON', nullable: true, resolve: (run) => run.error ?? null }),
    createdBy: t.exposeID('userId', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
  }),
});

const WorkflowRunConnection = builder.connectionObject(
  { type: WorkflowRunRef, name: 'WorkflowRunConnection' },
  { name: 'WorkflowRunEdge' },
);

const WorkflowRef = builder.objectRef<DefinedWorkflow>('Workflow').implement({
  description:
    'A workflow definition registered in code (defineWorkflow in CAS_WORKFLOWS_DIR); start it with executeWorkflow(input: { workflowId }).',
  fields: (t) => ({
    id: t.exposeID('id'),
    description: t.string({ nullable: true, resolve: (workflow) => workflow.description ?? null }),
    steps: t.field({
      type: 'JSON',
      description: 'The steps, as in an executeWorkflow definition.',
      resolve: (workflow) => workflow.steps,
    }),
    failPolicy: t.field({
      type: FailPolicyEnum,
      resolve: (workflow) => workflow.failPolicy ?? 'fail_fast',
    }),
  }),
});

builder.queryFields((t) => ({
  workflowRun: t.field({
    type: WorkflowRunRef,
    nullable: true,
    description: 'One workflow run by id; null when there is none.',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { viewer: true },
    resolve: async (_root, { id }, { runtime }) =>
      (await runtime.getWorkflowRuns([parseRunId(id)]))[0] ?? null,
  }),
  workflowRuns: t.field({
    type: WorkflowRunConnection,
    description: 'Workflow runs, newest first; only your own unless you hold tasks:all.',
    authScopes: { viewer: true },
    args: { status: t.arg({ type: WorkflowRunStatusEnum, required: false }), ...connectionArgs },
    resolve: async (_root, args, { runtime, viewer }) => {
      const page = await runtime.listWorkflowRuns({
        status: args.status ?? null,
        createdBy: taskCreatorFilter(viewer),
        first: pageSizeArg(args.first),
        after: cursorArg(args.after),
      });
      return toConnection(page, workflowRunCursor);
    },
  }),
  workflows: t.field({
    type: [WorkflowRef],
    description: 'Workflow definitions registered in code (defineWorkflow), by id.',
    authScopes: { viewer: true },
    resolve: (_root, _args, { runtime }) => [...runtime.listWorkflows()],
  }),
}));

const ExecuteWorkflowInput = builder.inputType('ExecuteWorkflowInput', {
  fields: (t) => ({
    definition: t.field({
      type: 'JSON',
      required: false,
      description:
        '{ steps: [{ id, agentId, action, input?, dependsOn?, map?, maxAttempts?, timeoutMs? }] }; ' +
        'input may hold { "$ref": "input.x" | "<stepId>.result.x" | "item.x" } (docs/workflows.md). ' +
        'Give this or workflowId.',
    }),
    workflowId: t.id({ required: false, description: 'A workflow registered in code (Query.workflows).' }),
    input: t.field({ type: 'JSON', required: false, description: 'The run input ($ref "input...").' }),
    failPolicy: t.field({ type: FailPolicyEnum, required: false }),
  }),
});

builder.mutationFields((t) => ({
  executeWorkflow: t.field({
    type: WorkflowRunRef,
    description: 'Checks a workflow definition and starts a run (its first steps are queued at once).',
    args: { input: t.arg({ type: ExecuteWorkflowInput, required: true }) },
    // Operators; steps running the diagnostics wait and fail need an admin, as in executeTask.
    authScopes: (_root, { input }, { runtime }) => {
      const registered = runtime.listWorkflows().find((workflow) => workflow.id === input.workflowId);
      const actions = actionsIn(registered ?? input.definition);
      return {
        $all: {
          operator: true,
          ...(actions.some((action) => ADMIN_ONLY_ACTIONS.includes(action)) ? { admin: true } : {}),
        },
      };
    },
    resolve: (_root, { input }, { runtime, viewer }) =>
      runtime.executeWorkflow(
        {
          definition: input.definition ?? undefined,
          workflowId: input.workflowId ?? null,
          input: input.input ?? null,
          failPolicy: input.failPolicy ?? null,
        },
        actorOf(viewer),
      ),
  }),
  cancelWorkflowRun: t.field({
    type: WorkflowRunRef,
    description: "Cancels a run's tasks and unfinished steps; a finished run is returned unchanged.",
    args: { id: t.arg.id({ required: true }) },
    authScopes: { operator: true },
    resolve: async (_root, { id }, { runtime, viewer }) => {
      const run = await visibleRun(runtime, viewer, id);
      return runtime.cancelWorkflowRun(run.id, actorOf(viewer));
    },
  }),
}));

builder.subscriptionField('workflowRunEvents', (t) =>
  t.field({
    type: AgentEventRef,
    description:
      "A run's workflow events from its first (or after the cursor `after`), then live, none missed or repeated; completes after its final event.",
    args: {
      id: t.arg.id({ required: true }),
      after: t.arg.string({ required: false, description: 'An AgentEvent.cursor: resume after that event.' }),
    },
    authScopes: { viewer: true },
    subscribe: async (_root, args, { runtime, viewer }) => {
      const run = await visibleRun(runtime, viewer, args.id);
      const after = cursorArg(args.after);
      if (after) await runtime.getEventHistory({ after, first: 1 });
      return runtime.streamWorkflow(run.id, { after });
    },
    resolve: (event, _args, { loaders }) => {
      loaders.clearAll();
      return event;
    },
  }),
);

builder.subscriptionField('workflowRunUpdated', (t) =>
  t.field({
    type: WorkflowRunRef,
    description: 'The run now, then after each of its events; completes once it is final.',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { viewer: true },
    subscribe: async (_root, { id }, { runtime, viewer }) => {
      const run = await visibleRun(runtime, viewer, id);
      return runtime.watchWorkflowRun(run.id);
    },
    resolve: (run, _args, { loaders }) => {
      loaders.clearAll();
      return run;
    },
  }),
);
