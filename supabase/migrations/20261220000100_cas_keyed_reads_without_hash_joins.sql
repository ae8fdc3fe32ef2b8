-- The functions that reach task rows by id take them by nested loop too, not only by index.
--
-- 20261206000200 turned sequential scans off in these functions so that they reach rows by index
-- whatever the statistics say, and their statements run on generic plans (force_generic_plan),
-- each planned once per connection at its first call. A worker's first claim often comes while
-- cas_tasks holds a few hundred rows, and where no statistics say otherwise (autovacuum off, or not
-- yet run) the planner then joined a batch's ids to the task rows with a hash join over a full
-- scan of cas_tasks_pkey: no sequential scan, and the cheapest plan for a table it believed small.
-- The connection kept that plan for its life: with 500 tasks in the table at a worker's first calls
-- and 3,000 more queued after, a batch of ten completions and ten claims read 10,584 task rows, a
-- claim alone 10,530 and a failure 10,505, against 141, 60 and 8 with these settings
-- (test/db/keyed-plans.test.ts). One worker process draining 4,000 no-op tasks after a warm-up of
-- 500 ran at 1,175-1,322 tasks/s, and at 2,772-2,916 with these settings (alternating drains on
-- the PostgreSQL server, autovacuum off as on this project's CI machine).
--
-- With hash and merge joins off as well, a join of a list of ids to a table can only look each id
-- up in its index, which is what these statements mean at any table size. The setting holds for
-- the functions they call, the counter triggers included (their transition tables hold a batch).

alter function cas_admissible(uuid[], uuid[], integer) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_admit_claimed(uuid[], text, integer, integer) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_begin_attempts(uuid[], text, integer) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_end_attempts(uuid[]) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_extend_lease(uuid[], uuid[], integer) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_finish_completions(uuid[], jsonb) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_finish_tasks(uuid[], text, double precision[], jsonb[], jsonb[], jsonb[]) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_lock_agent_status(uuid[]) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_lock_agents_if_unlimited(uuid[]) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_lock_callers(uuid[]) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_lock_completions(jsonb) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_lock_parents(uuid[]) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_pick_claimable(integer, text[], integer, uuid[]) set enable_hashjoin = off set enable_mergejoin = off;
alter function cas_write_attempts(uuid[], text, double precision[], jsonb[], jsonb[], jsonb[], uuid[], text, integer) set enable_hashjoin = off set enable_mergejoin = off;
