/**
 * Opt-in: the model-backed agents against a real OpenAI-compatible endpoint. Runs only when
 * CAS_LLM_BASE_URL and CAS_LLM_MODEL are set in the test's environment (CAS_LLM_API_KEY if the
 * provider needs one), e.g. with Ollama:
 *   CAS_LLM_BASE_URL=http://127.0.0.1:11434/v1 CAS_LLM_MODEL=llama3.1 npx vitest run test/agents/model-live.test.ts
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';

const { CAS_LLM_BASE_URL, CAS_LLM_MODEL, CAS_LLM_API_KEY } = process.env;
const configured = Boolean(CAS_LLM_BASE_URL && CAS_LLM_MODEL);

describe.skipIf(!configured)('model-backed agents against a real endpoint', () => {
  let t: TestRuntime;
  beforeAll(async () => {
    t = await openTestRuntime('pglite', {
      CAS_LLM_BASE_URL: CAS_LLM_BASE_URL!,
      CAS_LLM_MODEL: CAS_LLM_MODEL!,
      ...(CAS_LLM_API_KEY ? { CAS_LLM_API_KEY } : {}),
      CAS_WAIT_TIMEOUT_MS: '300000',
    });
  });
  afterAll(() => t?.close());

  it(
    'marketer.create_content streams and ends with a schema-valid result',
    { timeout: 300_000 },
    async () => {
      const task = await t.runtime.executeTask({
        agentId: 'marketer',
        action: 'create_content',
        input: { topic: 'durable agent runtimes', audience: 'developers', channel: 'blog' },
        wait: true,
      });
      expect(task.status).toBe('succeeded');
      expect(task.result).toMatchObject({ title: expect.any(String), body: expect.any(String) });
      expect(task.output?.length).toBeGreaterThan(0);
    },
  );
});
