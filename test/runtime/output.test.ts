/**
 * Streamed task output (ctx.output → Task.output, taskOutput): deltas reach a subscriber before the
 * task completes, writes are coalesced, a cursor resumes the stream, and neither a retried attempt
 * nor a replayed durable run duplicates text.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventCursor, type AgentEvent } from '../../src/domains/event/event.js';
import type { TaskHandler } from '../../src/runtime/handlers.js';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';

interface Delta {
  offset: number;
  text: string;
}
const deltaOf = (event: AgentEvent) => event.payload as unknown as Delta;
/** Applies deltas as a client does: output.slice(0, offset) + text (offsets in code points). */
const splice = (deltas: readonly Delta[]) =>
  deltas.reduce((text, delta) => [...text].slice(0, delta.offset).join('') + delta.text, '');

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describeEachDatabase('task output', (kind) => {
  let t: TestRuntime;
  const define = (name: string, handler: TaskHandler) =>
    t.runtime.defineActions('developer', { [name]: handler });
  const outputEvents = async (taskId: string) =>
    (await t.runtime.getEventHistory({ taskId, types: ['task_output'], first: 500 })).items;

  beforeAll(async () => {
    t = await openTestRuntime(kind);
  });
  afterAll(() => t.close());

  it('streams deltas to a subscriber before the task completes, then ends with the task', async () => {
    const second = gate();
    define('stream', async (_input, ctx) => {
      ctx.output('Hello');
      await second.opened;
      ctx.output(', world ✓');
      return { done: true };
    });
    const task = await t.runtime.executeTask({ agentId: 'developer', action: 'stream' });
    const received: AgentEvent[] = [];
    for await (const event of t.runtime.streamTaskOutput(task.id)) {
      received.push(event);
      if (received.length === 1) {
        // The handler is still held at the gate: the task cannot have completed yet.
        const [now] = await t.runtime.getTasks([task.id]);
        expect(now?.status).toBe('running');
        expect(now?.output).toBe('Hello');
        second.open();
      }
    }
    expect(received.map(deltaOf)).toEqual([
      { offset: 0, text: 'Hello', attempt: 1 },
      { offset: 5, text: ', world ✓', attempt: 1 },
    ]);
    const [done] = await t.runtime.getTasks([task.id]);
    expect(done).toMatchObject({ status: 'succeeded', output: 'Hello, world ✓' });

    // Resumed from the first delta's cursor: only the rest.
    const rest: AgentEvent[] = [];
    for await (const event of t.runtime.streamTaskOutput(task.id, { after: eventCursor(received[0]!) }))
      rest.push(event);
    expect(rest.map((event) => deltaOf(event).text)).toEqual([', world ✓']);
  });

  it('coalesces many small deltas into a few writes, losing none', async () => {
    define('chatty', async (_input, ctx) => {
      for (let index = 0; index < 300; index += 1) {
        ctx.output(`${index} `);
        if (index % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return null;
    });
    const task = await t.runtime.executeTask({ agentId: 'developer', action: 'chatty', wait: true });
    const expected = Array.from({ length: 300 }, (_, index) => `${index} `).join('');
    expect(task.output).toBe(expected);
    const events = await outputEvents(task.id);
    expect(events.length).toBeLessThan(30);
    expect(splice(events.map(deltaOf))).toBe(expected);
  });

  it('a retried attempt rewrites from where it differs, never duplicating text', async () => {
    define('cut', (_input, ctx) => {
      if (ctx.attempt === 1) {
        ctx.output('The answer is fo');
        throw new Error('connection cut mid-stream');
      }
      ctx.output('The answer is forty-two.');
      return null;
    });
    const task = await t.runtime.executeTask({
      agentId: 'developer',
      action: 'cut',
      maxAttempts: 2,
      retryDelayMs: 0,
      wait: true,
    });
    expect(task.status).toBe('succeeded');
    expect(task.output).toBe('The answer is forty-two.');
    const deltas = (await outputEvents(task.id)).map(deltaOf);
    expect(deltas).toEqual([
      { offset: 0, text: 'The answer is fo', attempt: 1 },
      { offset: 16, text: 'rty-two.', attempt: 2 },
    ]);
    expect(splice(deltas)).toBe('The answer is forty-two.');
  });

  it('a run replayed after a durable sleep re-emits its text without writing it again', async () => {
    define('replayed', async (_input, ctx) => {
      const text = await ctx.step('draft', () => 'draft text. ');
      ctx.output(text);
      await ctx.sleep(20);
      ctx.output('final text.');
      return null;
    });
    const task = await t.runtime.executeTask({ agentId: 'developer', action: 'replayed', wait: true });
    expect(task.status).toBe('succeeded');
    expect(task.output).toBe('draft text. final text.');
    expect((await outputEvents(task.id)).map((event) => deltaOf(event).text)).toEqual([
      'draft text. ',
      'final text.',
    ]);
  });
});
