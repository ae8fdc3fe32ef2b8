/**
 * Model-backed agents against a local OpenAI-compatible double over real HTTP: streamed deltas reach
 * a taskOutput subscriber before the task completes; cancelling closes the upstream request; 429
 * with Retry-After, a cut connection and a malformed chunk are retried without duplicate text; an
 * invalid JSON answer is retried once with the validation error, then MODEL_OUTPUT_INVALID; token
 * usage lands as metric points of the agent.
 */
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { defineAction } from '../../src/agents/actions.js';
import { runtimeTools } from '../../src/agents/model/tools.js';
import type { Task } from '../../src/domains/task/task.js';
import { z } from 'zod';
import { startOpenAiDouble, type OpenAiDouble } from '../doubles/openai.js';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { until } from '../support/until.js';

const CONTENT = { title: 'Durable agents', body: 'Agents that survive crashes.', hashtags: ['#agents'] };
/** CONTENT as JSON, cut in pieces as a model streams it. */
const pieces = (value: unknown = CONTENT, size = 12) => {
  const text = JSON.stringify(value);
  return Array.from({ length: Math.ceil(text.length / size) }, (_, index) =>
    text.slice(index * size, (index + 1) * size),
  );
};

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describeEachDatabase('model-backed agents', (kind) => {
  let t: TestRuntime;
  let model: OpenAiDouble;
  const createContent = (wait = true) =>
    t.runtime.executeTask({
      agentId: 'marketer',
      action: 'create_content',
      input: { topic: 'durable agents', audience: 'developers' },
      wait,
    });
  const current = async (id: string) => (await t.runtime.getTasks([id]))[0]!;
  const final = (id: string) =>
    until('final task', async () => {
      const task = await current(id);
      return ['succeeded', 'failed', 'cancelled'].includes(task.status) ? task : undefined;
    });

  beforeAll(async () => {
    model = await startOpenAiDouble();
    t = await openTestRuntime(kind, {
      CAS_LLM_BASE_URL: model.baseUrl,
      CAS_LLM_MODEL: 'double-default',
      CAS_LLM_AGENT_MODELS: JSON.stringify({ marketer: 'double-marketer' }),
      CAS_LLM_MAX_RETRIES: '2',
    });
  });
  afterAll(async () => {
    await t?.close();
    await model?.close();
  });

  it('streams the answer to a taskOutput subscriber before the task completes; records usage', async () => {
    const release = gate();
    model.script({
      kind: 'answer',
      pieces: pieces(),
      hold: release.opened,
      holdAfter: 2,
      usage: { prompt: 42, completion: 17 },
    });
    const requestsBefore = model.requests.length;
    const task = await createContent(false);
    let text = '';
    let deltas = 0;
    for await (const event of t.runtime.streamTaskOutput(task.id)) {
      const delta = event.payload as { offset: number; text: string };
      text = text.slice(0, delta.offset) + delta.text;
      deltas += 1;
      if (deltas === 1) {
        // The double holds the rest of the answer: the task cannot have completed.
        expect((await current(task.id)).status).toBe('running');
        release.open();
      }
    }
    const done = await final(task.id);
    expect(done.status).toBe('succeeded');
    expect(done.result).toEqual(CONTENT);
    expect(text).toBe(JSON.stringify(CONTENT));
    expect(done.output).toBe(JSON.stringify(CONTENT));

    const request = model.requests[requestsBefore]!.body;
    expect(request.model).toBe('double-marketer');
    expect(request.stream).toBe(true);
    expect(request.response_format?.type).toBe('json_schema');
    expect(request.response_format?.json_schema?.schema).toMatchObject({
      type: 'object',
      required: ['title', 'body', 'hashtags'],
    });

    const usage = await t.db.query<{ metric_name: string; value: number }>(
      `select metric_name, value from cas_metrics_timeseries
        where agent_id = 'marketer' and tags->>'taskId' = $1 and metric_name like 'llm_%' order by metric_name`,
      [task.id],
    );
    expect(await t.runtime.getTokenUsage([task.id])).toEqual([
      { taskId: task.id, promptTokens: 42, completionTokens: 17, requests: 1 },
    ]);
    expect(usage.map((row) => [row.metric_name, Number(row.value)])).toEqual([
      ['llm_completion_tokens', 17],
      ['llm_prompt_tokens', 42],
    ]);
  });

  it('cancelling mid-stream closes the upstream request', async () => {
    const never = gate();
    model.script({ kind: 'answer', pieces: pieces(), hold: never.opened, holdAfter: 1 });
    const task = await createContent(false);
    await until('first delta', async () => ((await current(task.id)).output ? true : undefined));
    const closed = model.nextEarlyClose();
    await t.runtime.cancelTask(task.id);
    await closed;
    expect((await final(task.id)).status).toBe('cancelled');
    never.open();
  });

  it('a 429 with Retry-After is retried, then succeeds', async () => {
    const before = model.requests.length;
    model.script({ kind: 'status', status: 429, retryAfterSeconds: 0 }, { kind: 'answer', pieces: pieces() });
    const task: Task = await createContent();
    expect(task).toMatchObject({ status: 'succeeded', result: CONTENT, output: JSON.stringify(CONTENT) });
    expect(model.requests.length - before).toBe(2);
  });

  it('a connection cut mid-stream and a malformed chunk are retried with no duplicate text', async () => {
    const before = model.requests.length;
    model.script(
      { kind: 'cut', pieces: pieces().slice(0, 3) },
      { kind: 'malformed', pieces: pieces().slice(0, 2) },
      { kind: 'answer', pieces: pieces() },
    );
    const task = await createContent();
    expect(task).toMatchObject({ status: 'succeeded', result: CONTENT, output: JSON.stringify(CONTENT) });
    expect(model.requests.length - before).toBe(3);
  });

  it('an invalid answer is retried once with the validation error, then fails MODEL_OUTPUT_INVALID', async () => {
    model.script({ kind: 'answer', pieces: ['{"title": 1}'] }, { kind: 'answer', pieces: pieces() });
    const before = model.requests.length;
    const fixed = await createContent();
    expect(fixed).toMatchObject({ status: 'succeeded', result: CONTENT, output: JSON.stringify(CONTENT) });
    const retry = model.requests[before + 1]!.body.messages;
    expect(retry.at(-2)).toMatchObject({ role: 'assistant', content: '{"title": 1}' });
    expect(retry.at(-1)?.content).toMatch(/invalid: .*title/);

    model.script({ kind: 'answer', pieces: ['not json'] }, { kind: 'answer', pieces: ['{"title": "x"}'] });
    const failed = await createContent();
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatchObject({ code: 'MODEL_OUTPUT_INVALID' });
  });

  it('analyst.analyze_metrics adds a model-written summary when a provider is configured', async () => {
    model.script({ kind: 'answer', pieces: ['All ', 'good.'] });
    const task = await t.runtime.executeTask({
      agentId: 'analyst',
      action: 'analyze_metrics',
      input: { agentIds: ['marketer'] },
      wait: true,
    });
    expect(task.status).toBe('succeeded');
    expect(task.result).toMatchObject({ summary: 'All good.', agents: [{ agentId: 'marketer' }] });
    expect(task.output).toBe('All good.');
    expect(model.requests.at(-1)!.body.model).toBe('double-default');
  });

  it('planner.plan: a step naming an unknown action is sent back once, then the valid plan is kept', async () => {
    const step = (action: string) => ({
      id: 's1',
      agentId: 'developer',
      action,
      input: { spec: 'x', language: 'ts' },
      dependsOn: [],
    });
    model.script(
      { kind: 'answer', pieces: [JSON.stringify({ steps: [step('write_poetry')] })] },
      { kind: 'answer', pieces: [JSON.stringify({ steps: [step('write_code')] })] },
    );
    const before = model.requests.length;
    const task = await t.runtime.executeTask({
      agentId: 'planner',
      action: 'plan',
      input: { goal: 'ship it' },
      wait: true,
    });
    expect(task).toMatchObject({
      status: 'succeeded',
      result: { steps: [{ agentId: 'developer', action: 'write_code' }] },
    });
    expect(model.requests[before + 1]!.body.messages.at(-1)?.content).toMatch(
      /agent "developer" has no action "write_poetry"/,
    );
  });

  it("planner.plan's result runs as a workflow as it is", async () => {
    const plan = {
      steps: [
        {
          id: 'scan',
          agentId: 'security',
          action: 'scan_secrets',
          input: { text: 'no secrets here' },
          dependsOn: [],
        },
        { id: 'announce', agentId: 'marketer', action: 'ping', input: {}, dependsOn: ['scan'] },
      ],
    };
    model.script({ kind: 'answer', pieces: [JSON.stringify(plan)] });
    const planned = await t.runtime.executeTask({
      agentId: 'planner',
      action: 'plan',
      input: { goal: 'check for secrets, then announce' },
      wait: true,
    });
    expect(planned.status).toBe('succeeded');
    const run = await t.runtime.executeWorkflow({ definition: planned.result });
    await vi.waitFor(
      async () => expect((await t.runtime.getWorkflowRuns([run.id]))[0]?.status).toBe('succeeded'),
      { timeout: 60_000, interval: 100 },
    );
    const [steps] = await t.runtime.getWorkflowSteps([run.id]);
    expect(steps!.map((step) => [step.id, step.status])).toEqual([
      ['scan', 'succeeded'],
      ['announce', 'succeeded'],
    ]);
  });

  it('tools: the model delegates to security.scan_secrets through ctx.call, then answers', async () => {
    const key = ['AKIA', 'Q7RZ3XK2M5N4P6T2'].join('');
    t.runtime.defineActions('qa', {
      audit: defineAction({
        model: true,
        input: z.object({ text: z.string() }),
        run: (input, ctx) =>
          ctx.model!.generateText({
            name: 'audit',
            prompt: `Audit: ${input.text}`,
            tools: runtimeTools(ctx),
          }),
      }),
    });
    model.script(
      {
        kind: 'tool_calls',
        calls: [
          {
            id: 'call_1',
            name: 'delegate',
            arguments: JSON.stringify({
              agentId: 'security',
              action: 'scan_secrets',
              input: { text: `k=${key}` },
            }),
          },
        ],
      },
      { kind: 'answer', pieces: ['Found ', 'one key.'] },
    );
    const before = model.requests.length;
    const task = await t.runtime.executeTask({
      agentId: 'qa',
      action: 'audit',
      input: { text: `k=${key}` },
      wait: true,
    });
    expect(task).toMatchObject({ status: 'succeeded', result: 'Found one key.', output: 'Found one key.' });
    const first = model.requests[before]!.body as { tools?: Array<{ function: { name: string } }> };
    expect(first.tools?.map((tool) => tool.function.name)).toEqual([
      'delegate',
      'get_state',
      'get_metrics',
      'get_logs',
      'list_tasks',
    ]);
    const toolMessage = model.requests[before + 1]!.body.messages.find((message) => message.role === 'tool');
    expect(toolMessage?.content).toContain('aws-access-key-id');
    expect(toolMessage?.content).not.toContain(key);
    const children = await t.db.query<{ agent_id: string; action: string; status: string }>(
      'select agent_id, action, status from cas_tasks where parent_id = $1',
      [task.id],
    );
    expect(children).toEqual([{ agent_id: 'security', action: 'scan_secrets', status: 'succeeded' }]);
  });

  it("tools: the model reads its own agent's metrics, logs and tasks, not another agent's", async () => {
    const noted = defineAction({
      input: z.object({ marker: z.string() }),
      run: (input, ctx) => ctx.log('info', input.marker),
    });
    t.runtime.defineActions('engineer', {
      note: noted,
      inspect: defineAction({
        model: true,
        input: z.unknown(),
        run: (_input, ctx) =>
          ctx.model!.generateText({ name: 'inspect', prompt: 'How am I doing?', tools: runtimeTools(ctx) }),
      }),
    });
    t.runtime.defineActions('tester', { note: noted });
    await t.runtime.executeTask({
      agentId: 'engineer',
      action: 'note',
      input: { marker: 'engineer-marker' },
      wait: true,
    });
    await t.runtime.executeTask({
      agentId: 'tester',
      action: 'note',
      input: { marker: 'tester-marker' },
      wait: true,
    });
    model.script(
      {
        kind: 'tool_calls',
        calls: [
          { id: 'm', name: 'get_metrics', arguments: '{}' },
          { id: 'l', name: 'get_logs', arguments: JSON.stringify({ first: 10 }) },
          { id: 't', name: 'list_tasks', arguments: JSON.stringify({ statuses: ['succeeded'] }) },
        ],
      },
      { kind: 'answer', pieces: ['All ', 'good.'] },
    );
    const before = model.requests.length;
    const task = await t.runtime.executeTask({ agentId: 'engineer', action: 'inspect', wait: true });
    expect(task).toMatchObject({ status: 'succeeded', result: 'All good.' });
    const toolResults = Object.fromEntries(
      model.requests[before + 1]!.body.messages.filter((message) => message.role === 'tool').map(
        (message) => [
          (message as { tool_call_id?: string }).tool_call_id,
          (JSON.parse(message.content) as { result: unknown }).result,
        ],
      ),
    );
    expect(toolResults.m).toMatchObject({ agentId: 'engineer', totalRuns: 1, succeeded: 1 });
    expect(JSON.stringify(toolResults.l)).toContain('engineer-marker');
    expect(JSON.stringify(toolResults.l)).not.toContain('tester-marker');
    expect(toolResults.t).toEqual([expect.objectContaining({ action: 'note', status: 'succeeded' })]);
  });
});
