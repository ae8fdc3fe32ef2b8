import { z } from 'zod';
import { json, type SqlFunctions } from '../../db/sql-functions.js';
import { toDate, toDateOrNull, toNumber, toNumberOrNull } from '../../db/rows.js';
import { badInput } from '../../errors.js';
import { agentId, jsonValue, taskId } from '../../validation.js';
import { decodeCursor, encodeCursor, pageSize, toPage, type Page } from '../pagination.js';
import { MAX_TIMEOUT_MS } from '../task/task.js';

/**
 * Multi-agent workflows: a DAG of steps, each an agent's action, run by the SQL functions of
 * supabase/migrations/20261203000400_cas_workflows.sql. Definitions are checked here, before
 * anything is written; the database resolves `$ref`s and queues each step when its last dependency
 * succeeds.
 */

export const WORKFLOW_RUN_STATUSES = ['running', 'succeeded', 'failed', 'cancelled'] as const;
export type WorkflowRunStatus = (typeof WORKFLOW_RUN_STATUSES)[number];
export const WORKFLOW_STEP_STATUSES = [
  'pending',
  'running',
  'succeeded',
  'failed',
  'skipped',
  'cancelled',
] as const;
export type WorkflowStepStatus = (typeof WORKFLOW_STEP_STATUSES)[number];
export const FAIL_POLICIES = ['fail_fast', 'continue'] as const;
export type FailPolicy = (typeof FAIL_POLICIES)[number];

/** Most steps one definition may have. */
export const MAX_WORKFLOW_STEPS = 200;
/** `$ref` roots that are not step ids: the run's input and a map step's item. */
const RESERVED_ROOTS = ['input', 'item'] as const;

/** A step's id: what `dependsOn` and `$ref`s name. */
export const stepIdSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only')
  .refine((id) => !(RESERVED_ROOTS as readonly string[]).includes(id), 'is reserved ("input", "item")');

const refSchema = z.string().min(1).max(500);

export const workflowStepSchema = z.object({
  id: stepIdSchema,
  agentId,
  action: z.string().min(1).max(100),
  input: jsonValue.optional(),
  dependsOn: z.array(stepIdSchema).max(MAX_WORKFLOW_STEPS).optional(),
  /** A `$ref` to an array: one task per element (`{"$ref": "item"}` in input is the element). */
  map: refSchema.optional(),
  maxAttempts: z.number().int().min(1).max(100).optional(),
  timeoutMs: z.number().int().min(1).max(MAX_TIMEOUT_MS).optional(),
});
export type WorkflowStepDefinition = z.output<typeof workflowStepSchema>;

export const workflowDefinitionSchema = z.object({
  steps: z.array(workflowStepSchema).max(MAX_WORKFLOW_STEPS),
});
export type WorkflowDefinition = z.output<typeof workflowDefinitionSchema>;

export const executeWorkflowInput = z
  .object({
    /** A definition given with the request... */
    definition: z.unknown().optional(),
    /** ...or the id of one registered in code (defineWorkflow): exactly one of the two. */
    workflowId: z.string().min(1).max(100).nullish(),
    input: jsonValue.optional(),
    failPolicy: z.enum(FAIL_POLICIES).nullish(),
  })
  .refine((request) => (request.definition == null) !== (request.workflowId == null), {
    message: 'give either definition or workflowId',
    path: ['definition'],
  });
export type ExecuteWorkflowInput = z.input<typeof executeWorkflowInput>;

export const workflowRunFilter = z.object({
  status: z.enum(WORKFLOW_RUN_STATUSES).nullish(),
  /** Only runs this user started (a viewer without tasks:all); absent or null: everyone's. */
  createdBy: z.string().max(200).nullish(),
  after: z.string().max(200).nullish(),
  first: pageSize,
});
export type WorkflowRunFilter = z.input<typeof workflowRunFilter>;

export const workflowRunId = taskId;

export interface WorkflowRun {
  id: string;
  seq: number;
  status: WorkflowRunStatus;
  failPolicy: FailPolicy;
  definition: unknown;
  input: unknown;
  stepsTotal: number;
  stepsDone: number;
  /** Share of steps that reached a final status, 0..1. */
  progress: number;
  result: unknown;
  error: Record<string, unknown> | null;
  userId: string | null;
  createdAt: Date;
  finishedAt: Date | null;
  updatedAt: Date;
}

export interface WorkflowStep {
  runId: string;
  id: string;
  position: number;
  agentId: string;
  action: string;
  dependsOn: string[];
  map: string | null;
  status: WorkflowStepStatus;
  /** The step's task; null for a map step (one task per item) and before it is queued. */
  taskId: string | null;
  itemsTotal: number | null;
  itemsDone: number;
  result: unknown;
  error: Record<string, unknown> | null;
}

export const isFinalRun = (status: WorkflowRunStatus) => status !== 'running';

/** What a definition's step may look up at: the roots of a `$ref` in its input or map. */
function refRoot(ref: string): string {
  return ref.split('.')[0] ?? '';
}

/** Every `$ref` string in a template (objects whose only key is "$ref"). */
export function refsIn(template: unknown): string[] {
  if (Array.isArray(template)) return template.flatMap(refsIn);
  if (template && typeof template === 'object') {
    const entries = Object.entries(template);
    if (entries.length === 1 && entries[0]![0] === '$ref' && typeof entries[0]![1] === 'string') {
      return [entries[0]![1]];
    }
    return entries.flatMap(([, value]) => refsIn(value));
  }
  return [];
}

const refused = (message: string, stepId: string | null, extra: Record<string, unknown> = {}) =>
  badInput(message, { ...(stepId ? { stepId } : {}), ...extra });

/** Upstream steps of each step (its dependencies and theirs). Assumes no cycle. */
function ancestorsOf(steps: readonly WorkflowStepDefinition[]): Map<string, Set<string>> {
  const byId = new Map(steps.map((step) => [step.id, step]));
  const memo = new Map<string, Set<string>>();
  const visit = (id: string): Set<string> => {
    const known = memo.get(id);
    if (known) return known;
    const result = new Set<string>();
    for (const dep of byId.get(id)?.dependsOn ?? []) {
      result.add(dep);
      for (const upstream of visit(dep)) result.add(upstream);
    }
    memo.set(id, result);
    return result;
  };
  for (const step of steps) visit(step.id);
  return memo;
}

/** A step on a cycle, if there is one (depth-first search). */
function stepOnCycle(steps: readonly WorkflowStepDefinition[]): string | null {
  const byId = new Map(steps.map((step) => [step.id, step]));
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string): string | null => {
    if (state.get(id) === 'done') return null;
    if (state.get(id) === 'visiting') return id;
    state.set(id, 'visiting');
    for (const dep of byId.get(id)?.dependsOn ?? []) {
      const found = visit(dep);
      if (found) return found;
    }
    state.set(id, 'done');
    return null;
  };
  for (const step of steps) {
    const found = visit(step.id);
    if (found) return found;
  }
  return null;
}

/**
 * Parses and checks a definition; every refusal is BAD_USER_INPUT naming the step (details.stepId).
 * `hasAction(agentId, action)` says whether an agent accepts an action (the runtime's registry).
 */
export function validateDefinition(
  raw: unknown,
  hasAction: (agentId: string, action: string) => boolean,
): WorkflowDefinition {
  const parsed = workflowDefinitionSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const [, index] = issue.path;
    const stepId =
      typeof index === 'number' ? ((raw as { steps?: { id?: unknown }[] }).steps?.[index]?.id ?? null) : null;
    throw refused(
      `invalid workflow definition at ${issue.path.join('.') || '(root)'}: ${issue.message}`,
      typeof stepId === 'string' ? stepId : null,
      { path: issue.path.map(String) },
    );
  }
  const { steps } = parsed.data;
  if (steps.length === 0) throw refused('a workflow needs at least one step', null);
  const ids = new Set<string>();
  for (const step of steps) {
    if (ids.has(step.id)) throw refused(`step id "${step.id}" is used twice`, step.id);
    ids.add(step.id);
  }
  for (const step of steps) {
    if (!hasAction(step.agentId, step.action)) {
      throw refused(`step "${step.id}": agent "${step.agentId}" has no action "${step.action}"`, step.id);
    }
    for (const dep of step.dependsOn ?? []) {
      if (!ids.has(dep)) throw refused(`step "${step.id}" depends on unknown step "${dep}"`, step.id);
      if (dep === step.id) throw refused(`step "${step.id}" depends on itself`, step.id);
    }
  }
  const cyclic = stepOnCycle(steps);
  if (cyclic) throw refused(`the dependencies form a cycle through step "${cyclic}"`, cyclic);
  const ancestors = ancestorsOf(steps);
  for (const step of steps) {
    const upstream = ancestors.get(step.id)!;
    const checkRef = (ref: string, allowItem: boolean) => {
      const root = refRoot(ref);
      if (root === 'input') return;
      if (root === 'item') {
        if (allowItem && step.map !== undefined) return;
        throw refused(`step "${step.id}": "$ref": "${ref}" uses "item" outside a map step's input`, step.id);
      }
      if (!upstream.has(root)) {
        throw refused(
          `step "${step.id}": "$ref": "${ref}" names "${root}", which is not a step it depends on (directly or not)`,
          step.id,
        );
      }
    };
    for (const ref of refsIn(step.input)) checkRef(ref, true);
    if (step.map !== undefined) checkRef(step.map, false);
  }
  return parsed.data;
}

/** Refuses a step whose agent is not registered (BAD_USER_INPUT naming the step). */
export function checkAgentsKnown(definition: WorkflowDefinition, known: ReadonlySet<string>): void {
  const step = definition.steps.find((candidate) => !known.has(candidate.agentId));
  if (step) throw refused(`step "${step.id}": agent "${step.agentId}" is not registered`, step.id);
}

interface WorkflowRunRow {
  id: string;
  seq: unknown;
  definition: unknown;
  input: unknown;
  status: WorkflowRunStatus;
  fail_policy: FailPolicy;
  steps_total: unknown;
  steps_done: unknown;
  result: unknown;
  error: Record<string, unknown> | null;
  user_id: string | null;
  created_at: unknown;
  finished_at: unknown;
  updated_at: unknown;
}

interface WorkflowStepRow {
  run_id: string;
  step_id: string;
  position: unknown;
  agent_id: string;
  action: string;
  map_ref: string | null;
  depends_on: string[] | null;
  status: WorkflowStepStatus;
  task_id: string | null;
  items_total: unknown;
  items_done: unknown;
  result: unknown;
  error: Record<string, unknown> | null;
}

const runFromRow = (row: WorkflowRunRow): WorkflowRun => {
  const stepsTotal = toNumber(row.steps_total);
  const stepsDone = toNumber(row.steps_done);
  return {
    id: row.id,
    seq: toNumber(row.seq),
    status: row.status,
    failPolicy: row.fail_policy,
    definition: row.definition,
    input: row.input,
    stepsTotal,
    stepsDone,
    progress: stepsTotal === 0 ? 0 : stepsDone / stepsTotal,
    result: row.result,
    error: row.error,
    userId: row.user_id,
    createdAt: toDate(row.created_at),
    finishedAt: toDateOrNull(row.finished_at),
    updatedAt: toDate(row.updated_at),
  };
};

const stepFromRow = (row: WorkflowStepRow): WorkflowStep => ({
  runId: row.run_id,
  id: row.step_id,
  position: toNumber(row.position),
  agentId: row.agent_id,
  action: row.action,
  dependsOn: row.depends_on ?? [],
  map: row.map_ref,
  status: row.status,
  taskId: row.task_id,
  itemsTotal: toNumberOrNull(row.items_total),
  itemsDone: toNumber(row.items_done),
  result: row.result,
  error: row.error,
});

const CURSOR_KIND = 'workflow-run';
export const workflowRunCursor = (run: Pick<WorkflowRun, 'seq'>) => encodeCursor(CURSOR_KIND, run.seq);

export function workflowStore(sql: SqlFunctions) {
  return {
    async start(
      definition: WorkflowDefinition,
      input: unknown,
      failPolicy: FailPolicy,
      userId: string | null,
      /** W3C traceparent of the request: the run's step tasks join its trace. */
      traceParent: string | null = null,
    ): Promise<WorkflowRun> {
      const [row] = await sql.rows<WorkflowRunRow>('cas_start_workflow', {
        p_definition: json(definition),
        p_input: json(input ?? null),
        p_fail_policy: failPolicy,
        p_user_id: userId,
        p_trace_parent: traceParent,
      });
      return runFromRow(row!);
    },
    async cancel(id: string, userId: string | null): Promise<WorkflowRun> {
      const [row] = await sql.rows<WorkflowRunRow>('cas_cancel_workflow_run', {
        p_id: id,
        p_user_id: userId,
      });
      return runFromRow(row!);
    },
    async get(ids: readonly string[]): Promise<WorkflowRun[]> {
      if (ids.length === 0) return [];
      const rows = await sql.rows<WorkflowRunRow>('cas_get_workflow_runs', { p_ids: [...ids] });
      return rows.map(runFromRow);
    },
    async page(filter: z.output<typeof workflowRunFilter>): Promise<Page<WorkflowRun>> {
      const rows = await sql.rows<WorkflowRunRow>('cas_list_workflow_runs', {
        p_status: filter.status ?? null,
        p_after: filter.after ? decodeCursor(CURSOR_KIND, filter.after) : null,
        p_limit: filter.first + 1,
        p_created_by: filter.createdBy ?? null,
      });
      return toPage(rows.map(runFromRow), filter.first, workflowRunCursor);
    },
    async steps(runIds: readonly string[]): Promise<WorkflowStep[]> {
      if (runIds.length === 0) return [];
      const rows = await sql.rows<WorkflowStepRow>('cas_workflow_steps_of', { p_run_ids: [...runIds] });
      return rows.map(stepFromRow);
    },
  };
}
export type WorkflowStore = ReturnType<typeof workflowStore>;
