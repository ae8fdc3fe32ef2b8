import type { RunnableConfig } from '@langchain/core/runnables';
import {
  BaseCheckpointSaver,
  WRITES_IDX_MAP,
  getCheckpointId,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointPendingWrite,
  type CheckpointTuple,
  type PendingWrite,
} from '@langchain/langgraph-checkpoint';
import type { Lease } from '../../domains/task/task.js';
import type {
  CheckpointQuery,
  StoredCheckpoint,
  StoredValue,
  TaskCheckpointStore,
} from '../../domains/task/checkpoints.js';

/** Most checkpoints one `list` reads when the caller sets no limit (a task's thread is short). */
const LIST_DEFAULT_LIMIT = 1000;

/**
 * LangGraph's checkpointer over the cas_graph_* SQL functions, for one attempt of one task: the
 * thread id is the task id, and every write presents the attempt's lease, so an attempt that lost
 * its task (a lease swept after a crash or a stall) cannot move the graph on. Reads are the same in
 * all three database modes (the Supabase mode calls the functions over PostgREST).
 *
 * Why not @langchain/langgraph-checkpoint-postgres: it needs a connection string (there is none
 * in the Supabase mode), keeps a pool of its own beside ours, and writes without a lease.
 */
export class TaskCheckpointSaver extends BaseCheckpointSaver {
  /**
   * Writes go one at a time, in the order LangGraph asks for them: a graph task then holds at most
   * one connection for its checkpoints (LangGraph starts a superstep's putWrites while the put of
   * the checkpoint before is in flight), as a `run` handler holds one for its steps.
   */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: TaskCheckpointStore,
    /** The attempt's lease; null for a reader that never writes. */
    private readonly lease: Lease | null,
  ) {
    super();
  }

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const taskId = this.threadOf(config);
    const [found] = await this.store.find(taskId, {
      checkpointNs: config.configurable?.checkpoint_ns ?? '',
      checkpointId: getCheckpointId(config) || null,
      limit: 1,
    });
    return found ? this.tuple(taskId, found) : undefined;
  }

  async *list(config: RunnableConfig, options: CheckpointListOptions = {}): AsyncGenerator<CheckpointTuple> {
    const taskId = this.threadOf(config);
    const query: CheckpointQuery = {
      checkpointNs: config.configurable?.checkpoint_ns ?? null,
      checkpointId: getCheckpointId(config) || null,
      before: options.before?.configurable?.checkpoint_id ?? null,
      limit: options.filter ? LIST_DEFAULT_LIMIT : (options.limit ?? LIST_DEFAULT_LIMIT),
    };
    let left = options.limit ?? Infinity;
    for (const found of await this.store.find(taskId, query)) {
      if (left <= 0) return;
      const tuple = await this.tuple(taskId, found);
      const filter = options.filter;
      const metadata = (tuple.metadata ?? {}) as Record<string, unknown>;
      if (filter && !Object.entries(filter).every(([key, value]) => metadata[key] === value)) continue;
      left -= 1;
      yield tuple;
    }
  }

  async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    _newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    const taskId = this.threadOf(config);
    const checkpointNs: string = config.configurable?.checkpoint_ns ?? '';
    const stored = {
      checkpointNs,
      checkpointId: checkpoint.id,
      parentCheckpointId: config.configurable?.checkpoint_id ?? null,
      checkpoint: (await this.serialise(checkpoint)).value,
      metadata: (await this.serialise(metadata)).value,
    };
    await this.inOrder(() => this.store.put(this.heldLease(), stored));
    return { configurable: { thread_id: taskId, checkpoint_ns: checkpointNs, checkpoint_id: checkpoint.id } };
  }

  async putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath = '',
  ): Promise<void> {
    this.threadOf(config);
    const checkpointId = config.configurable?.checkpoint_id;
    if (typeof checkpointId !== 'string') throw new Error('putWrites needs a checkpoint_id in the config');
    const stored = await Promise.all(
      writes.map(async ([channel, value], idx) => ({
        idx: WRITES_IDX_MAP[channel] ?? idx,
        channel,
        ...(await this.serialise(value)),
      })),
    );
    await this.inOrder(() =>
      this.store.putWrites(
        this.heldLease(),
        {
          checkpointNs: config.configurable?.checkpoint_ns ?? '',
          checkpointId,
          graphTaskId: taskId,
          taskPath,
        },
        stored,
      ),
    );
  }

  deleteThread(): Promise<void> {
    // A thread is a task: it goes with the task (retention), not on a graph's request.
    return Promise.reject(new Error('a task graph thread is deleted with its task, not by deleteThread'));
  }

  private inOrder<T>(write: () => Promise<T>): Promise<T> {
    const written = this.writes.then(write);
    this.writes = written.catch(() => undefined);
    return written;
  }

  private threadOf(config: RunnableConfig): string {
    const taskId: unknown = config.configurable?.thread_id;
    if (typeof taskId !== 'string') throw new Error('a task graph runs with its task id as thread_id');
    if (this.lease && taskId !== this.lease.id) {
      throw new Error(`this checkpointer belongs to task ${this.lease.id}, not ${taskId}`);
    }
    return taskId;
  }

  private heldLease(): Lease {
    if (!this.lease) throw new Error('this checkpointer only reads');
    return this.lease;
  }

  private async serialise(value: unknown): Promise<StoredValue> {
    const [type, bytes] = await this.serde.dumpsTyped(value);
    if (type === 'bytes') return { type, value: Buffer.from(bytes).toString('base64') };
    return { type: 'json', value: new TextDecoder().decode(bytes) };
  }

  private async deserialise({ type, value }: StoredValue): Promise<unknown> {
    if (type === 'bytes') return new Uint8Array(Buffer.from(value, 'base64'));
    return this.serde.loadsTyped('json', value);
  }

  private async tuple(taskId: string, found: StoredCheckpoint): Promise<CheckpointTuple> {
    const configurable = { thread_id: taskId, checkpoint_ns: found.checkpointNs };
    const pendingWrites = await Promise.all(
      found.writes.map(async (write): Promise<CheckpointPendingWrite> => [
        write.taskId,
        write.channel,
        await this.deserialise(write),
      ]),
    );
    return {
      config: { configurable: { ...configurable, checkpoint_id: found.checkpointId } },
      checkpoint: (await this.deserialise({ type: 'json', value: found.checkpoint })) as Checkpoint,
      metadata: (await this.deserialise({ type: 'json', value: found.metadata })) as CheckpointMetadata,
      pendingWrites,
      ...(found.parentCheckpointId
        ? { parentConfig: { configurable: { ...configurable, checkpoint_id: found.parentCheckpointId } } }
        : {}),
    };
  }
}
