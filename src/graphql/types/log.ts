/** Logs: structured entries written by agents while they run tasks. */
import { LOG_LEVELS, logCursor, type LogEntry } from '../../domains/log/log.js';
import { SHARE_LIVE_ONLY } from '../sharing.js';
import { builder } from '../builder.js';
import { upperCaseEnum } from '../enums.js';
import {
  backwardConnectionArgs,
  connectionArgs,
  cursorArg,
  pagingArgs,
  toConnection,
} from '../pagination.js';
import { parseAgentId } from './agent.js';
import { parseTaskId, taskOrAllTasks } from './task.js';

export const LogLevelEnum = upperCaseEnum('LogLevel', LOG_LEVELS, 'Severity of a log entry.');

export const LogEntryRef = builder.objectRef<LogEntry>('LogEntry').implement({
  description: 'One structured log entry.',
  fields: (t) => ({
    id: t.id({ resolve: (entry) => String(entry.id) }),
    cursor: t.string({
      description:
        'Position in the log: the `after` of the logs connection and of the logAdded subscription.',
      resolve: (entry) => logCursor(entry),
    }),
    agentId: t.exposeID('agentId', { nullable: true }),
    taskId: t.exposeID('taskId', { nullable: true }),
    level: t.expose('level', { type: LogLevelEnum }),
    message: t.exposeString('message'),
    context: t.expose('context', { type: 'JSON', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const LogEntryConnection = builder.connectionObject(
  {
    type: LogEntryRef,
    name: 'LogEntryConnection',
    fields: (t) => ({
      totalCount: t.int({
        description:
          'Entries matching the filter, on every page (not only this one); counted when asked for.',
        resolve: (connection) => {
          if (!connection.totalCount) throw new Error('LogEntryConnection built without a totalCount');
          return connection.totalCount();
        },
      }),
    }),
  },
  { name: 'LogEntryEdge' },
);

builder.queryField('logs', (t) =>
  t.field({
    type: LogEntryConnection,
    description:
      'Log entries, oldest first, filtered by agent, task, levels and time range [from, to). Page forwards with first/after, or backwards from the newest with last/before.',
    args: {
      agentId: t.arg.id({ required: false }),
      taskId: t.arg.id({ required: false }),
      levels: t.arg({ type: [LogLevelEnum], required: false }),
      from: t.arg({ type: 'DateTime', required: false }),
      to: t.arg({ type: 'DateTime', required: false }),
      ...connectionArgs,
      ...backwardConnectionArgs,
    },
    authScopes: (_root, args) => taskOrAllTasks(args.taskId),
    resolve: async (_root, args, { runtime }) => {
      const filter = {
        agentId: args.agentId ? parseAgentId(args.agentId, 'agentId') : null,
        taskId: args.taskId ? parseTaskId(args.taskId, 'taskId') : null,
        levels: args.levels ?? null,
        from: args.from ?? null,
        to: args.to ?? null,
      };
      const page = await runtime.getLogs({ ...filter, ...pagingArgs(args) });
      return toConnection(page, logCursor, () => runtime.countLogs(filter));
    },
  }),
);

builder.queryField('logHead', (t) =>
  t.string({
    description:
      'Cursor of the newest log entry now. Pass it as `after` (logAdded, the logs connection) to start from this moment with nothing missed in between.',
    authScopes: { allTasks: true },
    resolve: (_root, _args, { runtime }) => runtime.getLogHead(),
  }),
);

builder.subscriptionField('logAdded', (t) =>
  t.field({
    type: LogEntryRef,
    description:
      'Log entries as they are written, filtered by agent and levels. With `after` (a LogEntry.cursor, or logHead), first every matching entry after it, then live, with none missed or repeated; without it, live only. Never completes.',
    args: {
      agentId: t.arg.id({ required: false }),
      levels: t.arg({ type: [LogLevelEnum], required: false }),
      after: t.arg.string({ required: false, description: 'A LogEntry.cursor: resume after that entry.' }),
    },
    authScopes: { allTasks: true },
    // Subscribers without `after` share one execution per event (src/server/shared-subscriptions.ts).
    extensions: SHARE_LIVE_ONLY,
    subscribe: async (_root, args, { runtime }) => {
      const after = cursorArg(args.after);
      // A malformed, future or pruned cursor is refused up front, not in the middle of the stream.
      if (after) await runtime.getLogs({ after, first: 1 });
      return runtime.subscribeLogs({
        agentId: args.agentId ? parseAgentId(args.agentId, 'agentId') : null,
        levels: args.levels ?? null,
        after,
      });
    },
    resolve: (entry, _args, { loaders }) => {
      loaders.clearAll();
      return entry;
    },
  }),
);
