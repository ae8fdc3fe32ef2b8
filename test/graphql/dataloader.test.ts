/**
 * The DataLoader promise: the agents overview costs the same number of database round trips for
 * 8 agents as for 200, because each nested field is one batched runtime call per request; and
 * overviews asked for at the same moment share those calls (src/graphql/shared-reads.ts).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../support/databases.js';
import { data, startTestServer, type TestServer } from '../server/harness.js';

const OVERVIEW = /* GraphQL */ `
  {
    agents {
      status
      metrics {
        totalRuns
      }
      state {
        version
      }
      recentTasks(first: 5) {
        id
        agent {
          id
        }
      }
    }
  }
`;

interface Overview {
  agents: {
    status: string;
    metrics: { totalRuns: number };
    state: { version: number } | null;
    recentTasks: { id: string; agent: { id: string } }[];
  }[];
}

describeEachDatabase('DataLoader round trips', (kind) => {
  let server: TestServer;

  beforeAll(async () => {
    // No worker: nothing polls the database in the background while round trips are counted.
    server = await startTestServer(kind, { env: { CAS_WORKERS: '0' } });
  });
  afterAll(() => server?.close());

  /** Round trips of one overview request, and its answer. */
  async function measure(): Promise<{ trips: number; overview: Overview }> {
    server.queries.count = 0;
    const overview = await data<Overview>(server.url, OVERVIEW);
    return { trips: server.queries.count, overview };
  }

  it('is the same small number for 8 agents and for 200', async () => {
    const { runtime } = server;
    // Some state and tasks, so every nested field has something to load.
    await runtime.updateAgentState('marketer', { campaign: 'spring' });
    for (const agentId of ['marketer', 'analyst', 'qa']) {
      await runtime.executeTask({ agentId, action: 'ping' });
    }

    const eight = await measure();
    expect(eight.overview.agents).toHaveLength(8);
    const marketer = eight.overview.agents.find((agent) => agent.recentTasks[0]?.agent.id === 'marketer');
    expect(marketer?.state?.version).toBe(1);
    expect(marketer?.recentTasks).toHaveLength(1);

    for (let i = 0; i < 192; i++) {
      const id = `bulk-${String(i).padStart(3, '0')}`;
      await runtime.registerAgent({ id, name: `Bulk ${i}`, role: 'bulk' });
      if (i % 10 === 0) {
        await runtime.updateAgentState(id, { i });
        await runtime.executeTask({ agentId: id, action: 'ping' });
      }
    }

    const twoHundred = await measure();
    expect(twoHundred.overview.agents).toHaveLength(200);
    const withState = twoHundred.overview.agents.filter((agent) => agent.state !== null);
    expect(withState).toHaveLength(1 + 20);
    const withTasks = twoHundred.overview.agents.filter((agent) => agent.recentTasks.length > 0);
    expect(withTasks).toHaveLength(3 + 20);
    for (const agent of withTasks) expect(agent.recentTasks[0]!.agent.id).toMatch(/^[a-z]/);

    console.log(
      `[dataloader ${kind}] round trips: 8 agents → ${eight.trips}, 200 agents → ${twoHundred.trips}`,
    );
    expect(twoHundred.trips).toBe(eight.trips);
    // listAgents, metrics, states, recent tasks: one each (no per-agent query).
    expect(eight.trips).toBeLessThanOrEqual(5);
  });

  it('overviews asked for at the same moment share their round trips and each get the whole answer', async () => {
    const single = await measure();
    server.queries.count = 0;
    const overviews = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const response = await server.app.yoga.fetch('http://localhost/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: OVERVIEW }),
        });
        return ((await response.json()) as { data: Overview }).data;
      }),
    );
    console.log(
      `[dataloader ${kind}] 20 overviews at once: ${server.queries.count} round trips (one: ${single.trips})`,
    );
    for (const overview of overviews) expect(overview).toEqual(single.overview);
    // Unshared, 20 overviews cost 20 times one; shared, about one's worth.
    expect(server.queries.count).toBeLessThan(2 * single.trips);
  });
});
