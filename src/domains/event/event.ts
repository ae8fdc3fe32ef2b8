import { z } from 'zod';
import type { SqlFunctions } from '../../db/sql-functions.js';
import { toDate, toNumber } from '../../db/rows.js';
import { agentId, taskId } from '../../validation.js';
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

export const EVENT_TYPES = [
  'agent_registered',
  'agent_unregistered',
  'task_queued',
  'task_started',
  'task_progress',
  'task_completed',
  'task_failed',
  'task_cancel_requested',
  'task_cancelled',
  'task_retry_scheduled',
  'task_waiting',
  'task_resumed',
  'task_signal_received',
  'task_output',
  'step_started',
  'step_completed',
  'step_failed',
  'state_updated',
  'state_reset',
  'workflow_started',
  'workflow_step_started',
  'workflow_step_succeeded',
  'workflow_step_failed',
  'workflow_step_skipped',
  'workflow_succeeded',
  'workflow_failed',
  'workflow_cancelled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface AgentEvent {
  id: string;
  /** Global position in the event log: contiguous, strictly increasing, in commit order. */
  seq: number;
  type: EventType;
  agentId: string | null;
  taskId: string | null;
  /** The workflow run a workflow_* event is about. */
  workflowRunId: string | null;
  userId: string | null;
  payload: Record<string, unknown>;
  createdAt: Date;
}

const CURSOR_KIND = 'event';
export const eventCursor = (event: Pick<AgentEvent, 'seq'>) => encodeCursor(CURSOR_KIND, event.seq);
export const eventSeqFromCursor = (cursor: string) => decodeCursor(CURSOR_KIND, cursor);

export const eventFilter = z.object({
  agentId: agentId.nullish(),
  taskId: taskId.nullish(),
  types: z.array(z.enum(EVENT_TYPES)).max(EVENT_TYPES.length).nullish(),
  after: z.string().max(200).nullish(),
  first: pageSize,
  /** Backward paging: the `last` events before `before` (the newest when absent), in log order. */
  last: backwardPageSize,
  before: z.string().max(200).nullish(),
});
export type EventFilter = z.input<typeof eventFilter>;

/** A live event stream: `after` replays from a cursor first; without it, live only. */
export const eventSubscriptionFilter = eventFilter.pick({
  agentId: true,
  taskId: true,
  types: true,
  after: true,
});

interface EventRow {
  id: string;
  seq: unknown;
  event_type: EventType;
  agent_id: string | null;
  task_id: string | null;
  workflow_run_id?: string | null;
  user_id: string | null;
  payload: Record<string, unknown> | null;
  created_at: unknown;
}

export const eventFromRow = (row: EventRow): AgentEvent => ({
  id: row.id,
  seq: toNumber(row.seq),
  type: row.event_type,
  agentId: row.agent_id,
  taskId: row.task_id,
  workflowRunId: row.workflow_run_id ?? null,
  userId: row.user_id,
  payload: row.payload ?? {},
  createdAt: toDate(row.created_at),
});

export function eventStore(sql: SqlFunctions) {
  return {
    /** Events in log order after `afterSeq`. */
    async list(filter: {
      agentId?: string | null;
      taskId?: string | null;
      workflowRunId?: string | null;
      types?: readonly string[] | null;
      afterSeq?: number | null;
      limit: number;
    }): Promise<AgentEvent[]> {
      const rows = await sql.rows<EventRow>('cas_list_events', {
        p_agent_id: filter.agentId ?? null,
        p_task_id: filter.taskId ?? null,
        p_types: filter.types ? [...filter.types] : null,
        p_after_seq: filter.afterSeq ?? null,
        p_limit: filter.limit,
        // Only when given: the argument arrived with workflows (20261203000400_cas_workflows.sql).
        ...(filter.workflowRunId ? { p_workflow_run_id: filter.workflowRunId } : {}),
      });
      return rows.map(eventFromRow);
    },
    /** Seq of the newest event. */
    head: () => sql.value<unknown>('cas_event_head', {}).then(toNumber),
    /**
     * The position of an `after` cursor, refused (BAD_USER_INPUT) when it lies past the newest
     * event: no such cursor was ever handed out, and a reader resuming there would skip every
     * event up to it.
     */
    async positionOf(cursor: string): Promise<number> {
      const seq = eventSeqFromCursor(cursor);
      if (seq > (await this.head())) throw cursorPastHead('event');
      return seq;
    },
    async page(filter: z.output<typeof eventFilter>): Promise<Page<AgentEvent>> {
      if (filter.last != null) return this.pageBefore({ ...filter, last: filter.last });
      const afterSeq = filter.after ? eventSeqFromCursor(filter.after) : null;
      const rows = await this.list({ ...filter, afterSeq, limit: filter.first + 1 });
      // Only an empty page can come from a cursor past the head; full pages cost no extra read.
      if (rows.length === 0 && filter.after) await this.positionOf(filter.after);
      return toPage(rows, filter.first, eventCursor);
    },
    async pageBefore(filter: z.output<typeof eventFilter> & { last: number }): Promise<Page<AgentEvent>> {
      const rows = await sql.rows<EventRow>('cas_list_events_before', {
        p_agent_id: filter.agentId ?? null,
        p_task_id: filter.taskId ?? null,
        p_types: filter.types ? [...filter.types] : null,
        p_before_seq: filter.before ? eventSeqFromCursor(filter.before) : null,
        p_limit: filter.last + 1,
      });
      return toPageBefore(rows.map(eventFromRow), filter.last, eventCursor);
    },
    /** How many events match the filter (a connection's totalCount). */
    count: (filter: Pick<z.output<typeof eventFilter>, 'agentId' | 'taskId' | 'types'>) =>
      sql
        .value<unknown>('cas_count_events', {
          p_agent_id: filter.agentId ?? null,
          p_task_id: filter.taskId ?? null,
          p_types: filter.types ? [...filter.types] : null,
        })
        .then(toNumber),
  };
}
export type EventStore = ReturnType<typeof eventStore>;
