import { json, type SqlFunctions } from '../../db/sql-functions.js';
import { toDate } from '../../db/rows.js';
import type { Lease } from './task.js';

/**
 * The LangGraph checkpoints of a task that runs as a graph (the thread is the task): stored by
 * the SQL functions of migration 20261205000100, writes under the attempt's lease.
 */

/** A serialised value as LangGraph's serde made it: JSON text, or bytes (kept as base64). */
export interface StoredValue {
  type: 'json' | 'bytes';
  value: string;
}

export interface StoredWrite extends StoredValue {
  /** The graph task (node run) that wrote it. */
  taskId: string;
  channel: string;
}

export interface StoredCheckpoint {
  checkpointNs: string;
  checkpointId: string;
  parentCheckpointId: string | null;
  /** The Checkpoint as JSON text (LangGraph's serde). */
  checkpoint: string;
  /** Its metadata as JSON text. */
  metadata: string;
  createdAt: Date;
  /** Pending writes, in the order LangGraph applies them. */
  writes: StoredWrite[];
}

interface CheckpointRow {
  checkpoint_ns: string;
  checkpoint_id: string;
  parent_checkpoint_id: string | null;
  checkpoint: string;
  metadata: string | null;
  created_at: unknown;
  writes?: StoredWrite[];
}

const checkpointFromRow = (row: CheckpointRow): StoredCheckpoint => ({
  checkpointNs: row.checkpoint_ns,
  checkpointId: row.checkpoint_id,
  parentCheckpointId: row.parent_checkpoint_id,
  checkpoint: row.checkpoint,
  metadata: row.metadata ?? '{}',
  createdAt: toDate(row.created_at),
  writes: row.writes ?? [],
});

export interface CheckpointQuery {
  checkpointNs?: string | null;
  checkpointId?: string | null;
  before?: string | null;
  limit: number;
}

export function taskCheckpointStore(sql: SqlFunctions) {
  const lease = (held: Lease) => ({ p_task_id: held.id, p_lease_token: held.leaseToken });
  return {
    /** Checkpoints of one task's graph, newest first, with their pending writes. */
    find: async (taskId: string, query: CheckpointQuery) =>
      (
        await sql.rows<CheckpointRow>('cas_graph_checkpoints_of', {
          p_task_id: taskId,
          p_checkpoint_ns: query.checkpointNs ?? null,
          p_checkpoint_id: query.checkpointId ?? null,
          p_before: query.before ?? null,
          p_limit: query.limit,
        })
      ).map(checkpointFromRow),
    /** The newest `limit` root checkpoints of each task, newest first, in input order (no writes). */
    histories: async (taskIds: readonly string[], limit: number) => {
      const rows = await sql.rows<CheckpointRow & { task_id: string }>('cas_graph_checkpoint_histories', {
        p_task_ids: [...taskIds],
        p_limit: limit,
      });
      const byTask = new Map<string, StoredCheckpoint[]>(taskIds.map((id) => [id, []]));
      for (const row of rows) byTask.get(row.task_id)?.push(checkpointFromRow(row));
      return taskIds.map((id) => byTask.get(id)!);
    },
    put: (
      held: Lease,
      stored: Pick<
        StoredCheckpoint,
        'checkpointNs' | 'checkpointId' | 'parentCheckpointId' | 'checkpoint' | 'metadata'
      >,
    ) =>
      sql.value<boolean>('cas_graph_put_checkpoint', {
        ...lease(held),
        p_checkpoint_ns: stored.checkpointNs,
        p_checkpoint_id: stored.checkpointId,
        p_parent_checkpoint_id: stored.parentCheckpointId,
        p_checkpoint: stored.checkpoint,
        p_metadata: stored.metadata,
      }),
    putWrites: (
      held: Lease,
      at: { checkpointNs: string; checkpointId: string; graphTaskId: string; taskPath: string },
      writes: readonly (StoredValue & { idx: number; channel: string })[],
    ) =>
      sql.value<boolean>('cas_graph_put_writes', {
        ...lease(held),
        p_checkpoint_ns: at.checkpointNs,
        p_checkpoint_id: at.checkpointId,
        p_graph_task_id: at.graphTaskId,
        p_task_path: at.taskPath,
        p_writes: json(writes),
      }),
    /** A graph node of the attempt started or ended, as the task's step_* event. */
    nodeEvent: (
      held: Lease,
      type: 'step_started' | 'step_completed' | 'step_failed',
      payload: { step: string; node: string; graphTaskId: string; error?: { message: string } },
    ) =>
      sql.value<boolean>('cas_graph_node_event', {
        ...lease(held),
        p_event_type: type,
        p_payload: json(payload),
      }),
  };
}
export type TaskCheckpointStore = ReturnType<typeof taskCheckpointStore>;

/** A checkpoint as Task.checkpoints shows it. */
export interface TaskCheckpoint {
  id: string;
  parentId: string | null;
  /** LangGraph's superstep: -1 for the input, then 0, 1, ... */
  step: number | null;
  /** What made it: "input", "loop", "update" or "fork". */
  source: string | null;
  /** The graph's state then: its channels, without LangGraph's own (named "__...__"). */
  values: Record<string, unknown>;
  createdAt: Date;
}

export function taskCheckpointOf(stored: StoredCheckpoint): TaskCheckpoint {
  const checkpoint = JSON.parse(stored.checkpoint) as { channel_values?: Record<string, unknown> } | null;
  const channels = checkpoint?.channel_values ?? {};
  const { step, source } = JSON.parse(stored.metadata) as { step?: unknown; source?: unknown };
  return {
    id: stored.checkpointId,
    parentId: stored.parentCheckpointId,
    step: typeof step === 'number' ? step : null,
    source: typeof source === 'string' ? source : null,
    values: Object.fromEntries(
      Object.entries(channels).filter(([name]) => !(name.startsWith('__') || name.startsWith('branch:'))),
    ),
    createdAt: stored.createdAt,
  };
}
