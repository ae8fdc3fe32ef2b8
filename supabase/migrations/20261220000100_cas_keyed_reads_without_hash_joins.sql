-- cas_write_attempts looks each task of a batch up by id, not in a hash join over the whole table.
--
-- 20261206000200 turned sequential scans off in the functions that reach task rows by id, so that
-- they take them by index whatever the statistics say, and their statements run on generic plans
-- (force_generic_plan), each planned once per connection at its first call. Where no statistics say
-- otherwise (autovacuum off, or not yet run), a worker whose first calls came while cas_tasks held
-- about 500 rows got, for two statements of cas_write_attempts (the UPDATE that writes a batch's
-- attempts and the read of the rows for their events), a hash join of the batch's ids to a full scan
-- of cas_tasks_pkey: no sequential scan, and the cheapest plan for a table that size. The connection
-- kept those plans for its life: with 3,000 more tasks queued after, a batch of ten completions and
-- ten claims read 10,584 task rows, a claim alone 10,530 and a failure 10,505 (every write of
-- attempts goes through cas_write_attempts), against 141, 60 and 8 with this setting
-- (test/db/keyed-plans.test.ts; tried by hand with the first calls at 100, 250, 400, 600, 750, 1,000,
-- 1,500, 2,000 and 4,000 rows: the same 141, 60 and 8 with the setting; without it, at 100, 250,
-- 1,000 and 4,000 the planner chose the index lookups anyway). One worker process draining 4,000
-- no-op tasks after a warm-up of 500: 1,023-2,013 tasks/s without the setting, 2,234-2,547 with it
-- (four alternating drains each on the PostgreSQL server, autovacuum off as on this project's CI
-- machine; 1.73x, geometric mean of the rounds' ratios).
--
-- With hash and merge joins off as well, a join of a batch's ids to cas_tasks can only look each id
-- up in the primary key, which is what these statements mean at any table size. Only here: set on
-- every function with sequential scans off (their callees inherit it, a workflow's hand-offs among
-- them), a map step of 1,000 items ran at 0.85x the items/s (npm run bench -- --only=workflows,
-- seven alternating runs), and none of the other functions read more than their own rows.

alter function cas_write_attempts(uuid[], text, double precision[], jsonb[], jsonb[], jsonb[], uuid[], text, integer)
  set enable_hashjoin = off set enable_mergejoin = off;
