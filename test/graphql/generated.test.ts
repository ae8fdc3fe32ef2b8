/**
 * The checked-in artefacts match the code: schema.graphql (npm run schema:check) and the typed
 * client of examples/gql/ (npm run codegen:check), and the example client runs against the server.
 */
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runExample } from '../../examples/run-task.js';
import { staleCodegenFiles } from '../../scripts/codegen-check.js';
import { describeEachDatabase } from '../support/databases.js';
import { reportingStalls, startTestServer, type TestServer } from '../server/harness.js';
import { runCommand } from '../support/processes.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

it('schema.graphql is what the Pothos schema prints (schema:check)', { timeout: 120_000 }, async () => {
  // In a process of its own: the check must see the same graphql module as the schema builder.
  const check = await runCommand(path.join(ROOT, 'node_modules', '.bin', 'tsx'), [
    'scripts/print-schema.ts',
    '--check',
  ]);
  expect(check, check.stderr).toMatchObject({ code: 0 });
  expect(check.stdout).toContain('schema.graphql is up to date');
});

// Code generation is CPU-bound work of several seconds; on a loaded machine, many times that.
it(
  'examples/gql/ is what codegen generates from schema.graphql (codegen:check)',
  { timeout: 120_000 },
  async () => {
    expect(await staleCodegenFiles()).toEqual([]);
  },
);

describeEachDatabase('the example typed client', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind);
  });
  afterAll(() => server?.close());

  it('lists the agents and runs a ping task to its result', async () => {
    const lines: string[] = [];
    const task = await reportingStalls(
      server,
      runExample(server.url, 'tester', (line) => lines.push(line)),
    );
    expect(task).toMatchObject({ status: 'SUCCEEDED', result: { pong: true }, agent: { id: 'tester' } });
    expect(lines[0]).toBe('8 agents:');
    expect(lines.slice(1, 9).map((line) => line.trim().split(/\s+/)[0])).toEqual([
      'analyst',
      'developer',
      'engineer',
      'marketer',
      'planner',
      'qa',
      'security',
      'tester',
    ]);
    expect(lines.at(-1)).toBe('result: {"pong":true}');
  });
});
