import DataLoader from 'dataloader';
import type { Agent, AgentStore } from '../domains/agent/agent.js';
import type { AgentEvent, EventStore, EventType } from '../domains/event/event.js';
import type { LogEntry, LogLevel, LogStore } from '../domains/log/log.js';
import { isFinal, type Task, type TaskStore } from '../domains/task/task.js';
import { isEventNotice, type ChangeFeed } from '../feed/change-feed.js';
import { LogTail } from '../feed/log-tail.js';
import { throttle } from '../feed/throttle.js';
import type { Logger } from '../logger.js';

export interface EventStreamFilter {
  agentId?: string | null;
  taskId?: string | null;
  workflowRunId?: string | null;
  types?: readonly EventType[] | null;
}

export interface LogStreamFilter {
  agentId?: string | null;
  levels?: readonly LogLevel[] | null;
}

export const FINAL_EVENT_TYPES: ReadonlySet<EventType> = new Set([
  'task_completed',
  'task_failed',
  'task_cancelled',
]);

/** Events after which an agent's status, activity or error may differ. */
const AGENT_STATUS_EVENT_TYPES: readonly EventType[] = [
  'agent_registered',
  'agent_unregistered',
  'task_started',
  'task_completed',
  'task_failed',
  'task_cancelled',
  'task_retry_scheduled',
  'task_waiting',
];

export interface LiveStreamOptions {
  /** Fallback re-read period when no notification arrives. */
  pollMs: number;
  /** Batches a subscriber may fall behind before its stream ends with SUBSCRIPTION_OVERFLOW. */
  subscriberCapacity: number;
}

const BATCH_SIZE = 500;

/**
 * Live views of the event log and the logs for this process: one tail of each log, woken by the
 * change feed (and a poll, in case a notice was lost), fanned out to every stream. Details that
 * streams show (a task, an agent) are loaded in batches shared by all streams woken together.
 */
export class LiveStreams {
  private readonly events: LogTail<AgentEvent, EventStreamFilter>;
  private readonly logs: LogTail<LogEntry, LogStreamFilter>;
  private readonly taskLoader: DataLoader<string, Task | null>;
  private readonly agentLoader: DataLoader<string, Agent | null>;
  private readonly eventHead: () => Promise<number>;
  private readonly eventStore: EventStore;
  private unsubscribe: (() => void) | null = null;
  private poll: NodeJS.Timeout | null = null;

  constructor(
    private readonly feed: ChangeFeed,
    stores: { events: EventStore; logs: LogStore; tasks: TaskStore; agents: AgentStore },
    private readonly options: LiveStreamOptions,
    logger: Logger,
  ) {
    this.eventStore = stores.events;
    this.eventHead = () => stores.events.head();
    this.events = new LogTail(
      {
        position: (event) => event.seq,
        head: () => stores.events.head(),
        readAfter: (afterSeq, limit, filter) => stores.events.list({ ...filter, afterSeq, limit }),
        matches: (event, filter) =>
          (!filter.agentId || event.agentId === filter.agentId) &&
          (!filter.taskId || event.taskId === filter.taskId) &&
          (!filter.workflowRunId || event.workflowRunId === filter.workflowRunId) &&
          (!filter.types || filter.types.includes(event.type)),
      },
      { batchSize: BATCH_SIZE, subscriberCapacity: options.subscriberCapacity },
      logger,
    );
    this.logs = new LogTail(
      {
        position: (entry) => entry.id,
        head: () => stores.logs.head(),
        readAfter: (afterId, limit, filter) => stores.logs.list({ ...filter, afterId, limit }),
        matches: (entry, filter) =>
          (!filter.agentId || entry.agentId === filter.agentId) &&
          (!filter.levels || filter.levels.includes(entry.level)),
      },
      { batchSize: BATCH_SIZE, subscriberCapacity: options.subscriberCapacity },
      logger,
    );
    // No cache: each wake-up must see the rows as they are now; batching still merges the loads
    // of every stream woken by the same event into one query.
    const inOrder = <T extends { id: string }>(ids: readonly string[], rows: T[]) => {
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    };
    this.taskLoader = new DataLoader(async (ids) => inOrder(ids, await stores.tasks.get(ids)), {
      cache: false,
    });
    this.agentLoader = new DataLoader(async (ids) => inOrder(ids, await stores.agents.list(ids)), {
      cache: false,
    });
  }

  start(): void {
    this.unsubscribe ??= this.feed.subscribe(
      (notice) => void (isEventNotice(notice) ? this.events : this.logs).wake(),
    );
    this.poll ??= setInterval(() => {
      if (this.events.subscriberCount > 0) void this.events.wake();
      if (this.logs.subscriberCount > 0) void this.logs.wake();
    }, this.options.pollMs);
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    this.events.closeAll();
    this.logs.closeAll();
  }

  /** Events committed but not yet delivered to this process's streams (0 while none listen). */
  async feedLag(): Promise<number> {
    const [delivered, committed] = await Promise.all([this.events.currentHead(), this.eventHead()]);
    return Math.max(0, committed - delivered);
  }

  subscriberCounts(): { events: number; logs: number } {
    return { events: this.events.subscriberCount, logs: this.logs.subscriberCount };
  }

  /** The task as it is now; loads of streams woken by the same event share one query. */
  currentTask(taskId: string): Promise<Task | null> {
    return this.taskLoader.load(taskId);
  }

  /** Reads what is new now, as a notification would (tests use it to control batching). */
  async wakeForTests(): Promise<void> {
    await this.events.wake();
  }

  /** Events matching `filter` after `afterSeq` (live only when null), until the consumer stops. */
  events$(filter: EventStreamFilter, afterSeq: number | null): AsyncIterableIterator<AgentEvent> {
    return this.events.subscribe(filter, afterSeq);
  }

  /** Log entries matching `filter` after `afterId` (live only when null), until the consumer stops. */
  logs$(filter: LogStreamFilter, afterId: number | null): AsyncIterableIterator<LogEntry> {
    return this.logs.subscribe(filter, afterId);
  }

  /** A task's events after `afterSeq`, ending after its final event. */
  async *taskEvents(
    taskId: string,
    afterSeq: number,
    options: { throttleMs?: number; types?: readonly EventType[] } = {},
  ): AsyncGenerator<AgentEvent> {
    // The final events are always read, so a filtered stream still ends with the task.
    const types = options.types ? [...new Set([...options.types, ...FINAL_EVENT_TYPES])] : null;
    const events = this.events$({ taskId, types }, afterSeq);
    const source = options.throttleMs
      ? throttle(events, (event) => event.type === 'task_progress', options.throttleMs)
      : events;
    try {
      for await (const event of source) {
        if (!options.types || options.types.includes(event.type)) yield event;
        if (FINAL_EVENT_TYPES.has(event.type)) return;
      }
    } finally {
      await events.return?.();
    }
  }

  /** The task now, then after each change, ending at its final status. */
  async *task(taskId: string, options: { throttleMs?: number } = {}): AsyncGenerator<Task> {
    // Events after this head are changes the snapshot may not include yet.
    const head = await this.events.currentHead();
    const snapshot = await this.taskLoader.load(taskId);
    if (!snapshot) return;
    yield snapshot;
    if (isFinal(snapshot.status)) return;
    let last = snapshot;
    const changes = this.snapshots(taskId, head);
    const source = options.throttleMs
      ? throttle(changes, (task) => !isFinal(task.status), options.throttleMs)
      : changes;
    for await (const task of source) {
      if (
        task.updatedAt.getTime() === last.updatedAt.getTime() &&
        task.status === last.status &&
        task.progress === last.progress
      ) {
        continue;
      }
      last = task;
      yield task;
      if (isFinal(task.status)) return;
    }
  }

  private async *snapshots(taskId: string, afterSeq: number): AsyncGenerator<Task> {
    const events = this.events$({ taskId }, afterSeq);
    try {
      for await (const event of events) {
        const task = await this.taskLoader.load(taskId);
        if (task) yield task;
        if (FINAL_EVENT_TYPES.has(event.type)) return;
      }
    } finally {
      await events.return?.();
    }
  }

  /**
   * Agents (one, or all) each time their status, activity or error may have changed. With
   * `afterSeq`, first each agent with such an event after it, once, as it is now; then live.
   */
  async *agents(agentId: string | null, afterSeq: number | null): AsyncGenerator<Agent> {
    const filter = { agentId, types: AGENT_STATUS_EVENT_TYPES };
    // Live from the head read now; what happened between afterSeq and it is caught up below.
    const head = afterSeq === null ? null : await this.eventHead();
    const events = this.events$(filter, head);
    try {
      if (afterSeq !== null && head !== null && head > afterSeq) {
        for (const id of await this.agentsChangedBetween(filter, afterSeq, head)) {
          const agent = await this.agentLoader.load(id);
          if (agent) yield agent;
        }
      }
      for await (const event of events) {
        const agent = event.agentId ? await this.agentLoader.load(event.agentId) : null;
        if (agent) yield agent;
      }
    } finally {
      await events.return?.();
    }
  }

  /** Ids of the agents with a status event in (afterSeq, head], in the order they last changed. */
  private async agentsChangedBetween(
    filter: EventStreamFilter,
    afterSeq: number,
    head: number,
  ): Promise<string[]> {
    const lastChange = new Map<string, number>();
    for (let position = afterSeq; position < head;) {
      const batch = await this.eventStore.list({ ...filter, afterSeq: position, limit: BATCH_SIZE });
      for (const event of batch) {
        if (event.seq > head) break;
        if (event.agentId) {
          lastChange.delete(event.agentId);
          lastChange.set(event.agentId, event.seq);
        }
      }
      if (batch.length < BATCH_SIZE || batch.at(-1)!.seq >= head) break;
      position = batch.at(-1)!.seq;
    }
    return [...lastChange.keys()];
  }
}
