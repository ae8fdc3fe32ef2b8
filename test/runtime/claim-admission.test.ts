import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';

/**
 * What a claim begins, through both claims (cas_claim_tasks, and the one a completion batch
 * carries): every picked task when no limit applies (cas_lock_agents_if_unlimited's fast path), and
 * otherwise what the limits allow: an agent's maxConcurrency, a stopped agent (its task cancelled),
 * a workflow's tasks. Each case fails if the fast path admitted what a limit refuses.
 */
describeEachDatabase('claim admission', (kind) => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await openTestDatabase(kind);
  });
  afterEach(() => t.close());

  const enqueue = async (agentId: string) =>
    (await t.db.query<{ id: string }>(`select id from cas_enqueue_task($1, 'ping', null)`, [agentId]))[0]!.id;

  const claim = (limit: number) =>
    t.db.query<{ id: string; agent_id: string; status: string; lease_token: string }>(
      `select id, agent_id, status, lease_token from cas_claim_tasks(p_worker_id => 'w1', p_limit => $1)`,
      [limit],
    );

  const completeAndClaim = (done: { id: string; lease_token: string }[], limit: number) =>
    t.db.query<{ id: string; agent_id: string; status: string }>(
      `select id, agent_id, status from cas_complete_and_claim_tasks($1::jsonb, 'w1', $2, 30000)`,
      [
        JSON.stringify(done.map((task) => ({ id: task.id, leaseToken: task.lease_token, result: null }))),
        limit,
      ],
    );

  const statusOf = async (id: string) =>
    (await t.db.query<{ status: string }>('select status from cas_tasks where id = $1', [id]))[0]!.status;

  it('begins every picked task when none of their agents has a limit', async () => {
    const ids = [await enqueue('marketer'), await enqueue('analyst'), await enqueue('marketer')];
    const rows = await claim(5);
    expect(rows.map((row) => [row.id, row.status])).toEqual(ids.map((id) => [id, 'running']));
  });

  it("begins no more of an agent's tasks than its maxConcurrency, and passes over the rest", async () => {
    await t.db.query(`update cas_agents set max_concurrency = 1 where id = 'planner'`);
    const [first, second] = [await enqueue('planner'), await enqueue('planner')];
    const free = await enqueue('analyst');
    const rows = await claim(5);
    expect(rows.map((row) => [row.id, row.status])).toEqual([
      [first, 'running'],
      [free, 'running'],
      [second, 'queued'],
    ]);
  });

  it("cancels a stopped agent's task at the claim instead of beginning it", async () => {
    const stoppedTask = await enqueue('tester');
    const plain = await enqueue('analyst');
    // As an unregistering that committed between the enqueue and the claim leaves it.
    await t.db.query(
      `update cas_agent_status set status = 'stopped', started_at = null where agent_id = 'tester'`,
    );
    const rows = await claim(5);
    expect(rows.filter((row) => row.status === 'running').map((row) => row.id)).toEqual([plain]);
    expect(await statusOf(stoppedTask)).toBe('cancelled');
  });

  it("a completion batch's claim keeps an agent's maxConcurrency, its own ended attempt counted out", async () => {
    await t.db.query(`update cas_agents set max_concurrency = 1 where id = 'planner'`);
    await enqueue('planner');
    const [running] = await claim(1);
    const [next, after] = [await enqueue('planner'), await enqueue('planner')];
    const rows = await completeAndClaim([running!], 5);
    expect(rows.map((row) => [row.id, row.status])).toEqual([
      [running!.id, 'succeeded'],
      [next, 'running'],
      [after, 'queued'],
    ]);
  });

  it('a completion batch of unlimited agents begins every task it picks', async () => {
    await enqueue('marketer');
    const [running] = await claim(1);
    const ids = [await enqueue('marketer'), await enqueue('qa')];
    const rows = await completeAndClaim([running!], 5);
    expect(rows.map((row) => [row.id, row.status])).toEqual([
      [running!.id, 'succeeded'],
      ...ids.map((id) => [id, 'running']),
    ]);
  });
});
