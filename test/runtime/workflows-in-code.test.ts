/**
 * Workflows in code: defineWorkflow files loaded from a folder (CAS_WORKFLOWS_DIR), listed, and
 * started by id; a broken file stops loading with a message naming it.
 */
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { loadWorkflows } from '../../src/domains/workflow/define.js';
import { describeEachDatabase } from '../support/databases.js';
import { openTestRuntime, type TestRuntime } from '../support/runtime.js';
import { ROOT } from '../support/spawned.js';

describeEachDatabase('workflows in code', (kind) => {
  let t: TestRuntime;
  beforeAll(async () => {
    const workflows = await loadWorkflows({
      dir: 'test/support/fixtures/workflows',
      explicit: true,
      cwd: ROOT,
    });
    t = await openTestRuntime(kind, {}, { workflows });
  });
  afterAll(() => t?.close());

  it('lists the loaded workflows and starts one by id with its input', async () => {
    expect(t.runtime.listWorkflows().map((workflow) => workflow.id)).toEqual(['release-check']);
    const run = await t.runtime.executeWorkflow({
      workflowId: 'release-check',
      input: { notes: 'token=AKIAIOSFODNN7EXAMPLE' },
    });
    await vi.waitFor(
      async () => expect((await t.runtime.getWorkflowRuns([run.id]))[0]?.status).toBe('succeeded'),
      { timeout: 60_000, interval: 100 },
    );
    const [steps] = await t.runtime.getWorkflowSteps([run.id]);
    expect(steps!.find((step) => step.id === 'scan')!.result).toMatchObject({
      findings: [expect.objectContaining({ rule: 'aws-access-key-id' })],
    });
  });

  it('refuses an unknown id, and both or neither of definition and workflowId, writing nothing', async () => {
    const before = (await t.runtime.listWorkflowRuns({ first: 100 })).items.length;
    await expect(t.runtime.executeWorkflow({ workflowId: 'nope' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(t.runtime.executeWorkflow({})).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(
      t.runtime.executeWorkflow({
        workflowId: 'release-check',
        definition: { steps: [{ id: 'a', agentId: 'marketer', action: 'ping' }] },
      }),
    ).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    expect((await t.runtime.listWorkflowRuns({ first: 100 })).items.length).toBe(before);
  });
});

it('a broken workflow file stops loading, naming the file and the problem', async () => {
  await expect(
    loadWorkflows({ dir: 'test/support/fixtures/bad-workflows', explicit: true, cwd: ROOT }),
  ).rejects.toThrow(
    /workflow file test\/support\/fixtures\/bad-workflows\/broken\.ts has an invalid definition: steps\.0\.id/,
  );
  await expect(loadWorkflows({ dir: 'no/such/folder', explicit: true, cwd: ROOT })).rejects.toThrow(
    /CAS_WORKFLOWS_DIR is "no\/such\/folder", which does not exist/,
  );
});
