import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase, openTestDatabase, type TestDatabase } from '../support/databases.js';

/**
 * cas_list_events and cas_list_logs read without a filter through a query planned once
 * (supabase/migrations/20261216000100_cas_unfiltered_log_reads_planned_once.sql) and with any
 * filter through the query they build: both give the rows the log holds after the position, in
 * order, up to the limit, and refuse a position that retention has pruned.
 */
describeEachDatabase('log reads', (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase(kind);
    const agents = ['marketer', 'analyst', 'planner'];
    await t.db.query(
      `select count(*) from generate_series(1, 30) g
       cross join lateral cas_append_events(
         array[case when g % 3 = 0 then 'state_updated' else 'task_progress' end],
         array[($1::text[])[1 + g % 3]], array[null::uuid], array[jsonb_build_object('g', g)])`,
      [agents],
    );
    await t.db.query(
      `insert into cas_agent_logs (agent_id, level, message)
       select ($1::text[])[1 + g % 3], case when g % 2 = 0 then 'info' else 'warn' end, 'line ' || g
       from generate_series(1, 30) g`,
      [agents],
    );
  });
  afterAll(() => t.close());

  const seqs = (rows: { seq: string | number }[]) => rows.map((row) => Number(row.seq));
  const ids = (rows: { id: string | number }[]) => rows.map((row) => Number(row.id));

  it('reads the events after a position, in order, up to the limit, without a filter', async () => {
    const all = seqs(await t.db.query('select seq from cas_agent_events order by seq'));
    expect(all.length).toBeGreaterThanOrEqual(30);
    const middle = all[10]!;
    for (const [after, limit] of [
      [null, 5],
      [0, 1000],
      [middle, 7],
      [middle, 0],
      [all.at(-1)!, 10],
    ] as const) {
      const read = seqs(
        await t.db.query('select seq from cas_list_events(p_after_seq => $1, p_limit => $2)', [after, limit]),
      );
      expect(read).toEqual(all.filter((seq) => seq > (after ?? 0)).slice(0, limit));
    }
  });

  it('reads the events of a filter as before', async () => {
    const all = await t.db.query<{ seq: string; event_type: string; agent_id: string }>(
      'select seq, event_type, agent_id from cas_agent_events order by seq',
    );
    const states = seqs(
      await t.db.query(`select seq from cas_list_events(p_types => array['state_updated'], p_limit => 100)`),
    );
    expect(states).toEqual(seqs(all.filter((event) => event.event_type === 'state_updated')));
    const analyst = seqs(
      await t.db.query(
        `select seq from cas_list_events(p_agent_id => 'analyst', p_after_seq => $1, p_limit => 3)`,
        [all[5]!.seq],
      ),
    );
    expect(analyst).toEqual(
      seqs(
        all.filter((event) => event.agent_id === 'analyst' && Number(event.seq) > Number(all[5]!.seq)),
      ).slice(0, 3),
    );
  });

  it('reads the log entries after a position, in order, up to the limit, without a filter', async () => {
    const all = ids(await t.db.query('select id from cas_agent_logs order by id'));
    for (const [after, limit] of [
      [0, 1000],
      [all[3]!, 4],
      [all.at(-1)!, 10],
    ] as const) {
      const read = ids(
        await t.db.query('select id from cas_list_logs(p_after_id => $1, p_limit => $2)', [after, limit]),
      );
      expect(read).toEqual(all.filter((id) => id > after).slice(0, limit));
    }
    // Without a position, and newest first: the query they build.
    expect(ids(await t.db.query('select id from cas_list_logs(p_limit => 3)'))).toEqual(all.slice(0, 3));
    expect(
      ids(
        await t.db.query(
          'select id from cas_list_logs(p_after_id => $1, p_limit => 3, p_newest_first => true)',
          [all[10]!],
        ),
      ),
    ).toEqual(
      all
        .filter((id) => id < all[10]!)
        .reverse()
        .slice(0, 3),
    );
    expect(
      ids(
        await t.db.query(
          `select id from cas_list_logs(p_levels => array['warn'], p_after_id => 0, p_limit => 100)`,
        ),
      ),
    ).toHaveLength(15);
  });

  it('refuses a position that retention pruned, with or without a filter', async () => {
    const [first] = seqs(await t.db.query('select seq from cas_agent_events order by seq limit 1'));
    const [firstLog] = ids(await t.db.query('select id from cas_agent_logs order by id limit 1'));
    await t.db.query(`update cas_retention set pruned_through = $1 where log = 'events'`, [first! + 5]);
    await t.db.query(`update cas_retention set pruned_through = $1 where log = 'logs'`, [firstLog! + 5]);
    try {
      for (const sql of [
        'select * from cas_list_events(p_after_seq => $1, p_limit => 10)',
        `select * from cas_list_events(p_agent_id => 'marketer', p_after_seq => $1, p_limit => 10)`,
      ]) {
        await expect(t.db.query(sql, [first! + 1])).rejects.toMatchObject({ code: 'CASCE' });
      }
      for (const sql of [
        'select * from cas_list_logs(p_after_id => $1, p_limit => 10)',
        `select * from cas_list_logs(p_agent_id => 'marketer', p_after_id => $1, p_limit => 10)`,
      ]) {
        await expect(t.db.query(sql, [firstLog! + 1])).rejects.toMatchObject({ code: 'CASCE' });
      }
      // At the pruned position itself the read goes on.
      await expect(
        t.db.query('select * from cas_list_events(p_after_seq => $1, p_limit => 10)', [first! + 5]),
      ).resolves.toHaveLength(10);
    } finally {
      await t.db.query('update cas_retention set pruned_through = 0');
    }
  });
});
