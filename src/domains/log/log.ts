import { z } from 'zod';
import { json, type SqlFunctions } from '../../db/sql-functions.js';
import { toDate, toNumber } from '../../db/rows.js';
import { agentId, dateTime, replaceNulCharacters, taskId } from '../../validation.js';
import {
  backwardPageSize,
  cursorPastHead,
  decodeCursor,
  encodeCursor,
  pageSize,
  toPage,
  toPageBefore,
  type Page,
} from '../pagination.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogEntry {
  id: number;
  agentId: string | null;
  taskId: string | null;
  level: LogLevel;
  message: string;
  context: Record<string, unknown>;
  createdAt: Date;
}

export interface NewLogEntry {
  agentId: string | null;
  taskId: string | null;
  level: LogLevel;
  message: string;
  context?: Record<string, unknown>;
}

export const MAX_LOG_MESSAGE_LENGTH = 10_000;

export const logFilter = z
  .object({
    agentId: agentId.nullish(),
    taskId: taskId.nullish(),
    levels: z.array(z.enum(LOG_LEVELS)).max(LOG_LEVELS.length).nullish(),
    from: dateTime.nullish(),
    to: dateTime.nullish(),
    after: z.string().max(200).nullish(),
    first: pageSize,
    newestFirst: z.boolean().nullish(),
    /** Backward paging: the `last` entries before `before` (the newest when absent), in log order. */
    last: backwardPageSize,
    before: z.string().max(200).nullish(),
  })
  .refine((filter) => !filter.from || !filter.to || filter.from <= filter.to, {
    message: '"from" must not be later than "to"',
    path: ['from'],
  });
export type LogFilter = z.input<typeof logFilter>;

/** A live log stream: `after` (a LogEntry.cursor) replays from there first; without it, live only. */
export const logSubscriptionFilter = z.object({
  agentId: agentId.nullish(),
  levels: z.array(z.enum(LOG_LEVELS)).max(LOG_LEVELS.length).nullish(),
  after: z.string().max(200).nullish(),
});

const CURSOR_KIND = 'log';
export const logCursor = (entry: Pick<LogEntry, 'id'>) => encodeCursor(CURSOR_KIND, entry.id);
export const logIdFromCursor = (cursor: string) => decodeCursor(CURSOR_KIND, cursor);

interface LogRow {
  id: unknown;
  agent_id: string | null;
  task_id: string | null;
  level: LogLevel;
  message: string;
  context: Record<string, unknown> | null;
  created_at: unknown;
}

const logFromRow = (row: LogRow): LogEntry => ({
  id: toNumber(row.id),
  agentId: row.agent_id,
  taskId: row.task_id,
  level: row.level,
  message: row.message,
  context: row.context ?? {},
  createdAt: toDate(row.created_at),
});

export function logStore(sql: SqlFunctions) {
  return {
    /** Writes a batch in one statement, in order. */
    async write(entries: readonly NewLogEntry[]): Promise<LogEntry[]> {
      if (entries.length === 0) return [];
      const rows = await sql.rows<LogRow>('cas_write_logs', {
        p_entries: json(replaceNulCharacters(entries)),
      });
      return rows.map(logFromRow);
    },
    /** Entries after `afterId`, oldest first (the log tail's read). */
    async list(filter: {
      agentId?: string | null;
      levels?: readonly LogLevel[] | null;
      afterId: number;
      limit: number;
    }): Promise<LogEntry[]> {
      const rows = await sql.rows<LogRow>('cas_list_logs', {
        p_agent_id: filter.agentId ?? null,
        p_levels: filter.levels ? [...filter.levels] : null,
        p_after_id: filter.afterId,
        p_limit: filter.limit,
      });
      return rows.map(logFromRow);
    },
    /** Id of the newest entry. */
    head: () => sql.value<unknown>('cas_log_head', {}).then(toNumber),
    /**
     * The position of an `after` cursor for a live stream: refused when past the newest entry
     * (BAD_USER_INPUT) or older than what retention kept (CURSOR_EXPIRED).
     */
    async positionOf(cursor: string): Promise<number> {
      const afterId = logIdFromCursor(cursor);
      // Reading one entry after it makes the database check it against retention.
      await sql.rows<LogRow>('cas_list_logs', { p_after_id: afterId, p_limit: 1 });
      if (afterId > (await this.head())) throw cursorPastHead('log');
      return afterId;
    },
    /** How many entries match the filter (a connection's totalCount). */
    count: (filter: Pick<z.output<typeof logFilter>, 'agentId' | 'taskId' | 'levels' | 'from' | 'to'>) =>
      sql
        .value<unknown>('cas_count_logs', {
          p_agent_id: filter.agentId ?? null,
          p_task_id: filter.taskId ?? null,
          p_levels: filter.levels ? [...filter.levels] : null,
          p_from: filter.from ?? null,
          p_to: filter.to ?? null,
        })
        .then(toNumber),
    async page(filter: z.output<typeof logFilter>): Promise<Page<LogEntry>> {
      const read = async (afterId: number | null, limit: number, newestFirst: boolean) =>
        (
          await sql.rows<LogRow>('cas_list_logs', {
            p_agent_id: filter.agentId ?? null,
            p_task_id: filter.taskId ?? null,
            p_levels: filter.levels ? [...filter.levels] : null,
            p_from: filter.from ?? null,
            p_to: filter.to ?? null,
            p_after_id: afterId,
            p_limit: limit,
            p_newest_first: newestFirst,
          })
        ).map(logFromRow);
      if (filter.last != null) {
        const before = filter.before ? logIdFromCursor(filter.before) : null;
        return toPageBefore(await read(before, filter.last + 1, true), filter.last, logCursor);
      }
      const afterId = filter.after ? logIdFromCursor(filter.after) : null;
      const entries = await read(afterId, filter.first + 1, filter.newestFirst ?? false);
      // A cursor past the newest entry was never handed out; only an empty page can come from one.
      if (entries.length === 0 && afterId !== null && afterId > (await this.head())) {
        throw cursorPastHead('log');
      }
      return toPage(entries, filter.first, logCursor);
    },
  };
}
export type LogStore = ReturnType<typeof logStore>;
