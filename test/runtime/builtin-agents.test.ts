/**
 * The built-in agents' actions through the runtime: security.scan_secrets runs with no model
 * provider; model-backed actions are refused at enqueue while no provider is configured.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { defineAction } from '../../src/agents/actions.js';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, tableCounts, type TestRuntime } from '../support/runtime.js';

describeEachDatabase('built-in agents', (kind) => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await openTestRuntime(kind);
  });
  afterAll(() => t.close());

  it('security.scan_secrets finds a key in files with no provider configured', async () => {
    const key = ['AKIA', 'Q7RZ3XK2M5N4P6T2'].join('');
    const task = await t.runtime.executeTask({
      agentId: 'security',
      action: 'scan_secrets',
      input: { files: [{ path: '.env', content: `# keys\nAWS_ACCESS_KEY_ID=${key}\n` }] },
      wait: true,
    });
    expect(task.status).toBe('succeeded');
    expect(task.result).toMatchObject({
      scannedFiles: 1,
      truncated: false,
      findings: [
        { rule: 'aws-access-key-id', path: '.env', line: 2, column: 19, redacted: 'AKIA…(20 chars)' },
      ],
    });
    expect(JSON.stringify(task.result)).not.toContain(key);
  });

  it('security.scan_secrets refuses input that is neither text nor files, writing nothing', async () => {
    const before = await tableCounts(t.db);
    await expect(
      t.runtime.executeTask({ agentId: 'security', action: 'scan_secrets', input: { nope: 1 } }),
    ).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(await tableCounts(t.db)).toEqual(before);
  });

  it('a model-backed action is refused at enqueue with PROVIDER_NOT_CONFIGURED naming the variables', async () => {
    await t.runtime.registerAgent(
      { id: 'modelled', name: 'Modelled', role: 'writer' },
      {
        actions: {
          write: defineAction({ model: true, input: z.object({ topic: z.string() }), run: () => 'x' }),
        },
      },
    );
    const before = await tableCounts(t.db);
    const refused = t.runtime.executeTask({ agentId: 'modelled', action: 'write', input: { topic: 'a' } });
    await expect(refused).rejects.toMatchObject({ code: 'PROVIDER_NOT_CONFIGURED' });
    await expect(refused).rejects.toThrow(/CAS_LLM_BASE_URL.*CAS_LLM_MODEL/);
    expect(await tableCounts(t.db)).toEqual(before);
    // Deterministic actions of the same agent still run.
    const ping = await t.runtime.executeTask({ agentId: 'modelled', action: 'ping', wait: true });
    expect(ping.status).toBe('succeeded');
  });

  it('analyst.analyze_metrics reports numbers from the task history, with no summary without a provider', async () => {
    await t.runtime.registerAgent({ id: 'measured', name: 'Measured', role: 'qa' });
    for (let index = 0; index < 3; index += 1) {
      await t.runtime.executeTask({ agentId: 'measured', action: 'ping', wait: true });
    }
    const failed = await t.runtime.executeTask({
      agentId: 'measured',
      action: 'fail',
      input: { times: 5 },
      wait: true,
    });
    expect(failed.status).toBe('failed');
    const task = await t.runtime.executeTask({
      agentId: 'analyst',
      action: 'analyze_metrics',
      input: { agentIds: ['measured'] },
      wait: true,
    });
    expect(task.status).toBe('succeeded');
    const report = task.result as {
      agents: Array<Record<string, unknown>>;
      slowestActions: Array<{ agentId: string; action: string; samples: number }>;
      summary: string | null;
    };
    expect(report.summary).toBeNull();
    expect(report.agents).toHaveLength(1);
    expect(report.agents[0]).toMatchObject({
      agentId: 'measured',
      totalRuns: 4,
      succeeded: 3,
      failed: 1,
      errorRate: 0.25,
    });
    expect(report.agents[0]!.p50DurationMs).toEqual(expect.any(Number));
    expect(report.agents[0]!.durationSamples).toBe(4);
    expect(report.slowestActions.map((row) => [row.action, row.samples]).sort()).toEqual([
      ['fail', 1],
      ['ping', 3],
    ]);
  });
});
