/** Logs: structured entries written by agents while they run tasks. */
import { LOG_LEVELS, logCursor, type LogEntry } from '../../domains/log/log.js';
import { builder } from '../builder.js';
import { upperCaseEnum } from '../enums.js';
import { connectionArgs, cursorArg, pageSizeArg, toConnection } from '../pagination.js';
import { parseAgentId } from './agent.js';
import { parseTaskId, taskOrAllTasks } from './task.js';

export const LogLevelEnum = upperCaseEnum('LogLevel', LOG_LEVELS, 'Severity of a log entry.');

export const LogEntryRef = builder.objectRef<LogEntry>('LogEntry').implement({
  description: 'One structured log entry.',
  fields: (t) => ({
    id: t.id({ resolve: (entry) => String(entry.id) }),
    agentId: t.exposeID('agentId', { nullable: true }),
    taskId: t.exposeID('taskId', { nullable: true }),
    level: t.expose('level', { type: LogLevelEnum }),
    message: t.exposeString('message'),
    context: t.expose('context', { type: 'JSON', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const LogEntryConnection = builder.connectionObject(
  { type: LogEntryRef, name: 'LogEntryConnection' },
  { name: 'LogEntryEdge' },
);

builder.queryField('logs', (t) =>
  t.field({
    type: LogEntryConnection,
    description: 'Log entries, oldest first, filtered by agent, task, levels and time range [from, to].',
    args: {
      agentId: t.arg.id({ required: false }),
      taskId: t.arg.id({ required: false }),
      levels: t.arg({ type: [LogLevelEnum], required: false }),
      from: t.arg({ type: 'DateTime', required: false }),
      to: t.arg({ type: 'DateTime', required: false }),
      ...connectionArgs,
    },
    authScopes: (_root, args) => taskOrAllTasks(args.taskId),
    resolve: async (_root, args, { runtime }) => {
      const page = await runtime.getLogs({
        agentId: args.agentId ? parseAgentId(args.agentId, 'agentId') : null,
        taskId: args.taskId ? parseTaskId(args.taskId, 'taskId') : null,
        levels: args.levels ?? null,
        from: args.from ?? null,
        to: args.to ?? null,
        first: pageSizeArg(args.first),
        after: cursorArg(args.after),
      });
      return toConnection(page, logCursor);
    },
  }),
);

builder.subscriptionField('logAdded', (t) =>
  t.field({
    type: LogEntryRef,
    description: 'Log entries as they are written, filtered by agent and levels.',
    args: {
      agentId: t.arg.id({ required: false }),
      levels: t.arg({ type: [LogLevelEnum], required: false }),
    },
    authScopes: { allTasks: true },
    subscribe: (_root, args, { runtime }) =>
      runtime.subscribeLogs({
        agentId: args.agentId ? parseAgentId(args.agentId, 'agentId') : null,
        levels: args.levels ?? null,
      }),
    resolve: (entry, _args, { loaders }) => {
      loaders.clearAll();
      return entry;
    },
  }),
);
