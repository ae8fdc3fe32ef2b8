/**
 * Agents in code: every file in the agents folder default-exports a defineAgent(...) result; a
 * file that cannot be used stops start-up with a message naming it. Good folders are registered
 * at start and run on the real database.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentLoadError, loadAgents, type LoadedAgent } from '../../src/agents/loader.js';
import { TaskFailure } from '../../src/runtime/handlers.js';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, tableCounts, type TestRuntime } from '../support/runtime.js';
import { ROOT } from '../support/spawned.js';

/** Folders are made inside the repository (git-ignored .cas/), where 'cas-runtime-api/sdk' resolves. */
const FOLDERS = path.join(ROOT, '.cas', 'test-agents');
const IMPORT = `import { defineAction, defineAgent, z } from 'cas-runtime-api/sdk';\n`;

/** A fresh agents folder holding `files`; its path relative to the repository root. */
async function agentsFolder(files: Record<string, string>): Promise<string> {
  const dir = path.join(FOLDERS, randomUUID());
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return path.relative(ROOT, dir);
}

const load = (dir: string, explicit = true) => loadAgents({ dir, explicit, cwd: ROOT });

/** The AgentLoadError loading `files` fails with. */
async function loadError(files: Record<string, string>): Promise<{ message: string; dir: string }> {
  const dir = await agentsFolder(files);
  const error = await load(dir).then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(AgentLoadError);
  const { message } = error as AgentLoadError;
  // One or two lines, as start-up prints them.
  expect(message.split('\n').length).toBeLessThanOrEqual(2);
  return { message, dir };
}

const agentFile = (
  id: string,
  actions = `{ hello: defineAction({ input: z.object({}), run: () => 'hi' }) }`,
) =>
  `${IMPORT}export default defineAgent({ id: '${id}', name: '${id}', role: 'test', actions: ${actions} });\n`;

afterAll(() => rm(FOLDERS, { recursive: true, force: true }));

describe('loading the agents folder', () => {
  it('a file with a syntax error is named', async () => {
    const { message, dir } = await loadError({
      'broken.ts': `${IMPORT}export default defineAgent({ id: 'broken', name: 'B', role: 'r', actions: {} ;\n`,
    });
    expect(message).toContain(`agent file ${dir}/broken.ts failed to load: `);
  });

  it('a file that throws when imported is named, with its error', async () => {
    const { message, dir } = await loadError({
      'a-good.ts': agentFile('good'),
      'throws.ts': `${IMPORT}throw new Error('no API key for the model');\n`,
    });
    expect(message).toBe(`agent file ${dir}/throws.ts failed to load: no API key for the model`);
  });

  it('a file without a default export', async () => {
    const { message, dir } = await loadError({ 'named.ts': `${IMPORT}export const agent = 1;\n` });
    expect(message).toMatch(new RegExp(`^agent file ${dir}/named.ts has no default export\nend it with: `));
  });

  it('a default export that is not a defineAgent result', async () => {
    const { message, dir } = await loadError({
      'plain.js': `export default { id: 'plain', name: 'P', role: 'r', actions: {} };\n`,
    });
    expect(message).toContain(
      `agent file ${dir}/plain.js: its default export is not a defineAgent(...) result`,
    );
  });

  it('two files defining one agent id name both files', async () => {
    const { message, dir } = await loadError({ 'one.ts': agentFile('twin'), 'two.ts': agentFile('twin') });
    expect(message).toBe(
      `agent files ${dir}/one.ts and ${dir}/two.ts both define the agent "twin"\ngive each agent its own id`,
    );
  });

  it('an input schema with no JSON Schema (a date)', async () => {
    const { message, dir } = await loadError({
      'dated.ts': agentFile(
        'dated',
        `{ at: defineAction({ input: z.object({ when: z.date() }), run: () => 1 }) }`,
      ),
    });
    expect(message).toBe(
      `agent file ${dir}/dated.ts has an invalid definition: action "at": its input schema has no JSON Schema: Date cannot be represented in JSON Schema`,
    );
  });

  it('an output schema with a transform; an input transform is fine', async () => {
    const { message } = await loadError({
      'shaped.ts': agentFile(
        'shaped',
        `{ go: defineAction({ input: z.string().transform((s) => s.length), output: z.number().transform(String), run: (n) => n }) }`,
      ),
    });
    expect(message).toContain(
      'action "go": its output schema has no JSON Schema: Transforms cannot be represented in JSON Schema',
    );
  });

  it('an action named like a diagnostic', async () => {
    const { message } = await loadError({
      'clash.ts': agentFile('clash', `{ ping: defineAction({ input: z.unknown(), run: () => 'mine' }) }`),
    });
    expect(message).toContain(
      'has an invalid definition: actions.ping: "ping" is a diagnostic action every agent has (ping, wait, fail); choose another name',
    );
  });

  it('an invalid id, a misspelt field and an action without input schema, all listed', async () => {
    const { message } = await loadError({
      'sloppy.ts': `${IMPORT}export default defineAgent({ id: 'Not A Slug', name: 'S', role: 'r', descripton: 'x', actions: { go: { run: () => 1 } } } as never);\n`,
    });
    expect(message).toContain('id: must be 1-63 characters');
    expect(message).toContain('Unrecognized key: "descripton"');
    expect(message).toContain('actions.go.input: must be a zod schema');
  });

  it('a missing folder: an error when CAS_AGENTS_DIR names it, no agents when it is the default', async () => {
    const missing = path.join('.cas', 'test-agents', `missing-${randomUUID()}`);
    await expect(load(missing, true)).rejects.toThrow(
      new AgentLoadError(
        `CAS_AGENTS_DIR is "${missing}", which does not exist (${path.join(ROOT, missing)})\ncreate it, or fix or unset CAS_AGENTS_DIR`,
      ),
    );
    await expect(load(missing, false)).resolves.toEqual([]);
  });

  it('loads *.ts and *.js only, not declarations, tests or other files, in name order', async () => {
    const dir = await agentsFolder({
      'zeta.ts': agentFile('zeta'),
      'alpha.js': agentFile('alpha'),
      'types.d.ts': 'export type Nothing = never;\n',
      'alpha.test.ts': 'throw new Error("a test is not an agent");\n',
      'README.md': '# not code\n',
      'notes.json': '{}',
    });
    const agents = await load(dir);
    expect(agents.map((agent) => [path.basename(agent.file), agent.registration.id])).toEqual([
      ['alpha.js', 'alpha'],
      ['zeta.ts', 'zeta'],
    ]);
  });

  it('the documented example folder loads: writer and reviewer', async () => {
    const agents = await load('examples/agents');
    expect(agents.map((agent) => agent.registration.id)).toEqual(['reviewer', 'writer']);
  });
});

const GOOD_AGENT = `${IMPORT}
export default defineAgent({
  id: 'greeter',
  name: 'Greeter',
  role: 'support',
  description: 'Greets people.',
  maxConcurrency: 3,
  actions: {
    greet: defineAction({
      description: 'Says hello to someone.',
      input: z.object({ name: z.string().min(1), excited: z.boolean().default(false) }),
      output: z.object({ greeting: z.string() }),
      run: ({ name, excited }) => ({ greeting: 'Hello, ' + name + (excited ? '!' : '.') }),
    }),
    misreport: defineAction({
      input: z.object({}),
      output: z.object({ greeting: z.string() }),
      run: () => ({ greeting: 42 }) as never,
    }),
    echo: (input) => input,
  },
});
`;

describeEachDatabase('agents loaded from a folder', (kind) => {
  let t: TestRuntime;
  let loaded: LoadedAgent[];

  beforeAll(async () => {
    loaded = await load(await agentsFolder({ 'greeter.ts': GOOD_AGENT }));
    t = await openTestRuntime(kind, {}, { agents: loaded });
  });
  afterAll(() => t?.close());

  it('are registered at start, with their actions', async () => {
    const agent = await t.runtime.getAgentStatus('greeter');
    expect(agent).toMatchObject({
      id: 'greeter',
      name: 'Greeter',
      role: 'support',
      description: 'Greets people.',
      maxConcurrency: 3,
      status: 'idle',
    });
    const actions = t.runtime.describeActions('greeter');
    expect(actions.map((action) => action.name)).toEqual([
      'echo',
      'fail',
      'greet',
      'misreport',
      'ping',
      'wait',
    ]);
    expect(actions.find((action) => action.name === 'greet')).toEqual({
      name: 'greet',
      description: 'Says hello to someone.',
      inputSchema: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: { name: { type: 'string', minLength: 1 }, excited: { type: 'boolean', default: false } },
        required: ['name'],
      },
      outputSchema: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: { greeting: { type: 'string' } },
        required: ['greeting'],
        additionalProperties: false,
      },
    });
    expect(actions.find((action) => action.name === 'echo')).toEqual({
      name: 'echo',
      description: null,
      inputSchema: null,
      outputSchema: null,
    });
  });

  it('run their actions, with input normalised by the schema', async () => {
    const task = await t.runtime.executeTask({
      agentId: 'greeter',
      action: 'greet',
      input: { name: 'Ada' },
      wait: true,
    });
    expect(task).toMatchObject({ status: 'succeeded', input: { name: 'Ada', excited: false } });
    expect(task.result).toEqual({ greeting: 'Hello, Ada.' });
  });

  it('refuse input that fails the schema with BAD_USER_INPUT, writing nothing', async () => {
    const before = await tableCounts(t.db);
    await expect(
      t.runtime.executeTask({ agentId: 'greeter', action: 'greet', input: { name: 7 } }),
    ).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('name') });
    expect(await tableCounts(t.db)).toEqual(before);
  });

  it('fail a result that does not match the output schema: INVALID_RESULT, not retried', async () => {
    const task = await t.runtime.executeTask({
      agentId: 'greeter',
      action: 'misreport',
      input: {},
      maxAttempts: 3,
      wait: true,
    });
    expect(task).toMatchObject({ status: 'failed', attempts: 1, result: null });
    expect(task.error).toMatchObject({ code: 'INVALID_RESULT', retryable: false });
    expect(task.error!.message).toContain('result does not match the output schema: greeting:');
  });

  it('keep the diagnostics', async () => {
    const task = await t.runtime.executeTask({ agentId: 'greeter', action: 'ping', wait: true });
    expect(task).toMatchObject({ status: 'succeeded', result: { pong: true } });
  });

  it('share the runtime’s classes: a TaskFailure from the SDK is the runtime’s', async () => {
    const sdk = await import('cas-runtime-api/sdk');
    expect(sdk.TaskFailure).toBe(TaskFailure);
  });
});
