/**
 * Prometheus metrics of one process (prom-client), served at GET /metrics (metrics-endpoint.ts).
 *
 * Counters and histograms count what this process did: the tasks its workers ran, the GraphQL
 * operations it answered. Gauges read shared state at scrape time (queue depth from the database),
 * so every process reports the same queue: aggregate them with max(), not sum(). Labels are
 * bounded: agent ids and action names (registered by operators and code), statuses and codes;
 * never task ids or user ids. docs/operations.md lists every metric with example PromQL.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds. Task durations run from a ping (milliseconds) to long model calls (minutes). */
const TASK_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];
/** Seconds from a task being due to a worker claiming it: milliseconds when healthy. */
const QUEUE_WAIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60];

/** How an attempt this process ran ended, as its written task row says. */
export type AttemptOutcome =
  'succeeded' | 'failed' | 'cancelled' | 'waiting' | 'retry_scheduled' | 'released' | 'lease_lost';

/** What a running attempt is: its labels and when it became due. */
export interface AttemptLabels {
  agentId: string;
  action: string;
}

/** Shared state read when Prometheus scrapes. */
export interface RuntimeReadings {
  /** Tasks not yet ended, by agent and status (queued, running, waiting). */
  queue: readonly { agentId: string; status: string; count: number }[];
  /** Events committed but not yet delivered to this process's live streams. */
  feedLagEvents: number;
  /** Database connections of this process; null where the driver has no pool (PGlite). */
  pool: { inUse: number; idle: number; waiting: number } | null;
}

/** Outcomes that are a task's final status (cas_tasks_finished_total counts them). */
const FINAL_OUTCOMES: ReadonlySet<AttemptOutcome> = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Most agent-and-action pairs whose label objects are kept; past it the cache starts afresh (the
 * series themselves stay in prom-client). Far above what operators register: a bound, not a size.
 */
const MAX_CACHED_LABEL_SETS = 10_000;

/**
 * The label objects of one agent and action, made once and shared by its attempts. Each attempt
 * records five observations; building their label objects anew for each (spreads included) cost
 * 6.4 us an attempt against 1.8 us with shared ones (a microbenchmark of the same five prom-client
 * calls), and a worker draining no-op tasks used 4% less CPU per task.
 */
class AttemptLabelSet {
  readonly agent: Readonly<{ agent: string }>;
  readonly agentAction: Readonly<{ agent: string; action: string }>;
  private readonly endings = new Map<
    AttemptOutcome,
    {
      outcome: Readonly<{ agent: string; action: string; outcome: AttemptOutcome }>;
      status: Readonly<{ agent: string; action: string; status: AttemptOutcome }> | null;
    }
  >();

  constructor(agent: string, action: string) {
    this.agent = Object.freeze({ agent });
    this.agentAction = Object.freeze({ agent, action });
  }

  /** The labels of an attempt that ended so; `status` only when the outcome is a final status. */
  ending(outcome: AttemptOutcome) {
    let labels = this.endings.get(outcome);
    if (!labels) {
      const { agent, action } = this.agentAction;
      labels = {
        outcome: Object.freeze({ agent, action, outcome }),
        status: FINAL_OUTCOMES.has(outcome) ? Object.freeze({ agent, action, status: outcome }) : null,
      };
      this.endings.set(outcome, labels);
    }
    return labels;
  }
}

export class CasMetrics {
  readonly registry = new Registry();
  private readonly attemptLabelSets = new Map<string, AttemptLabelSet>();
  private readonly started = new Counter({
    name: 'cas_task_attempts_started_total',
    help: 'Task attempts this process started, by agent and action.',
    labelNames: ['agent', 'action'] as const,
    registers: [this.registry],
  });
  private readonly ended = new Counter({
    name: 'cas_task_attempts_ended_total',
    help: 'Task attempts this process ran to an end, by agent, action and outcome (succeeded, failed, cancelled, waiting, retry_scheduled, released by a shutdown, lease_lost).',
    labelNames: ['agent', 'action', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly finished = new Counter({
    name: 'cas_tasks_finished_total',
    help: "Tasks this process's workers brought to a final status (succeeded, failed, cancelled), by agent and action. Tasks cancelled before any worker ran them are not counted here (see cas_tasks and the event log).",
    labelNames: ['agent', 'action', 'status'] as const,
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'cas_task_attempt_duration_seconds',
    help: 'Run time of task attempts in this process, claim to written outcome, by agent, action and outcome.',
    labelNames: ['agent', 'action', 'outcome'] as const,
    buckets: TASK_DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly queueWait = new Histogram({
    name: 'cas_task_queue_wait_seconds',
    help: 'Enqueue-to-start latency: from a task being due (queued, retry or wake-up time) to a worker of this process claiming it, by agent.',
    labelNames: ['agent'] as const,
    buckets: QUEUE_WAIT_BUCKETS,
    registers: [this.registry],
  });
  private readonly leaseExpiries = new Counter({
    name: 'cas_task_lease_expiries_total',
    help: 'Tasks this process swept back into the queue because their worker stopped heartbeating.',
    registers: [this.registry],
  });
  private readonly subscriptions = new Gauge({
    name: 'cas_graphql_subscriptions_active',
    help: 'GraphQL subscriptions running in this process (graphql-ws and SSE).',
    registers: [this.registry],
  });
  private readonly sharedStreams = new Gauge({
    name: 'cas_graphql_shared_subscription_streams',
    help: 'Shared graphql-ws subscription streams running in this process: each executes once per event for all its subscribers.',
    registers: [this.registry],
  });
  private readonly sharedResults = new Counter({
    name: 'cas_graphql_shared_subscription_results_total',
    help: 'Results shared subscription streams computed: one per event and stream, however many subscribers it has.',
    registers: [this.registry],
  });
  private readings: (() => Promise<RuntimeReadings>) | null = null;
  private socketCount: () => number = () => 0;
  private pendingReadings: Promise<RuntimeReadings | null> | null = null;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // The gauges' collect() runs with `this` bound to the gauge: reach this object through closures.
    const read = () => this.read();
    const openSockets = () => this.socketCount();
    new Gauge({
      name: 'cas_tasks',
      help: 'Tasks not yet ended in the shared database, by agent and status (queued, running, waiting). The same in every process: aggregate with max().',
      labelNames: ['agent', 'status'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const row of (await read())?.queue ?? [])
          this.set({ agent: row.agentId, status: row.status }, row.count);
      },
    });
    new Gauge({
      name: 'cas_websocket_connections',
      help: 'Open graphql-ws WebSocket connections to this process.',
      registers: [this.registry],
      collect() {
        this.set(openSockets());
      },
    });
    new Gauge({
      name: 'cas_feed_lag_events',
      help: "Events committed to the log but not yet delivered to this process's live streams (head minus delivered position).",
      registers: [this.registry],
      async collect() {
        const readings = await read();
        if (readings) this.set(readings.feedLagEvents);
      },
    });
    new Gauge({
      name: 'cas_db_pool_connections',
      help: 'Database connections of this process by state: in_use, idle, waiting (requests queued for a connection).',
      labelNames: ['state'] as const,
      registers: [this.registry],
      async collect() {
        const pool = (await read())?.pool;
        if (!pool) return;
        this.set({ state: 'in_use' }, pool.inUse);
        this.set({ state: 'idle' }, pool.idle);
        this.set({ state: 'waiting' }, pool.waiting);
      },
    });
  }

  /** What the open-WebSocket gauge reads; set by the HTTP server once it listens. */
  countSockets(count: () => number): void {
    this.socketCount = count;
  }

  /** Where the gauges read shared state; set once by the runtime. */
  readFrom(readings: () => Promise<RuntimeReadings>): void {
    this.readings = readings;
  }

  /** The Prometheus text exposition of every metric. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  /** A claimed attempt starts; its wait is from due (runAt) to claim (startedAt), both database clock. */
  attemptStarted(task: AttemptLabels & { runAt: Date; startedAt: Date | null }): void {
    const labels = this.labelsOf(task);
    this.started.inc(labels.agentAction);
    const claimedAt = task.startedAt ?? new Date();
    this.queueWait.observe(labels.agent, Math.max(0, claimedAt.getTime() - task.runAt.getTime()) / 1000);
  }

  attemptEnded(task: AttemptLabels, outcome: AttemptOutcome, durationMs: number): void {
    const labels = this.labelsOf(task).ending(outcome);
    this.ended.inc(labels.outcome);
    this.duration.observe(labels.outcome, durationMs / 1000);
    if (labels.status) this.finished.inc(labels.status);
  }

  private labelsOf({ agentId, action }: AttemptLabels): AttemptLabelSet {
    // PostgreSQL text holds no NUL, so the pair's key is unambiguous.
    const key = `${agentId}\u0000${action}`;
    let labels = this.attemptLabelSets.get(key);
    if (!labels) {
      if (this.attemptLabelSets.size >= MAX_CACHED_LABEL_SETS) this.attemptLabelSets.clear();
      labels = new AttemptLabelSet(agentId, action);
      this.attemptLabelSets.set(key, labels);
    }
    return labels;
  }

  leasesExpired(count: number): void {
    this.leaseExpiries.inc(count);
  }

  subscriptionStarted(): void {
    this.subscriptions.inc();
  }

  subscriptionEnded(): void {
    this.subscriptions.dec();
  }

  sharedStreamStarted(): void {
    this.sharedStreams.inc();
  }

  sharedStreamEnded(): void {
    this.sharedStreams.dec();
  }

  sharedResultComputed(): void {
    this.sharedResults.inc();
  }

  /** One database read per scrape, shared by the gauges; null (gauges left out) when it fails. */
  private read(): Promise<RuntimeReadings | null> {
    if (!this.readings) return Promise.resolve(null);
    this.pendingReadings ??= this.readings()
      .catch(() => null)
      .finally(() => setImmediate(() => (this.pendingReadings = null)));
    return this.pendingReadings;
  }
}
