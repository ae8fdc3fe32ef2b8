import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';

describeEachDatabase('metrics, logs and events', (kind) => {
  let t: TestRuntime;
  let windowStart: Date;
  beforeAll(async () => {
    t = await openTestRuntime(kind);
    await t.runtime.registerAgent({ id: 'measured', name: 'Measured', role: 'analyst' });
    windowStart = new Date();
    // Two successes of known length, one failure, one cancellation.
    await t.runtime.executeTask({ agentId: 'measured', action: 'wait', input: { ms: 100 }, wait: true });
    await t.runtime.executeTask({ agentId: 'measured', action: 'wait', input: { ms: 300 }, wait: true });
    await t.runtime.executeTask({ agentId: 'measured', action: 'fail', input: { times: 1 }, wait: true });
    const queued = await t.runtime.executeTask({
      agentId: 'measured',
      action: 'ping',
      runAt: new Date(Date.now() + 60_000),
    });
    await t.runtime.cancelTask(queued.id);
  });
  afterAll(() => t.close());

  describe('metrics', () => {
    it('counts runs and computes real durations and rates in SQL', async () => {
      const metrics = await t.runtime.getMetrics('measured');
      expect(metrics).toMatchObject({
        totalRuns: 4,
        succeeded: 2,
        failed: 1,
        cancelled: 1,
        successRate: 0.5,
        errorRate: 0.25,
      });
      // The mean of ~100 ms, ~300 ms and a fast failure: far from the old 0.00 ms.
      expect(metrics.avgDurationMs).toBeGreaterThan(125);
      // An upper bound loose enough for a loaded CI machine.
      expect(metrics.avgDurationMs).toBeLessThan(1500);
      expect(metrics.uptimeSeconds).toBeGreaterThan(0.3);
    });

    it('restricts to a time range', async () => {
      const future = await t.runtime.getMetrics('measured', { from: new Date(Date.now() + 3_600_000) });
      expect(future).toMatchObject({
        totalRuns: 0,
        succeeded: 0,
        successRate: 0,
        errorRate: 0,
        avgDurationMs: null,
      });
      const past = await t.runtime.getMetrics('measured', { to: windowStart });
      expect(past.totalRuns).toBe(0);
      const window = await t.runtime.getMetrics('measured', {
        from: windowStart,
        to: new Date(Date.now() + 1000),
      });
      expect(window.totalRuns).toBe(4);
    });

    it('writes each attempt duration to cas_metrics_timeseries', async () => {
      const series = await t.runtime.getMetricSeries('measured', 'task_duration_ms');
      expect(series).toHaveLength(3);
      const waits = series.filter((point) => point.tags.action === 'wait').map((point) => point.value);
      expect(waits[0]).toBeGreaterThanOrEqual(95);
      expect(waits[1]).toBeGreaterThanOrEqual(295);
    });

    it('answers many agents in one call, in order, and zero for an agent without runs', async () => {
      const [measured, idle, ghost] = await t.runtime.getMetricsMany(['measured', 'security', 'ghost']);
      expect(measured?.totalRuns).toBe(4);
      expect(idle).toMatchObject({ agentId: 'security', totalRuns: 0, avgDurationMs: null });
      expect(ghost).toBeNull();
      await expect(t.runtime.getMetrics('ghost')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('refuses a range that ends before it starts', async () => {
      await expect(
        t.runtime.getMetrics('measured', { from: new Date(2030, 0, 1), to: new Date(2020, 0, 1) }),
      ).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    });
  });

  describe('logs', () => {
    beforeAll(async () => {
      await t.runtime.registerAgent(
        { id: 'logger', name: 'Logger', role: 'qa' },
        {
          actions: {
            chatter: (input, ctx) => {
              const count = input as number;
              for (let index = 0; index < count; index += 1) {
                ctx.log(index % 2 === 0 ? 'info' : 'debug', `message ${index}`, { index });
              }
              return null;
            },
          },
        },
      );
      await t.runtime.executeTask({ agentId: 'logger', action: 'chatter', input: 120, wait: true });
    });

    it('filters by agent and level, and pages with a default of 50', async () => {
      const first = await t.runtime.getLogs({ agentId: 'logger' });
      expect(first.items).toHaveLength(50);
      expect(first.hasNextPage).toBe(true);
      const infos = await t.runtime.getLogs({ agentId: 'logger', levels: ['info'], first: 500 });
      expect(infos.items).toHaveLength(60);
      expect(infos.items.every((entry) => entry.level === 'info')).toBe(true);
      expect(infos.hasNextPage).toBe(false);
    });

    it('pages forward with cursors without gaps or repeats, oldest or newest first', async () => {
      const seen: string[] = [];
      let after: string | null = null;
      do {
        const page: Awaited<ReturnType<typeof t.runtime.getLogs>> = await t.runtime.getLogs({
          agentId: 'logger',
          first: 33,
          after,
        });
        seen.push(...page.items.map((entry) => entry.message));
        after = page.hasNextPage ? page.endCursor : null;
      } while (after);
      expect(seen).toEqual(Array.from({ length: 120 }, (_, index) => `message ${index}`));
      const newest = await t.runtime.getLogs({ agentId: 'logger', first: 2, newestFirst: true });
      expect(newest.items.map((entry) => entry.message)).toEqual(['message 119', 'message 118']);
      const older = await t.runtime.getLogs({
        agentId: 'logger',
        first: 2,
        newestFirst: true,
        after: newest.endCursor,
      });
      expect(older.items.map((entry) => entry.message)).toEqual(['message 117', 'message 116']);
    });

    it('filters by date', async () => {
      const none = await t.runtime.getLogs({ agentId: 'logger', from: new Date(Date.now() + 60_000) });
      expect(none.items).toEqual([]);
      const all = await t.runtime.getLogs({
        agentId: 'logger',
        from: windowStart,
        to: new Date(Date.now() + 1000),
        first: 500,
      });
      expect(all.items).toHaveLength(120);
    });

    it('refuses page sizes outside 1..500 and foreign cursors', async () => {
      for (const first of [0, -1, 501, 1.5]) {
        await expect(t.runtime.getLogs({ first })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
      }
      const events = await t.runtime.getEventHistory({ first: 1 });
      await expect(t.runtime.getLogs({ after: events.endCursor })).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
      });
      await expect(t.runtime.getLogs({ after: 'not a cursor' })).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
      });
    });
  });

  describe('event history', () => {
    it('has contiguous sequence numbers in commit order', async () => {
      const events = await t.runtime.getEventHistory({ first: 500 });
      const seqs = events.items.map((event) => event.seq);
      expect(seqs[0]).toBe(1);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, index) => index + 1));
    });

    it('filters by agent, task and type, and resumes after a cursor', async () => {
      const measured = await t.runtime.getEventHistory({ agentId: 'measured', types: ['task_completed'] });
      expect(measured.items).toHaveLength(2);
      const first = await t.runtime.getEventHistory({ agentId: 'measured', first: 3 });
      const rest = await t.runtime.getEventHistory({
        agentId: 'measured',
        after: first.endCursor,
        first: 500,
      });
      const all = await t.runtime.getEventHistory({ agentId: 'measured', first: 500 });
      expect([...first.items, ...rest.items].map((event) => event.id)).toEqual(
        all.items.map((event) => event.id),
      );
      const taskId = measured.items[0]!.taskId!;
      const ofTask = await t.runtime.getEventHistory({ taskId });
      expect(ofTask.items.map((event) => event.type)).toEqual([
        'task_queued',
        'task_started',
        'task_completed',
      ]);
    });

    it('refuses unknown event types', async () => {
      await expect(t.runtime.getEventHistory({ types: ['made_up' as never] })).rejects.toMatchObject({
        code: 'BAD_USER_INPUT',
      });
    });
  });
});
