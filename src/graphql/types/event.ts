/** Events: the ordered audit log of every state change. */
import { eventCursor, type AgentEvent, type EventFilter } from '../../domains/event/event.js';
import { notFound } from '../../errors.js';
import type { AgentRuntime } from '../../runtime/agent-runtime.js';
import { SHARE_LIVE_ONLY } from '../sharing.js';
import { builder } from '../builder.js';
import {
  backwardConnectionArgs,
  connectionArgs,
  cursorArg,
  pagingArgs,
  refuseExpiredCursor,
  toConnection,
} from '../pagination.js';
import { parseAgentId } from './agent.js';
import { parseTaskId, taskOrAllTasks } from './task.js';

export const AgentEventRef = builder.objectRef<AgentEvent>('AgentEvent').implement({
  description: 'One entry of the event log.',
  fields: (t) => ({
    id: t.exposeID('id'),
    cursor: t.string({
      description:
        'Position in the log: the `after` of the events connection and of the taskEvents and events subscriptions.',
      resolve: (event) => eventCursor(event),
    }),
    type: t.exposeString('type', { description: 'e.g. task_queued, task_completed, state_updated.' }),
    agentId: t.exposeID('agentId', { nullable: true }),
    taskId: t.exposeID('taskId', { nullable: true }),
    workflowRunId: t.exposeID('workflowRunId', {
      nullable: true,
      description: 'The workflow run a workflow_* event is about.',
    }),
    userId: t.exposeID('userId', { nullable: true }),
    payload: t.expose('payload', { type: 'JSON', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const AgentEventConnection = builder.connectionObject(
  {
    type: AgentEventRef,
    name: 'AgentEventConnection',
    fields: (t) => ({
      totalCount: t.int({
        description: 'Events matching the filter, on every page (not only this one); counted when asked for.',
        resolve: (connection) => {
          if (!connection.totalCount) throw new Error('AgentEventConnection built without a totalCount');
          return connection.totalCount();
        },
      }),
    }),
  },
  { name: 'AgentEventEdge' },
);

builder.queryField('events', (t) =>
  t.field({
    type: AgentEventConnection,
    description:
      'The event log in order (oldest first), filtered by agent, task and types. Page forwards with first/after, or backwards from the newest with last/before.',
    args: {
      agentId: t.arg.id({ required: false }),
      taskId: t.arg.id({ required: false }),
      types: t.arg.stringList({ required: false }),
      ...connectionArgs,
      ...backwardConnectionArgs,
    },
    authScopes: (_root, args) => taskOrAllTasks(args.taskId),
    resolve: async (_root, args, { runtime }) => {
      const filter = {
        agentId: args.agentId ? parseAgentId(args.agentId, 'agentId') : null,
        taskId: args.taskId ? parseTaskId(args.taskId, 'taskId') : null,
        // Strings here; the runtime checks each against the known event types (BAD_USER_INPUT).
        types: (args.types ?? null) as EventFilter['types'],
      };
      const page = await runtime.getEventHistory({ ...filter, ...pagingArgs(args) });
      return toConnection(page, eventCursor, () => runtime.countEvents(filter));
    },
  }),
);

builder.queryField('eventHead', (t) =>
  t.string({
    description:
      'Cursor of the newest event now. Pass it as `after` (events subscription, taskEvents, agentStatusChanged, the events connection) to start from this moment with nothing missed in between.',
    authScopes: { viewer: true },
    resolve: (_root, _args, { runtime }) => runtime.getEventHead(),
  }),
);

/**
 * Where a task's stream starts: its id and resume cursor, checked up front (NOT_FOUND for an unknown
 * task, CURSOR_EXPIRED for a pruned cursor) rather than as an error in the middle of the stream.
 */
async function taskStreamStart(
  runtime: AgentRuntime,
  args: { taskId: string; after?: string | null },
): Promise<{ taskId: string; after: string | null }> {
  const taskId = parseTaskId(args.taskId, 'taskId');
  const [task] = await runtime.getTasks([taskId]);
  if (!task) throw notFound('task', taskId);
  const after = cursorArg(args.after);
  await refuseExpiredCursor(runtime, after);
  return { taskId, after };
}

builder.subscriptionField('taskEvents', (t) =>
  t.field({
    type: AgentEventRef,
    description:
      "A task's events from its first (or after the cursor `after`), then live; completes after the final event.",
    args: {
      taskId: t.arg.id({ required: true }),
      after: t.arg.string({ required: false, description: 'An AgentEvent.cursor: resume after that event.' }),
      throttleMs: t.arg.int({
        required: false,
        description:
          'Coalesce task_progress events: at most one per this many ms (0..60000). Other events all arrive.',
      }),
    },
    authScopes: (_root, args) => ({ task: parseTaskId(args.taskId, 'taskId') }),
    subscribe: async (_root, args, { runtime }) => {
      const { taskId, after } = await taskStreamStart(runtime, args);
      return runtime.streamTask(taskId, { after, throttleMs: args.throttleMs });
    },
    resolve: (event, _args, { loaders }) => {
      // One context serves the whole subscription: forget what earlier events loaded.
      loaders.clearAll();
      return event;
    },
  }),
);

builder.subscriptionField('events', (t) =>
  t.field({
    type: AgentEventRef,
    description:
      'Events matching the filters as they are written. With `after` (an AgentEvent.cursor), first every matching event after it, then live, with none missed or repeated; without it, live only.',
    args: {
      agentId: t.arg.id({ required: false }),
      types: t.arg.stringList({ required: false }),
      after: t.arg.string({ required: false }),
    },
    authScopes: { allTasks: true },
    // Subscribers without `after` share one execution per event (src/server/shared-subscriptions.ts).
    extensions: SHARE_LIVE_ONLY,
    subscribe: async (_root, args, { runtime }) => {
      const agentId = args.agentId ? parseAgentId(args.agentId, 'agentId') : null;
      if (agentId) await runtime.getAgentStatus(agentId);
      const after = cursorArg(args.after);
      await refuseExpiredCursor(runtime, after);
      return runtime.subscribeEvents({
        agentId,
        // Strings here; the runtime checks each against the known event types (BAD_USER_INPUT).
        types: (args.types ?? null) as EventFilter['types'],
        after,
      });
    },
    resolve: (event, _args, { loaders }) => {
      loaders.clearAll();
      return event;
    },
  }),
);

interface TaskOutputPayload {
  offset?: number;
  text?: string;
  attempt?: number;
}

const TaskOutputDeltaRef = builder.objectRef<AgentEvent>('TaskOutputDelta').implement({
  description:
    "A piece of a task's streamed output. Apply it as `output = output.slice(0, offset) + text` (offset in characters, i.e. Unicode code points): usually offset is the current length (an append); a retried attempt that answers differently rewrites from where it differs.",
  fields: (t) => ({
    cursor: t.string({
      description: 'Resume after this delta: the `after` of taskOutput (and of taskEvents).',
      resolve: (event) => eventCursor(event),
    }),
    offset: t.int({ resolve: (event) => (event.payload as TaskOutputPayload | null)?.offset ?? 0 }),
    text: t.string({ resolve: (event) => (event.payload as TaskOutputPayload | null)?.text ?? '' }),
    attempt: t.int({ resolve: (event) => (event.payload as TaskOutputPayload | null)?.attempt ?? 1 }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.subscriptionField('taskOutput', (t) =>
  t.field({
    type: TaskOutputDeltaRef,
    description:
      "A task's output deltas from the first (or after the cursor `after`), then live as the handler streams; completes after the task's final event. Task.output holds the text so far.",
    args: {
      taskId: t.arg.id({ required: true }),
      after: t.arg.string({
        required: false,
        description: 'A TaskOutputDelta.cursor: resume after that delta.',
      }),
    },
    authScopes: (_root, args) => ({ task: parseTaskId(args.taskId, 'taskId') }),
    subscribe: async (_root, args, { runtime }) => {
      const { taskId, after } = await taskStreamStart(runtime, args);
      return runtime.streamTaskOutput(taskId, { after });
    },
    resolve: (event) => event,
  }),
);
