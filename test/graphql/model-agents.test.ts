/**
 * The model-backed agents over GraphQL: without a provider, executeTask of a model-backed action is
 * PROVIDER_NOT_CONFIGURED and security.scan_secrets still runs; with the OpenAI double,
 * marketer.create_content streams its text over the taskOutput subscription (SSE) and ends with a
 * schema-valid result, Task.output and Task.tokenUsage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenAiDouble, type OpenAiDouble } from '../doubles/openai.js';
import { describeEachDatabase } from '../support/databases.js';
import { data, errorCodes, gql, startTestServer, type TestServer } from '../server/harness.js';

const EXECUTE = /* GraphQL */ `
  mutation Execute($input: ExecuteTaskInput!) {
    executeTask(input: $input) {
      id
      status
      result
      output
      tokenUsage {
        promptTokens
        completionTokens
        totalTokens
      }
    }
  }
`;

const CONTENT = { title: 'T', body: 'Body text.', hashtags: ['#a'] };

/** Every `data:` payload of an SSE subscription until the stream ends. */
async function sseResults(url: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  return [...text.matchAll(/^data: (\{.*\})$/gm)].map((match) => JSON.parse(match[1]!) as { data?: unknown });
}

describeEachDatabase('model-backed agents over GraphQL', (kind) => {
  describe('without a provider', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(kind);
    });
    afterAll(() => server?.close());

    it('refuses a model-backed action with PROVIDER_NOT_CONFIGURED; scan_secrets runs', async () => {
      const refused = await gql(server.url, EXECUTE, {
        input: { agentId: 'marketer', action: 'create_content', input: { topic: 'x' } },
      });
      expect(errorCodes(refused)).toEqual(['PROVIDER_NOT_CONFIGURED']);
      expect(refused.body.errors?.[0]?.message).toMatch(/CAS_LLM_BASE_URL/);
      const { executeTask } = await data(server.url, EXECUTE, {
        input: { agentId: 'security', action: 'scan_secrets', input: { text: 'nothing secret' }, wait: true },
      });
      expect(executeTask).toMatchObject({
        status: 'SUCCEEDED',
        result: { findings: [] },
        output: null,
        tokenUsage: null,
      });
    });
  });

  describe('with the OpenAI double', () => {
    let server: TestServer;
    let model: OpenAiDouble;
    beforeAll(async () => {
      model = await startOpenAiDouble();
      server = await startTestServer(kind, {
        env: { CAS_LLM_BASE_URL: model.baseUrl, CAS_LLM_MODEL: 'double' },
      });
    });
    afterAll(async () => {
      await server?.close();
      await model?.close();
    });

    it('streams create_content over taskOutput and ends with a schema-valid result', async () => {
      const json = JSON.stringify(CONTENT);
      model.script({
        kind: 'answer',
        pieces: [json.slice(0, 10), json.slice(10)],
        usage: { prompt: 5, completion: 7 },
      });
      const { executeTask } = await data(server.url, EXECUTE, {
        input: { agentId: 'marketer', action: 'create_content', input: { topic: 'x' }, wait: true },
      });
      expect(executeTask).toMatchObject({
        status: 'SUCCEEDED',
        result: CONTENT,
        output: json,
        tokenUsage: { promptTokens: 5, completionTokens: 7, totalTokens: 12 },
      });
      const results = await sseResults(
        server.url,
        'subscription($id: ID!) { taskOutput(taskId: $id) { offset text } }',
        { id: executeTask.id },
      );
      const deltas = results.map(
        (result) => (result.data as { taskOutput: { offset: number; text: string } }).taskOutput,
      );
      expect(deltas.reduce((text, delta) => text.slice(0, delta.offset) + delta.text, '')).toBe(json);
    });
  });
});
