/** bench/REPORT.md from the results of a run. */
import type { BenchResults } from './run.js';
import { fmt } from './lib/stats.js';
import type { HttpServer } from './http.js';
import type { SubscriptionMemory } from './subscriptions.js';

/**
 * A 1-minute load average above this when a section starts means something else was running (the
 * benchmark's own processes stop between sections).
 */
const LOADED_MACHINE = 1.0;

/** How the HTTP table names each server. */
const SERVER_NAMES: Record<HttpServer, string> = {
  bare: 'bare node:http',
  graphql: 'GraphQL (yoga)',
  'graphql-traced': 'GraphQL (yoga), tracing on',
  'graphql-paired': 'GraphQL (yoga), in turns with plain yoga',
  'plain-yoga': 'plain graphql-yoga',
  'graphql-deployed': 'GraphQL (yoga), deployed: NODE_ENV=production, JWT',
};

/** The middle value (the upper one of an even count). */
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** A ratio, with enough digits to tell small ones apart. */
const x = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? 'n/a' : `${fmt(value, value < 0.1 ? 3 : 2)}×`;
const ms = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? 'n/a' : `${fmt(value, 2)} ms`;
const int = (value: number | undefined) => fmt(value, 0);
/** A share (0..1) as a whole percentage. */
const percent = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? 'n/a' : `${Math.round(value * 100)}%`;

function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function writeReport(results: BenchResults): string {
  const {
    machine,
    http,
    roundTrips,
    tasks,
    scaleOut,
    workflows,
    runtimes,
    subscriptions,
    history,
    embedded,
  } = results;
  const out: string[] = [];
  const push = (...lines: string[]) => out.push(...lines);

  push('# CAS Runtime API: benchmark report', '');
  push(
    `Run ${results.startedAt} with \`${results.command}\`${results.quick ? ' (quick sizes: a smoke run, not for quoting)' : ''}, ` +
      `${int(results.durationSeconds)} s, commit ${machine.gitCommit}. Raw numbers: \`bench/results.json\`.`,
    '',
  );
  push(
    table(
      ['machine', ''],
      [
        ['CPU', `${machine.cpuModel}, ${machine.cores} cores`],
        ['memory', `${machine.memoryGiB} GiB`],
        ['OS', machine.os],
        ['Node.js', machine.node],
        ['PostgreSQL server', machine.postgres],
        ['PGlite', machine.pglite],
        ['graphile-worker', machine.graphileWorker],
        ['autocannon', machine.autocannon],
        [
          '1-min load average',
          `${fmt(machine.loadAverageAtStart, 2)} at start, ${fmt(machine.loadAverageAtEnd, 2)} at end`,
        ],
        ...(results.sectionLoad ?? []).map(({ section, before, after }) => [
          `load, ${section}`,
          `${fmt(before, 2)} before, ${fmt(after, 2)} after` +
            (before > LOADED_MACHINE ? ' **(started under load: compare with care)**' : ''),
        ]),
      ],
    ),
    '',
  );
  push(
    '**Read the ratios, not the absolute numbers.** The load generator, the servers, the workers and ' +
      'PostgreSQL share the same cores, so absolute figures depend on the machine and on whatever else ' +
      'runs on it; ratios between systems measured side by side in the same run carry over better. ' +
      'A load average well above 0 at the start means something else was running.',
    '',
  );

  // Headline
  push('## Headline', '');
  const headline: string[] = [];
  if (http) {
    for (const r of http.ratios) {
      headline.push(
        `- GraphQL \`${r.query}\` query vs bare node:http answering the same bytes, ${r.processes} process(es): ` +
          `**${x(r.graphqlOverBareRps)}** the requests/s (mean latency ${x(r.graphqlOverBareMeanLatency)}).`,
      );
    }
    if (http.healthOverPlainYogaRps !== undefined) {
      headline.push(
        `- \`{ health { ok } }\` of the API vs \`{ __typename }\` of plain graphql-yoga, 1 process: ` +
          `**${x(http.healthOverPlainYogaRps)}** the requests/s (the API's own overhead per request).`,
      );
    }
    const rps = (server: HttpServer, query: string) =>
      http.runs.find((r) => r.server === server && r.query === query && r.processes === 1)?.requestsPerSecond;
    const local = rps('graphql', 'dashboard');
    const deployed = rps('graphql-deployed', 'dashboard');
    if (local !== undefined && deployed !== undefined) {
      headline.push(
        `- Dashboard query (8 agents), 1 process: **${int(local)}** requests/s as \`npm start\` runs it (local mode), ` +
          `**${int(deployed)}** deployed (\`NODE_ENV=production\`, a JWT on every request).`,
      );
    }
    if (http.tracingOnOverOffRps !== undefined) {
      headline.push(
        `- \`{ health { ok } }\` with OpenTelemetry tracing on (every span exported) vs off, 1 process: ` +
          `**${x(http.tracingOnOverOffRps)}** the requests/s.`,
      );
    }
  }
  if (roundTrips) {
    headline.push(
      `- Dashboard query: **${roundTrips.runs.map((r) => `${r.roundTrips} round trips with ${r.agents} agents`).join(', ')}**.`,
    );
  }
  if (tasks) {
    const cas = tasks.latency.find((r) => r.system === 'cas' && r.database === 'postgres');
    const gw = tasks.latency.find((r) => r.system === 'graphile-worker');
    headline.push(
      `- Enqueue-to-start latency on PostgreSQL: CAS p50 **${ms(cas?.latency.p50)}**, p99 **${ms(cas?.latency.p99)}**; ` +
        `graphile-worker p50 ${ms(gw?.latency.p50)}, p99 ${ms(gw?.latency.p99)} ` +
        `(CAS/graphile-worker: p50 ${x(tasks.ratios.latencyP50CasOverGraphile)}, p99 ${x(tasks.ratios.latencyP99CasOverGraphile)}).`,
    );
    const byWorkers = tasks.ratios.throughputCasOverGraphile;
    for (const { workerProcesses, ratio, cas, graphile, casCpuBusy, graphileCpuBusy } of byWorkers) {
      headline.push(
        `- No-op tasks/s with ${workerProcesses} worker process(es): CAS **${int(cas)}** ` +
          `(with events and metrics), graphile-worker ${int(graphile)}: **${x(ratio)}**` +
          ` (${tasks.settings.throughputRounds ?? 1} alternating round(s) each; the machine's CPU ` +
          `${percent(casCpuBusy)} busy during CAS's drains, ${percent(graphileCpuBusy)} during graphile-worker's).`,
      );
    }
    const one = byWorkers.find((row) => row.workerProcesses === 1);
    const most = byWorkers.at(-1);
    if (one && most && most !== one) {
      /** Milliseconds of the machine's CPU (every core, every process) per task done. */
      const cpuPerTask = (busy: number | undefined, tasksPerSecond: number) =>
        busy === undefined ? undefined : (busy * machine.cores * 1000) / tasksPerSecond;
      headline.push(
        `- ${most.workerProcesses} worker processes over 1, each system against itself: CAS ` +
          `**${x(most.cas / one.cas)}**, graphile-worker ${x(most.graphile / one.graphile)}. Machine CPU per task ` +
          `(all ${machine.cores} cores, every process): CAS ${ms(cpuPerTask(one.casCpuBusy, one.cas))} with 1 process, ` +
          `${ms(cpuPerTask(most.casCpuBusy, most.cas))} with ${most.workerProcesses}; graphile-worker ` +
          `${ms(cpuPerTask(one.graphileCpuBusy, one.graphile))} and ${ms(cpuPerTask(most.graphileCpuBusy, most.graphile))}.`,
      );
    }
    if (tasks.databaseChain?.length) {
      const chain = tasks.databaseChain;
      const rate = chain.reduce((sum, r) => sum + r.tasks, 0) / chain.reduce((sum, r) => sum + r.seconds, 0);
      headline.push(
        `- One worker's database chain alone (its claim and complete-and-claim calls back to back from one ` +
          `connection, batches of ${chain[0]!.batchSize}, no task code): **${int(rate)}** tasks/s, ` +
          `**${x(tasks.ratios.databaseChainOverGraphile)}** graphile-worker's 1 process; CAS's worker process reaches ` +
          `${x(tasks.ratios.oneWorkerOverDatabaseChain)} of it (the rest: the task code, pool and event loop of the process and the whole task rows it reads back, in series with the database).`,
      );
    }
    const troubled = tasks.throughput.filter((r) => r.timedOut || (r.deadlocks ?? 0) > 0);
    for (const r of troubled) {
      headline.push(
        `- **Warning**: ${r.system} on ${r.database} with ${r.workerProcesses} worker process(es): ` +
          `${r.deadlocks ?? 0} deadlock(s)${r.timedOut ? `, only ${r.completed} of ${r.tasks} tasks done before the time limit` : ''}.`,
      );
    }
    headline.push(
      `- Embedded (PGlite, in-process worker) vs PostgreSQL server (1 worker process): ` +
        `**${x(tasks.ratios.embeddedOverServerThroughput)}** the tasks/s, ${x(tasks.ratios.embeddedOverServerLatencyP50)} the p50 start latency.`,
    );
  }
  if (workflows) {
    headline.push(
      `- Workflows: a ${workflows.settings.chainSteps}-step chain of \`ping\`, executeWorkflow to final event: ` +
        `p50 **${ms(workflows.chain.p50)}**, p90 ${ms(workflows.chain.p90)}; a map of ${workflows.map.items} items: ` +
        `**${int(workflows.map.itemsPerSecond)}** items/s, **${x(workflows.mapOverPlain)}** the plain task throughput (${int(workflows.plain.tasksPerSecond)} tasks/s).`,
    );
  }
  if (scaleOut?.runs.length) {
    const rate = (apis: number) => scaleOut.runs.find((run) => run.apiProcesses === apis)?.tasksPerSecond;
    headline.push(
      `- Scale-out, \`executeTask\` over HTTP to the end of every task: 3 API + 3 worker processes **${rate(3)?.toFixed(0) ?? 'n/a'}** tasks/s vs 1 + 1 ${rate(1)?.toFixed(0) ?? 'n/a'}: **${x(scaleOut.threeOverOne ?? Number.NaN)}**.`,
    );
  }
  if (runtimes) {
    const p50 = (name: string) => runtimes.runs.find((run) => run.runtime === name)?.roundTrip.p50;
    headline.push(
      runtimes.langgraphOverCustomP50 === undefined
        ? `- Runtimes: LangGraph not measured (${runtimes.skipped.map((s) => s.reason).join('; ') || 'no run'}).`
        : `- \`executeTask(wait: true)\` of a one-node graph over HTTP, \`CAS_RUNTIME=langgraph\` vs \`custom\`: ` +
            `p50 **${ms(p50('langgraph'))}** vs ${ms(p50('custom'))}: **${x(runtimes.langgraphOverCustomP50)}**.`,
    );
  }
  if (subscriptions?.measured && subscriptions.latency && subscriptions.memory) {
    headline.push(
      `- Subscriptions, commit-to-client: ${subscriptions.latency
        .map(
          (r) => `${r.subscribers} subscriber(s) p50 **${ms(r.latency.p50)}**, p99 **${ms(r.latency.p99)}**`,
        )
        .join('; ')}; **${fmt(subscriptions.memory.perSubscriptionKiB, 1)} KiB** RSS per idle subscription` +
        (subscriptions.subscribeCpu
          ? `; **${ms(subscriptions.subscribeCpu.perSubscribeMs)}** of server CPU per subscribe (target ≤ 0.5 ms).`
          : '.'),
    );
    const peer = subscriptions.peer;
    const largest = subscriptions.latency.at(-1);
    const peerLargest = peer?.latency.find((run) => run.subscribers === largest?.subscribers);
    if (peer && largest && peerLargest) {
      headline.push(
        `- Subscriptions vs a plain fan-out (\`ws\`, the same events written to every socket, nothing else) on the ` +
          `same clients: ${largest.subscribers} subscribers p50 **${x(largest.latency.p50 / peerLargest.latency.p50)}** ` +
          `(${ms(largest.latency.p50)} vs ${ms(peerLargest.latency.p50)}); one event to ` +
          `${subscriptions.memory.connections[1]} idle subscribers **${x(subscriptions.memory.fanOutToAllMs / peer.memory.fanOutToAllMs)}** ` +
          `(${ms(subscriptions.memory.fanOutToAllMs)} vs ${ms(peer.memory.fanOutToAllMs)}).`,
      );
    }
  } else if (subscriptions) {
    headline.push(`- Subscriptions: ${subscriptions.note}.`);
  }
  if (history?.writes) {
    headline.push(
      `- No-op tasks/s of 1 worker process on a database with ${history.size.events.toLocaleString('en')} events and ` +
        `${history.size.tasks.toLocaleString('en')} tasks of history vs a fresh one: **${history.writes.ratio.toFixed(2)}×** ` +
        `(${int(history.writes.historyTasksPerSecond)} vs ${int(history.writes.freshTasksPerSecond)}).`,
    );
  }
  const compiledStart = embedded?.runs.find((run) => run.build === 'compiled');
  if (compiledStart) {
    headline.push(
      `- Embedded \`npm start\` (first start on a fresh data folder): ready in **${ms(median(compiledStart.readyMs))}**, ` +
        `**${fmt(median(compiledStart.rssMiB), 1)} MiB** RSS idle (medians of ${compiledStart.readyMs.length}).`,
    );
  }
  push(...headline, '');

  if (results.failures.length > 0) {
    push('## Sections that failed in this run', '');
    for (const failure of results.failures) {
      push(
        `- **${failure.section}**:`,
        '',
        '```',
        failure.error.split('\n').slice(0, 12).join('\n'),
        '```',
        '',
      );
    }
  }

  if (http) {
    push('## HTTP', '');
    push(
      `autocannon in the benchmark process, ${http.settings.connections} connections, ` +
        `${http.settings.warmupSeconds} s warm-up then ${http.settings.durationSeconds} s per row, POST /graphql ` +
        'with `content-type: application/json`. Every response body is compared with the expected one ' +
        '(mismatches count as errors). The GraphQL server is `dist/server/main.js` (compiled from `src/`, as `npm start` runs it) on the PostgreSQL server ' +
        '(`DATABASE_URL`, `CAS_WORKERS=0`: an API-only process; the pool is its default of 15 connections). ' +
        'The bare server (`bench/servers/bare-http.ts`) reads the request body and answers the bytes the ' +
        'GraphQL server answered for it. Both run under node:cluster (`bench/servers/cluster.ts`) with 1 or 2 ' +
        'workers sharing one port: the primary hands each new connection to a worker in turn, and that ' +
        'worker serves every request of the connection. With 2 cores, 2 server processes compete with ' +
        'autocannon and PostgreSQL for the CPU. autocannon reports latency in whole milliseconds, so the ' +
        'ratios use the mean latency.',
      '',
      '- `health`: `{ health { ok } }` (the migrations check: one database round trip a second per process, shared by every request in that second).',
      '- `typename`: `{ __typename }` on plain graphql-yoga (`bench/servers/plain-yoga.ts`, defaults, no database): what any request on this stack costs. ' +
        'It is measured against `health` on a second API process, both running, in 4 alternating rounds (A B B A ...), so that neither gets the quieter moments of the machine.',
      '- `dashboard`: `{ agents { id status metrics { totalRuns successRate } state { version } recentTasks(first: 5) { id status } } }` ' +
        'over the 8 built-in agents, each with 5 finished tasks and a state.',
      '- `dashboard200`: the same query once 192 more agents are registered (200 in all; a tenth of the new ones with a state and a task), 1 process, measured last.',
      '- The rows without a mark run the server as `npm start` does: local mode (no authentication), `NODE_ENV` unset, so graphql-js makes its development checks. ' +
        'The "deployed" rows run it as a deployment does: `NODE_ENV=production` (graphql-js without those checks) and JWT authentication (`SUPABASE_JWT_SECRET`), every request carrying an admin\'s bearer token (verified once, then remembered: docs/security.md).',
      '',
    );
    push(
      table(
        ['query', 'server', 'processes', 'requests/s', 'p50', 'p99', 'mean', 'errors', 'response bytes'],
        http.runs.map((r) => [
          r.query,
          SERVER_NAMES[r.server],
          r.processes,
          int(r.requestsPerSecond),
          ms(r.latencyP50Ms),
          ms(r.latencyP99Ms),
          ms(r.latencyMeanMs),
          r.errors + r.non2xx + r.mismatches + r.timeouts,
          r.responseBytes,
        ]),
      ),
      '',
    );
    push(
      table(
        ['query', 'processes', 'GraphQL / bare requests/s', 'GraphQL / bare mean latency'],
        http.ratios.map((r) => [
          r.query,
          r.processes,
          x(r.graphqlOverBareRps),
          x(r.graphqlOverBareMeanLatency),
        ]),
      ),
      '',
    );
    push(
      table(
        ['server', 'query', '2 processes / 1 process requests/s'],
        http.scaling.map((s) => [s.server, s.query, x(s.twoOverOne)]),
      ),
      '',
    );
  }

  if (roundTrips) {
    push('## Database round trips per dashboard request', '');
    push(
      'The runtime in the benchmark process on a database wrapper that counts every statement ' +
        '(as `test/server/harness.ts` does for the DataLoader test), the dashboard query through the real ' +
        'yoga instance (no HTTP). 200 agents = the 8 built-in ones and 192 registered, a tenth of them with ' +
        'a state and a task. Latency: sequential requests in process, PostgreSQL server.',
      '',
    );
    push(
      table(
        ['agents', 'round trips', 'p50', 'p99', 'response bytes'],
        roundTrips.runs.map((r) => [
          r.agents,
          r.roundTrips,
          ms(r.latencyP50Ms),
          ms(r.latencyP99Ms),
          r.responseBytes,
        ]),
      ),
      '',
    );
  }

  if (history) {
    push('## Long history: reads and writes', '');
    push(
      `${history.size.events.toLocaleString('en')} events, ${history.size.logs.toLocaleString('en')} log entries and ` +
        `${history.size.tasks.toLocaleString('en')} finished tasks (seeded with generate_series in ` +
        `${history.seedSeconds.toFixed(0)} s, the task counters then folded as a worker does every second), queries through the real yoga instance in process, sequentially, ` +
        'PostgreSQL server. Pages start half-way through the history. Target: p50 ≤ 10 ms.',
      '',
    );
    push(
      table(
        ['query', 'p50', 'p99'],
        history.runs.map((r) => [r.query, ms(r.latencyP50Ms), ms(r.latencyP99Ms)]),
      ),
      '',
    );
    const writes = history.writes;
    if (writes) {
      push(
        `Writes on this history: one worker process (concurrency ${writes.settings.concurrency}) drains ` +
          `${writes.settings.tasks.toLocaleString('en')} no-op tasks here and on a fresh copy of the template, ` +
          `${writes.settings.rounds} round(s) each in alternating order, after a warm-up drain of ` +
          `${writes.settings.warmupTasks.toLocaleString('en')} on each: **${int(writes.historyTasksPerSecond)}** ` +
          `tasks/s on the long history, ${int(writes.freshTasksPerSecond)} on the fresh database ` +
          `(**${writes.ratio.toFixed(2)}×**). Each task writes its row three times and three events, each write ` +
          'adding entries to indexes as large as the history; their keys are recent (the event log keyed by ' +
          'seq, time-ordered task ids: docs/architecture.md), so those writes stay on pages in cache.',
        '',
      );
    }
  }

  if (tasks) {
    const s = tasks.settings;
    push('## Task engine', '');
    push(
      `No-op tasks: CAS \`ping\` (spread over the 8 built-in agents) and a graphile-worker task that returns ` +
        `at once. Each scenario has a fresh database. Concurrency ${s.concurrency} per worker process for both; ` +
        'default poll intervals (CAS 1 s, graphile-worker 2 s); both wake on LISTEN/NOTIFY. CAS worker processes ' +
        "are `npm run worker`'s entry (`dist/server/worker-main.js`); graphile-worker processes are " +
        '`bench/servers/graphile-worker.ts`, in a database of their own on the same server.',
      '',
      `- **Start latency**: idle workers (1 process), ${s.latencyTasks} tasks per system enqueued one at a time, one every ` +
        `${s.paceMs} ms, in ${s.latencyRounds ?? 1} alternating round(s) (CAS first, then graphile-worker first, ...), ` +
        `each on a fresh database, their samples pooled, after ${tasks.latency[0]?.warmupJobs ?? 0} warm-up tasks per round at the same pace ` +
        "(left out: a fresh worker's first tasks pay for its first plans and code paths); " +
        `from the benchmark process (CAS: \`executeTask\` on a runtime without workers, as an API ` +
        'process does; graphile-worker: `addJob`). Latency from database timestamps, both from the ' +
        "start of the enqueue statement to the clock when the claim's UPDATE writes the row: CAS " +
        '`started_at - created_at`; graphile-worker `created_at` and `clock_timestamp()` kept by a trigger ' +
        "on that UPDATE (finished jobs are deleted; its own `locked_at` is the claim statement's start, " +
        "which would leave out the claim's work).",
      `- **Throughput**: a backlog of ${s.throughputTasks} tasks enqueued in one transaction, then the time ` +
        'from its commit until the queue is seen empty, polled every 10 ms with a probe that costs the ' +
        'database next to nothing: whether any row is left (graphile-worker: its jobs table, which loses ' +
        'each finished job; CAS: its partial indexes of queued and running tasks). A count at that pace ' +
        "took CPU from the queue it measured: CAS's sum of its task counters cost 0.8-1.5 ms per probe, " +
        "about 7% of one worker's tasks/s. " +
        (s.throughputWarmupTasks
          ? `Before it, the same worker processes drain a warm-up backlog of ${s.throughputWarmupTasks} tasks per ` +
            "process, not counted: a fresh process's first thousands of tasks run in V8's unoptimized tiers and its " +
            'new database connections plan their statements, once per process, so every process of either system ' +
            'is measured about as warm as a long-running one (without it, 3 cold processes paid that three times ' +
            'within a 2-second drain). '
          : '') +
        'Each system runs ' +
        `${s.throughputRounds ?? 1} round(s) per worker count, in alternating order (CAS first, then graphile-worker first, ...), ` +
        'each on a fresh database; the headline rates are the tasks done over all rounds divided by their time. ' +
        'CAS tasks are end to end: ' +
        'each writes the task row three times, three events (queued, started, completed) with NOTIFY, a ' +
        'counter delta per status change and a duration metric (agent status is read from the task rows, ' +
        'and copied to its table by the workers once a second). After each CAS run the benchmark checks that every task ' +
        'succeeded once, has exactly one final event, and that event seq has no gap.',
      '- **Embedded**: the same two measurements on PGlite (in memory) with the in-process worker, in a ' +
        'child process (`bench/servers/embedded-tasks.ts`), tasks enqueued through the runtime as `npm start` does. ' +
        "PGlite's timestamps come in whole milliseconds, so its latencies do too.",
      '',
    );
    push(
      table(
        ['start latency', 'database', 'tasks', 'p50', 'p90', 'p99', 'max', 'enqueue loop slip'],
        tasks.latency.map((r) => [
          r.system,
          r.database,
          r.tasks,
          ms(r.latency.p50),
          ms(r.latency.p90),
          ms(r.latency.p99),
          ms(r.latency.max),
          ms(r.scheduleSlipMs),
        ]),
      ),
      '',
    );
    push(
      table(
        [
          'throughput',
          'database',
          'worker processes',
          'round',
          'done / backlog',
          'seconds',
          'tasks/s',
          'backlog enqueue (s)',
          'DB-side tasks/s',
          'machine CPU busy',
          'deadlocks',
        ],
        tasks.throughput.map((r) => [
          r.system,
          r.database,
          r.database === 'pglite' ? '1 (in process)' : r.workerProcesses,
          r.round ?? '',
          `${r.completed} / ${r.tasks}${r.timedOut ? ' (**timed out**)' : ''}`,
          fmt(r.seconds, 2),
          int(r.tasksPerSecond),
          fmt(r.enqueueSeconds, 2),
          r.check ? int(r.check.databaseTasksPerSecond) : '',
          percent(r.machineCpuBusy),
          r.deadlocks ?? '',
        ]),
      ),
      '',
    );
    push(
      '"DB-side tasks/s" (CAS only): tasks divided by the time from the first `started_at` to the last ' +
        '`finished_at`, i.e. without the polling granularity. "machine CPU busy": the share of all cores ' +
        'busy from the commit to the drain (`/proc/stat`: workers, PostgreSQL and the polling alike). ' +
        '"deadlocks": deadlocks PostgreSQL detected in ' +
        `the scenario's database (\`pg_stat_database\`); each costs the transactions involved about a second ` +
        '(`deadlock_timeout`). A run that times out reports the rate of the tasks it finished.',
      '',
    );
    if (tasks.databaseChain?.length) {
      push(
        "**One worker's database chain alone** (`bench/lib/cas-chain.ts`), a third system in the 1-process " +
          'rounds: the calls a worker process makes for a backlog (`cas_claim_tasks`, then ' +
          '`cas_complete_and_claim_tasks` completing the tasks the previous call claimed and claiming as many, ' +
          'the concurrency), back to back from one connection with no task code, pool, metrics or tracing ' +
          'between them; same warm-up and backlog, fresh database, the same checks after. A worker process ' +
          'with one batch in flight is this chain with its JavaScript in series, so its rate bounds what one ' +
          'worker process reaches here with the same writes per task. "backend CPU per batch": the CPU time of ' +
          "the chain's PostgreSQL process (`/proc`) over its batches.",
        '',
        table(
          ['round', 'tasks', 'batches', 'seconds', 'tasks/s', 'backend CPU per batch', 'machine CPU busy'],
          tasks.databaseChain.map((r) => [
            r.round,
            r.tasks,
            r.batches,
            fmt(r.seconds, 2),
            int(r.tasksPerSecond),
            ms(r.backendCpuMsPerBatch),
            percent(r.machineCpuBusy),
          ]),
        ),
        '',
      );
    }
  }

  if (workflows) {
    push('## Workflows', '');
    push(
      '`dist/server/main.js` on the PostgreSQL server with its in-process worker (`CAS_WORKERS=1`, ' +
        'concurrency 10), driven over GraphQL: `executeWorkflow` over HTTP, then `workflowRunEvents` over ' +
        "graphql-ws until the run's final event. Plain throughput: the same number of `ping` tasks queued " +
        'in one statement on the same server, measured until drained, just before.',
      '',
      table(
        ['row', 'value'],
        [
          [
            `${workflows.settings.chainSteps}-step chain, ${workflows.chain.count} runs: p50 / p90 / p99`,
            `${ms(workflows.chain.p50)} / ${ms(workflows.chain.p90)} / ${ms(workflows.chain.p99)}`,
          ],
          [
            `map of ${workflows.map.items} items`,
            `${int(workflows.map.itemsPerSecond)} items/s (${fmt(workflows.map.seconds, 2)} s)`,
          ],
          [`plain ${workflows.plain.tasks} tasks`, `${int(workflows.plain.tasksPerSecond)} tasks/s`],
          ['map / plain', x(workflows.mapOverPlain)],
        ],
      ),
      '',
    );
  }

  if (runtimes) {
    push('## Runtimes', '');
    push(
      '`dist/server/main.js` on the PostgreSQL server with its in-process worker, once per `CAS_RUNTIME`, each on a ' +
        'fresh database; one client sends `executeTask(input: { agentId: "marketer", action: "ping", wait: true })` ' +
        `over HTTP, one at a time (${runtimes.settings.roundTrips} timed after warm-up). Under the LangGraph runtime ` +
        'the plain action runs as a one-node graph with its checkpoints in the same database.',
      '',
      table(
        ['runtime', 'p50', 'p90', 'p99'],
        runtimes.runs.map((run) => [
          run.runtime,
          ms(run.roundTrip.p50),
          ms(run.roundTrip.p90),
          ms(run.roundTrip.p99),
        ]),
      ),
      '',
      ...runtimes.skipped.map((skip) => `- ${skip.runtime}: not measured (${skip.reason})`),
      `LangGraph / custom p50: **${x(runtimes.langgraphOverCustomP50)}** (target ≤ 2×).`,
      '',
    );
  }

  if (scaleOut?.runs.length) {
    push(
      '## Scale-out',
      '',
      `API processes (\`dist/server/main.js\`, \`CAS_WORKERS=0\`) and worker processes (\`npm run worker\`, concurrency ` +
        `${scaleOut.settings.concurrency}) on one PostgreSQL database, a fresh one per shape. ${scaleOut.settings.clients} clients ` +
        `send ${scaleOut.settings.tasks} \`executeTask\` of \`ping\` over HTTP, round-robin over the API processes; tasks/s ` +
        "runs from the first send to the last task's `finished_at`. On 2 cores the 6 processes and PostgreSQL share the same CPUs.",
      '',
      table(
        [
          'API processes',
          'worker processes',
          'enqueues/s',
          'tasks/s end to end',
          'succeeded',
          'machine CPU busy',
        ],
        scaleOut.runs.map((run) => [
          String(run.apiProcesses),
          String(run.workerProcesses),
          run.enqueuePerSecond.toFixed(0),
          run.tasksPerSecond.toFixed(0),
          String(run.succeeded),
          percent(run.machineCpuBusy),
        ]),
      ),
      '',
      `3 + 3 over 1 + 1: **${x(scaleOut.threeOverOne ?? Number.NaN)}**. "machine CPU busy": the share of all cores busy ` +
        'from the first send until every task succeeded (`/proc/stat`: every process, the load generator included).',
      '',
    );
  }

  push('## Subscriptions', '');
  if (subscriptions?.measured && subscriptions.latency && subscriptions.memory) {
    const memory = subscriptions.memory;
    push(
      `graphql-ws clients (one WebSocket each, \`${subscriptions.query}\`) against \`dist/server/main.js\` ` +
        '(API only) on the PostgreSQL server. The benchmark writes agent state versions one at a time through ' +
        'a runtime of its own (one transaction each: the state row, its event and the NOTIFY) and measures ' +
        'from the moment the commit returned to the moment each client received the event; the next write ' +
        'waits until every client has the previous one. The clients run in the benchmark process, so with ' +
        "1,000 of them the later ones' latency includes this process reading the messages before theirs. " +
        'CPU per delivery (one event to one subscriber) over the timed events: the server process ' +
        "(`/proc/<pid>/stat`, 10 ms ticks) and the benchmark process (`process.cpuUsage()`, all its clients'" +
        ' reading and parsing). Subscribers of the same live-only operation share one execution per ' +
        "event (`src/server/shared-subscriptions.ts`), so the server's share is mostly one WebSocket write " +
        'per subscriber.',
      '',
    );
    push(
      table(
        [
          'subscribers',
          'events',
          'deliveries',
          'p50',
          'p90',
          'p99',
          'max',
          'missing',
          'server CPU / delivery',
          'client CPU / delivery',
        ],
        subscriptions.latency.map((r) => [
          r.subscribers,
          r.events,
          r.latency.count,
          ms(r.latency.p50),
          ms(r.latency.p90),
          ms(r.latency.p99),
          ms(r.latency.max),
          r.missing,
          r.serverCpuUsPerDelivery === undefined ? '' : `${fmt(r.serverCpuUsPerDelivery, 1)} µs`,
          r.benchCpuUsPerDelivery === undefined ? '' : `${fmt(r.benchCpuUsPerDelivery, 1)} µs`,
        ]),
      ),
      '',
    );
    push(
      `Memory: server RSS ${fmt(memory.rssMiB[0], 1)} MiB with ${memory.connections[0]} idle subscribed connections, ` +
        `${fmt(memory.rssMiB[1], 1)} MiB with ${memory.connections[1]}: **${fmt(memory.perSubscriptionKiB, 1)} KiB per ` +
        `idle subscription** (connection included; median of 5 samples each, taken 3 s after the last subscribe and a full garbage collection through the server's inspector, so that garbage waiting for a collection does not count). Then ` +
        `${memory.fanOutMs.length} events, one at a time, each reached all ${memory.connections[1]} subscribers within ` +
        `${memory.fanOutMs.map((value) => fmt(value, 0)).join(', ')} ms of its commit: median **${ms(memory.fanOutToAllMs)}**.`,
      '',
    );
    const peer = subscriptions.peer;
    if (peer) {
      push(
        'The same rows against a plain fan-out (`bench/servers/plain-ws-fanout.ts`), run count by count right ' +
          'after CAS on the same clients and writes: a `ws` server that speaks just enough graphql-ws, LISTENs ' +
          'on the channel the event log rings, reads each event once and writes it to every subscribed socket, ' +
          'with no GraphQL, authorization, queues or quotas. It is what any Node.js server pays on this machine ' +
          'for these clients (a WebSocket write per subscriber, and the one benchmark process reading every ' +
          "client's messages); what CAS takes beyond it is its own.",
        '',
      );
      const rows = subscriptions.latency.flatMap((run) => {
        const plain = peer.latency.find((other) => other.subscribers === run.subscribers);
        if (!plain) return [];
        return [
          [
            run.subscribers,
            `${ms(run.latency.p50)} / ${ms(plain.latency.p50)}`,
            x(run.latency.p50 / plain.latency.p50),
            `${ms(run.latency.p99)} / ${ms(plain.latency.p99)}`,
            x(run.latency.p99 / plain.latency.p99),
            `${fmt(run.serverCpuUsPerDelivery ?? Number.NaN, 1)} / ${fmt(plain.serverCpuUsPerDelivery ?? Number.NaN, 1)} µs`,
          ],
        ];
      });
      const fanOut = (memory: SubscriptionMemory) =>
        `${ms(memory.fanOutToAllMs)} (${memory.fanOutMs.map((value) => fmt(value, 0)).join(', ')})`;
      push(
        table(
          [
            'subscribers',
            'p50 CAS / plain',
            'p50 ratio',
            'p99 CAS / plain',
            'p99 ratio',
            'server CPU / delivery',
          ],
          rows,
        ),
        '',
        table(
          [
            'idle subscribers',
            'server',
            'one event to all: median (each event, ms)',
            'RSS per idle subscription',
          ],
          [
            [memory.connections[1], 'CAS', fanOut(memory), `${fmt(memory.perSubscriptionKiB, 1)} KiB`],
            [
              peer.memory.connections[1],
              'plain fan-out',
              fanOut(peer.memory),
              `${fmt(peer.memory.perSubscriptionKiB, 1)} KiB`,
            ],
          ],
        ),
        '',
      );
    }
    const cpu = subscriptions.subscribeCpu;
    if (cpu) {
      push(
        `Server CPU per subscribe (warm): ${cpu.sockets} graphql-ws sockets open and acknowledged, a warm-up ` +
          'round of the same subscription (then completed), then ' +
          `${cpu.subscribes} subscribes sent at once, spread over the sockets; the server's CPU time ` +
          '(utime + stime from `/proc/<pid>/stat`, 10 ms ticks) from the first sent until its ' +
          '`cas_graphql_subscriptions_active` gauge (read every 50 ms) counts them all, minus the idle ' +
          "server's CPU over the same wall time (measured for 1 s just before). " +
          `${fmt(cpu.cpuMs, 0)} ms of CPU in ${fmt(cpu.wallMs, 0)} ms (idle share ${fmt(cpu.idleCpuMs, 0)} ms): ` +
          `**${ms(cpu.perSubscribeMs)} per subscribe** (target ≤ 0.5 ms).`,
        '',
      );
    }
  } else {
    push(
      `**Not measured yet.** ${subscriptions?.note ?? 'The section did not run.'} ` +
        'When subscriptions exist, this section measures commit-to-client latency (p50/p99) with 1, 100 and ' +
        '1,000 graphql-ws subscribers and the RSS per idle subscription between 1,000 and 5,000 connections.',
      '',
    );
  }

  if (embedded) {
    push('## Embedded start', '');
    push(
      'The embedded default as `npm start` runs it: the compiled server (`dist/server/main.js`) on a fresh ' +
        '`CAS_DATA_DIR` (the installed template copied, PGlite opened, the agents registered), from spawn to its ' +
        `first answered \`{ health { ok } }\`, then its RSS after ${embedded.settings.idleSeconds} s idle; beside it ` +
        'the same server from `src/` under tsx, as the tests run it. Medians, minimum and maximum of ' +
        `${embedded.settings.starts} starts each. Target: ready ≤ 4 s, RSS ≤ 250 MiB.`,
      '',
    );
    push(
      table(
        ['server', 'ready p50', 'ready min–max', 'RSS p50', 'RSS min–max'],
        embedded.runs.map((run) => [
          run.build === 'compiled' ? 'npm start (compiled)' : 'src/ under tsx',
          ms(median(run.readyMs)),
          `${ms(Math.min(...run.readyMs))} – ${ms(Math.max(...run.readyMs))}`,
          `${fmt(median(run.rssMiB), 1)} MiB`,
          `${fmt(Math.min(...run.rssMiB), 1)} – ${fmt(Math.max(...run.rssMiB), 1)} MiB`,
        ]),
      ),
      '',
    );
  }

  push('## Reproduce', '');
  push(
    '```sh',
    'npm ci',
    '# PostgreSQL server on 127.0.0.1:5432 (trust auth, user postgres); or set BENCH_DATABASE_URL',
    'npm run bench            # writes bench/REPORT.md and bench/results.json',
    'npm run bench -- --quick # small sizes, to check that it works',
    '```',
    '',
  );
  return `${out.join('\n')}\n`;
}
