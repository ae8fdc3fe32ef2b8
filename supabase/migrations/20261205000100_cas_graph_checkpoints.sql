-- LangGraph checkpoints of the tasks that run as graphs (CAS_RUNTIME=langgraph, or an action
-- defined with `graph`). The thread is the task: its checkpoints and pending writes are stored
-- beside it and deleted with it.
--
-- The layout follows @langchain/langgraph-checkpoint-postgres (checkpoints, and the writes of a
-- superstep's tasks keyed by checkpoint, task and index), with two differences:
--   * channel values stay inside the checkpoint instead of a separate blobs table: a task's
--     thread is short-lived, and one row per checkpoint keeps every read one index scan;
--   * every write presents the attempt's lease (cas_lock_running_task), so a worker that lost its
--     task cannot move the graph on behind the attempt that now holds it. Reads need no lease.
-- Both are reached through these functions only, so the Supabase mode (PostgREST RPC) stores
-- checkpoints exactly as the database modes do.

create table if not exists cas_graph_checkpoints (
  task_id uuid not null references cas_tasks (id) on delete cascade,
  checkpoint_ns text not null default '',
  checkpoint_id text not null check (char_length(checkpoint_id) between 1 and 100),
  parent_checkpoint_id text,
  -- The serialised Checkpoint (LangGraph's JSON serde), and its metadata (source, step, ...). JSON
  -- kept as text: a graph's state may hold U+0000, which jsonb refuses and text keeps escaped.
  checkpoint text not null,
  metadata text not null default '{}',
  created_at timestamptz not null default now(),
  primary key (task_id, checkpoint_ns, checkpoint_id)
);
comment on table cas_graph_checkpoints is
  'LangGraph checkpoints of tasks run as graphs; the thread id is the task id. Deleted with the task.';

create table if not exists cas_graph_checkpoint_writes (
  -- No key to cas_graph_checkpoints: LangGraph may store a superstep's writes before the put of
  -- its checkpoint has landed (it does not wait for it); both go with the task.
  task_id uuid not null references cas_tasks (id) on delete cascade,
  checkpoint_ns text not null default '',
  checkpoint_id text not null,
  graph_task_id text not null,
  idx int not null,
  channel text not null,
  task_path text not null default '',
  -- 'json' (value is JSON text) or 'bytes' (value is base64).
  value_type text not null check (value_type in ('json', 'bytes')),
  value text not null,
  primary key (task_id, checkpoint_ns, checkpoint_id, graph_task_id, idx)
);
comment on table cas_graph_checkpoint_writes is
  'Pending writes of the graph tasks of a checkpoint''s superstep (LangGraph putWrites).';

alter table cas_graph_checkpoints enable row level security;
alter table cas_graph_checkpoint_writes enable row level security;

-- A checkpoint of the running attempt's graph. Stored again with the same id (LangGraph re-puts a
-- checkpoint when a run exits), the newer content wins.
create or replace function cas_graph_put_checkpoint(
  p_task_id uuid,
  p_lease_token uuid,
  p_checkpoint_ns text,
  p_checkpoint_id text,
  p_parent_checkpoint_id text,
  p_checkpoint text,
  p_metadata text
) returns boolean
language plpgsql set search_path = public, pg_temp as $$
begin
  perform cas_lock_running_task(p_task_id, p_lease_token);
  insert into cas_graph_checkpoints
    (task_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
  values (p_task_id, coalesce(p_checkpoint_ns, ''), p_checkpoint_id, p_parent_checkpoint_id, p_checkpoint,
          coalesce(p_metadata, '{}'))
  on conflict (task_id, checkpoint_ns, checkpoint_id) do update
    set checkpoint = excluded.checkpoint, metadata = excluded.metadata,
        parent_checkpoint_id = coalesce(excluded.parent_checkpoint_id, cas_graph_checkpoints.parent_checkpoint_id);
  return true;
end $$;

-- Pending writes of one graph task: [{ idx, channel, type, value (text) }]. A regular write (idx >= 0)
-- stored before is kept (a replayed task writes the same); a special one (error, interrupt,
-- resume: idx < 0) is replaced, as in LangGraph's own savers.
create or replace function cas_graph_put_writes(
  p_task_id uuid,
  p_lease_token uuid,
  p_checkpoint_ns text,
  p_checkpoint_id text,
  p_graph_task_id text,
  p_task_path text,
  p_writes jsonb
) returns boolean
language plpgsql set search_path = public, pg_temp as $$
begin
  perform cas_lock_running_task(p_task_id, p_lease_token);
  insert into cas_graph_checkpoint_writes
    (task_id, checkpoint_ns, checkpoint_id, graph_task_id, idx, channel, task_path, value_type, value)
  select p_task_id, coalesce(p_checkpoint_ns, ''), p_checkpoint_id, p_graph_task_id, (w ->> 'idx')::int,
         w ->> 'channel', coalesce(p_task_path, ''), w ->> 'type', w ->> 'value'
  from jsonb_array_elements(p_writes) as w
  on conflict (task_id, checkpoint_ns, checkpoint_id, graph_task_id, idx) do update
    set channel = excluded.channel, value_type = excluded.value_type, value = excluded.value,
        task_path = excluded.task_path
    where cas_graph_checkpoint_writes.idx < 0;
  return true;
end $$;

-- A graph node of the running attempt started or ended: a step_started, step_completed or
-- step_failed event (payload: { node, graphTaskId, error? }). Unlike ctx.step nothing is stored:
-- LangGraph's checkpoints decide what runs again.
create or replace function cas_graph_node_event(
  p_task_id uuid,
  p_lease_token uuid,
  p_event_type text,
  p_payload jsonb
) returns boolean
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
begin
  if p_event_type not in ('step_started', 'step_completed', 'step_failed') then
    raise exception using errcode = 'CASBI', message = format('not a graph node event: %s', p_event_type);
  end if;
  perform cas_append_event(p_event_type, v_task.agent_id, v_task.id,
    coalesce(p_payload, '{}'::jsonb) || jsonb_build_object('attempt', v_task.attempts), null);
  return true;
end $$;

-- Checkpoints of a task's graph, newest first, each with its pending writes in LangGraph's order
-- (task path, graph task id, index): the one p_checkpoint_id names, or those before p_before, or
-- all; at most p_limit.
create or replace function cas_graph_checkpoints_of(
  p_task_id uuid,
  p_checkpoint_ns text default '',
  p_checkpoint_id text default null,
  p_before text default null,
  p_limit int default 1
) returns table (
  checkpoint_ns text,
  checkpoint_id text,
  parent_checkpoint_id text,
  checkpoint text,
  metadata text,
  created_at timestamptz,
  writes jsonb
)
language sql stable set search_path = public, pg_temp as $$
  select c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint, c.metadata, c.created_at,
         coalesce((
           select jsonb_agg(jsonb_build_object('taskId', w.graph_task_id, 'channel', w.channel,
                                               'type', w.value_type, 'value', w.value)
                            order by w.task_path collate "C", w.graph_task_id collate "C", w.idx)
           from cas_graph_checkpoint_writes w
           where w.task_id = c.task_id and w.checkpoint_ns = c.checkpoint_ns
             and w.checkpoint_id = c.checkpoint_id
         ), '[]'::jsonb)
  from cas_graph_checkpoints c
  where c.task_id = p_task_id
    and (p_checkpoint_ns is null or c.checkpoint_ns = p_checkpoint_ns)
    and (p_checkpoint_id is null or c.checkpoint_id = p_checkpoint_id)
    and (p_before is null or c.checkpoint_id collate "C" < p_before)
  -- Checkpoint ids are uuid6: time-ordered, so the greatest is the newest (as LangGraph's savers).
  order by c.checkpoint_id collate "C" desc
  limit greatest(p_limit, 0)
$$;

-- The newest p_limit checkpoints of each task's root graph, newest first per task (Task.checkpoints).
create or replace function cas_graph_checkpoint_histories(p_task_ids uuid[], p_limit int default 20)
returns setof cas_graph_checkpoints
language sql stable set search_path = public, pg_temp as $$
  select c.*
  from unnest(p_task_ids) as t (task_id)
  cross join lateral (
    select * from cas_graph_checkpoints g
    where g.task_id = t.task_id and g.checkpoint_ns = ''
    order by g.checkpoint_id collate "C" desc
    limit greatest(p_limit, 0)
  ) c
  order by c.task_id, c.checkpoint_id collate "C" desc
$$;

select cas_restrict_function_access();
