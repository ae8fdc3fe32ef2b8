/** Tasks: one action run on one agent, queued, retried and cancellable. */
import {
  TASK_STATUSES,
  taskCursor,
  type Task,
  type TaskError,
  type TaskWait,
} from '../../domains/task/task.js';
import { actorOf, taskCreatorFilter } from '../../auth/roles.js';
import { badInput, notFound } from '../../errors.js';
import { taskId as taskIdSchema } from '../../validation.js';
import type { TokenUsage } from '../../domains/metric/metric.js';
import type { TaskCheckpoint } from '../../domains/task/checkpoints.js';
import { builder } from '../builder.js';
import { upperCaseEnum } from '../enums.js';
import { preloadExtension } from '../preload.js';
import {
  backwardConnectionArgs,
  connectionArgs,
  pageSizeArg,
  pagingArgs,
  toConnection,
} from '../pagination.js';
import { AgentRef, parseAgentId } from './agent.js';

export const TaskStatusEnum = upperCaseEnum(
  'TaskStatus',
  TASK_STATUSES,
  'QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED (a failed attempt with attempts left goes back to QUEUED). ' +
    'RUNNING → WAITING when the handler waits for children, a signal or a timer (no worker slot held); ' +
    'WAITING → RUNNING again once that has happened.',
);

/** A task id from a client: a UUID, checked before it reaches any query (BAD_USER_INPUT). */
export function parseTaskId(id: string, argument = 'id'): string {
  if (!taskIdSchema.safeParse(id).success) throw badInput(`"${argument}" is not a task id (a UUID)`);
  return id;
}

/** The scope of a read filtered by an optional task: that task, or (without one) every task. */
export const taskOrAllTasks = (taskId: string | null | undefined) =>
  taskId ? { task: parseTaskId(taskId, 'taskId') } : { allTasks: true };

/** Largest `first` of Agent.recentTasks (it multiplies by the number of agents). */
export const MAX_RECENT_TASKS = 100;
export const DEFAULT_RECENT_TASKS = 10;

const recentTasksFirst = (first: unknown) =>
  pageSizeArg(first as number | null | undefined, {
    defaultSize: DEFAULT_RECENT_TASKS,
    max: MAX_RECENT_TASKS,
  });

const TaskErrorRef = builder.objectRef<TaskError>('TaskError').implement({
  description: 'Why the last attempt failed.',
  fields: (t) => ({
    message: t.exposeString('message'),
    code: t.exposeString('code', { nullable: true }),
    retryable: t.exposeBoolean('retryable'),
  }),
});

/** Largest `first` of Task.children. */
export const MAX_CHILDREN = 1000;
const DEFAULT_CHILDREN = 100;

const TaskWaitRef = builder.objectRef<TaskWait>('TaskWait').implement({
  description:
    'What a WAITING task waits for. It runs again once every child and signal listed has arrived, or at `until`.',
  fields: (t) => ({
    childTaskIds: t.exposeIDList('childTaskIds', {
      description: 'Children (ctx.call, ctx.callAll) not final yet.',
    }),
    signals: t.exposeStringList('signals', {
      description: 'Signal names it waits for (ctx.waitForSignal); send them with signalTask.',
    }),
    until: t.expose('until', {
      type: 'DateTime',
      nullable: true,
      description: 'When its earliest timer fires (ctx.sleep, a signal timeout); null when none.',
    }),
    value: t.expose('value', {
      type: 'JSON',
      nullable: true,
      description:
        'What the wait shows whoever answers it: the value of a graph\'s interrupt() (answer with signalTask(id, "resume", value)) or of ctx.waitForSignal\'s `value` option; null when none.',
    }),
  }),
});

/** Largest `first` of Task.checkpoints. */
export const MAX_CHECKPOINTS = 100;
const DEFAULT_CHECKPOINTS = 20;

const TaskCheckpointRef = builder.objectRef<TaskCheckpoint>('TaskCheckpoint').implement({
  description:
    'A LangGraph checkpoint of a task that runs as a graph (CAS_RUNTIME=langgraph, or a graph action): the thread is the task.',
  fields: (t) => ({
    id: t.exposeString('id', { description: 'The checkpoint id (time-ordered).' }),
    parentId: t.exposeString('parentId', { nullable: true }),
    step: t.exposeInt('step', {
      nullable: true,
      description: 'The superstep: -1 for the input, then 0, 1, ...',
    }),
    source: t.exposeString('source', {
      nullable: true,
      description: 'What made it: input, loop, update or fork.',
    }),
    values: t.expose('values', {
      type: 'JSON',
      description: "The graph's state then (its channels, without LangGraph's internal ones).",
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const TokenUsageRef = builder.objectRef<TokenUsage>('TokenUsage').implement({
  description:
    'Tokens of model requests, as the provider reported them (metric points llm_prompt_tokens, llm_completion_tokens).',
  fields: (t) => ({
    promptTokens: t.exposeInt('promptTokens'),
    completionTokens: t.exposeInt('completionTokens'),
    totalTokens: t.int({ resolve: (usage) => usage.promptTokens + usage.completionTokens }),
    requests: t.exposeInt('requests', { description: 'Model requests that reported usage.' }),
  }),
});

export const TaskRef = builder.objectRef<Task>('Task');

TaskRef.implement({
  description: 'One run of an action on an agent.',
  // Wherever a task is returned, only to a caller who may see it (lists are filtered in SQL too).
  authScopes: (task) => ({ taskCreatedBy: task.userId }),
  fields: (t) => ({
    id: t.exposeID('id', { description: 'UUID.' }),
    agentId: t.exposeID('agentId'),
    createdBy: t.exposeID('userId', {
      nullable: true,
      description:
        'Who queued the task: a Supabase user id (JWT sub) or apiKey:<key id>; null when queued without authentication (local mode) or by the runtime.',
    }),
    agent: t.field({
      type: AgentRef,
      resolve: async (task, _args, { loaders }) => {
        const agent = await loaders.agents.load(task.agentId);
        if (!agent) throw new Error(`task ${task.id} refers to a missing agent ${task.agentId}`);
        return agent;
      },
    }),
    action: t.exposeString('action', { nullable: true }),
    input: t.field({ type: 'JSON', nullable: true, resolve: (task) => task.input ?? null }),
    status: t.expose('status', { type: TaskStatusEnum }),
    progress: t.exposeFloat('progress', { nullable: true, description: '0..1, as last reported.' }),
    progressMessage: t.exposeString('progressMessage', { nullable: true }),
    tokenUsage: t.field({
      type: TokenUsageRef,
      nullable: true,
      description: "Tokens this task's model requests used (all attempts); null when it made none.",
      resolve: (task, _args, { loaders }) => loaders.tokenUsage.load(task.id),
    }),
    output: t.exposeString('output', {
      nullable: true,
      description:
        'Text the handler streamed so far (e.g. a model answer), null when none; follow it live with the taskOutput subscription.',
    }),
    result: t.field({ type: 'JSON', nullable: true, resolve: (task) => task.result ?? null }),
    error: t.expose('error', { type: TaskErrorRef, nullable: true }),
    attempts: t.exposeInt('attempts'),
    maxAttempts: t.exposeInt('maxAttempts'),
    priority: t.exposeInt('priority'),
    timeoutMs: t.exposeInt('timeoutMs', { nullable: true }),
    idempotencyKey: t.exposeString('idempotencyKey', { nullable: true }),
    runAt: t.expose('runAt', { type: 'DateTime', description: 'Not started before this time.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    durationMs: t.exposeFloat('durationMs', { nullable: true }),
    cancelRequestedAt: t.expose('cancelRequestedAt', { type: 'DateTime', nullable: true }),
    waitingFor: t.expose('waitingFor', {
      type: TaskWaitRef,
      nullable: true,
      description: 'Set while WAITING.',
    }),
    depth: t.exposeInt('depth', {
      description: 'Calls between this task and the one a client queued (0); at most CAS_MAX_CALL_DEPTH.',
    }),
    parent: t.field({
      type: TaskRef,
      nullable: true,
      description: 'The task whose ctx.call queued this one.',
      resolve: (task, _args, { loaders }) => (task.parentId ? loaders.tasks.load(task.parentId) : null),
    }),
    checkpoints: t.field({
      type: [TaskCheckpointRef],
      description: `The newest LangGraph checkpoints of this task, newest first (first: 1-${MAX_CHECKPOINTS}, default ${DEFAULT_CHECKPOINTS}); empty for a task that did not run as a graph.`,
      args: { first: t.arg.int({ required: false }) },
      resolve: (task, { first }, { loaders }) =>
        loaders
          .checkpoints(pageSizeArg(first, { defaultSize: DEFAULT_CHECKPOINTS, max: MAX_CHECKPOINTS }))
          .load(task.id),
    }),
    children: t.field({
      type: [TaskRef],
      description: `Tasks this one queued with ctx.call / ctx.callAll, oldest first (first: 1-${MAX_CHILDREN}, default ${DEFAULT_CHILDREN}).`,
      args: { first: t.arg.int({ required: false }) },
      resolve: (task, { first }, { loaders }) =>
        loaders
          .children(pageSizeArg(first, { defaultSize: DEFAULT_CHILDREN, max: MAX_CHILDREN }))
          .load(task.id),
    }),
  }),
});

builder.objectField(AgentRef, 'recentTasks', (t) =>
  t.field({
    type: [TaskRef],
    description: `The agent's newest tasks, newest first (first: 1-${MAX_RECENT_TASKS}, default ${DEFAULT_RECENT_TASKS}).`,
    args: { first: t.arg.int({ required: false }) },
    // Query.agents loads every agent's list at once (preload.ts); `now` takes it from there.
    extensions: preloadExtension((args, loaders) => loaders.recentTasks(recentTasksFirst(args.first))),
    resolve: (agent, { first }, { loaders }) =>
      loaders.now(loaders.recentTasks(recentTasksFirst(first)), agent.id),
  }),
);

const TaskConnection = builder.connectionObject(
  {
    type: TaskRef,
    name: 'TaskConnection',
    fields: (t) => ({
      totalCount: t.int({
        description: 'Tasks matching the filter, on every page (not only this one).',
        resolve: (connection) => {
          if (!connection.totalCount) throw new Error('TaskConnection built without a totalCount');
          return connection.totalCount();
        },
      }),
    }),
  },
  { name: 'TaskEdge' },
);

builder.queryFields((t) => ({
  task: t.field({
    type: TaskRef,
    nullable: true,
    description: 'One task by id; null when there is none.',
    args: { id: t.arg.id({ required: true }) },
    authScopes: (_root, { id }) => ({ task: parseTaskId(id) }),
    resolve: (_root, { id }, { loaders }) => loaders.tasks.load(parseTaskId(id)),
  }),
  tasks: t.field({
    type: TaskConnection,
    description:
      'Tasks, newest first, optionally of one agent and in some statuses; only your own unless you hold tasks:all. Page forwards (older) with first/after, or backwards (newer) with last/before.',
    authScopes: { viewer: true },
    args: {
      agentId: t.arg.id({ required: false }),
      status: t.arg({ type: [TaskStatusEnum], required: false }),
      ...connectionArgs,
      ...backwardConnectionArgs,
    },
    resolve: async (_root, args, { runtime, viewer }) => {
      const filter = {
        agentId: args.agentId ? parseAgentId(args.agentId, 'agentId') : null,
        statuses: args.status ?? null,
        createdBy: taskCreatorFilter(viewer),
      };
      const page = await runtime.listTasks({ ...filter, ...pagingArgs(args) });
      return toConnection(page, taskCursor, () => runtime.countTasks(filter));
    },
  }),
}));

const ExecuteTaskInput = builder.inputType('ExecuteTaskInput', {
  fields: (t) => ({
    agentId: t.id({ required: true }),
    action: t.string({ required: true, description: 'One of the agent\'s `actions`, e.g. "ping".' }),
    input: t.field({ type: 'JSON', required: false, description: 'Handed to the action (at most 1 MB).' }),
    idempotencyKey: t.string({
      required: false,
      description: 'A key used before returns that task instead of queueing another.',
    }),
    maxAttempts: t.int({ required: false, description: '1-100, default 1.' }),
    timeoutMs: t.int({ required: false, description: 'Per-attempt time limit (1-86400000 ms).' }),
    wait: t.boolean({
      required: false,
      description:
        "Answer once the task is final instead of when it is queued; after the server's wait limit " +
        '(CAS_WAIT_TIMEOUT_MS, default 60 s) the answer is the task as it is then, still QUEUED or RUNNING.',
    }),
    priority: t.int({ required: false, description: '-1000..1000, higher first; default 0.' }),
    runAt: t.field({
      type: 'DateTime',
      required: false,
      description: 'Do not start before this time (1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z).',
    }),
    retryDelayMs: t.int({
      required: false,
      description: 'Base of the exponential backoff between attempts.',
    }),
  }),
});

builder.mutationFields((t) => ({
  executeTask: t.field({
    type: TaskRef,
    description: 'Queues a task (or, with wait: true, runs it to a final status) on an agent.',
    args: { input: t.arg({ type: ExecuteTaskInput, required: true }) },
    // Operators run actions; the diagnostics wait and fail are for admins (ADMIN_ONLY_ACTIONS).
    authScopes: (_root, { input }) => ({ $all: { operator: true, action: input.action } }),
    resolve: (_root, { input }, { runtime, viewer, signal }) =>
      runtime.executeTask({ ...input, ...actorOf(viewer) }, { signal }),
  }),
  signalTask: t.field({
    type: TaskRef,
    description:
      'Sends a signal to a task: its oldest ctx.waitForSignal(name) receives `payload` (a signal sent before the wait is kept for it). CONFLICT for a finished task.',
    args: {
      id: t.arg.id({ required: true }),
      name: t.arg.string({ required: true, description: '1-100 characters, e.g. "approval".' }),
      payload: t.arg({
        type: 'JSON',
        required: false,
        description: 'Handed to the waiting handler (at most 1 MB).',
      }),
    },
    authScopes: (_root, { id }) => ({ $all: { operator: true, task: parseTaskId(id) } }),
    resolve: (_root, { id, name, payload }, { runtime, viewer }) =>
      runtime.signalTask(parseTaskId(id), name, payload ?? null, actorOf(viewer)),
  }),
  cancelTask: t.field({
    type: TaskRef,
    description:
      'Cancels a queued or waiting task at once, or asks the worker running it to stop; its unfinished children are cancelled with it.',
    args: { id: t.arg.id({ required: true }) },
    authScopes: (_root, { id }) => ({ $all: { operator: true, task: parseTaskId(id) } }),
    resolve: (_root, { id }, { runtime, viewer }) => runtime.cancelTask(parseTaskId(id), actorOf(viewer)),
  }),
}));

builder.subscriptionField('taskUpdated', (t) =>
  t.field({
    type: TaskRef,
    description: 'The task now, then after each change; completes once it reaches a final status.',
    args: {
      id: t.arg.id({ required: true }),
      throttleMs: t.arg.int({
        required: false,
        description:
          'Coalesce progress: at most one update per this many ms (0..60000). The final status always arrives.',
      }),
    },
    authScopes: (_root, { id }) => ({ task: parseTaskId(id) }),
    subscribe: async (_root, { id, throttleMs }, { runtime }) => {
      const [task] = await runtime.getTasks([parseTaskId(id)]);
      // Refused up front (NOT_FOUND) rather than as an error in the middle of the stream.
      if (!task) throw notFound('task', id);
      return runtime.watchTask(task.id, { throttleMs });
    },
    resolve: (task, _args, { loaders }) => {
      loaders.clearAll();
      return task;
    },
  }),
);
