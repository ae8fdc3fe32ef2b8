-- Streamed task output (Task.output, subscription taskOutput): text a handler emits with
-- ctx.output, e.g. a model's answer token by token.
--
-- Output is positional and replay-idempotent. Every run of a handler (a new attempt, or a resume
-- after a wait, which replays completed steps) writes its text from offset 0 again; each write says
-- at which offset its text starts. The stored text is kept where it matches, so replayed text
-- writes nothing and no event; from the first difference on it is replaced (a retried model call
-- that answers differently), and the event says at which offset, so a reader splices
-- `text.slice(0, offset) + delta`. No text is ever duplicated.
--
-- Lock order (20261202000100_cas_task_leases.sql): the task row (cas_lock_running_task), then the
-- event sequence row (cas_append_event). No agent row is touched.
--
-- Redefines cas_agent_events_event_type_check (adds 'task_output').

alter table cas_tasks add column if not exists output text;
comment on column cas_tasks.output is
  'Text the task''s handler emitted with ctx.output (e.g. a model''s streamed answer); null when none.';

alter table cas_agent_events drop constraint if exists cas_agent_events_event_type_check;
alter table cas_agent_events add constraint cas_agent_events_event_type_check check (event_type in (
  'agent_registered', 'agent_unregistered', 'task_queued', 'task_started', 'task_progress',
  'task_completed', 'task_failed', 'task_cancel_requested', 'task_cancelled', 'task_retry_scheduled',
  'task_waiting', 'task_resumed', 'task_signal_received', 'step_started', 'step_completed', 'step_failed',
  'state_updated', 'state_reset', 'task_output'));

-- Longest output kept per task (characters); a write past it is refused (BAD_USER_INPUT).
create or replace function cas_max_task_output_chars() returns int
language sql immutable set search_path = public, pg_temp as $$ select 1000000 $$;

-- Writes `p_text` at `p_offset` of the running task's output (see the top of this file). Returns
-- the output's length after the write and whether anything changed (and an event was written).
create or replace function cas_write_task_output(
  p_task_id uuid,
  p_lease_token uuid,
  p_offset int,
  p_text text
) returns table (output_length int, changed boolean)
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
  v_current text := coalesce(v_task.output, '');
  v_same int := 0;
  v_limit int := least(char_length(p_text), greatest(char_length(v_current) - p_offset, 0));
begin
  if p_offset < 0 or p_offset > char_length(v_current) then
    raise exception 'output offset % is outside the stored output (% characters)', p_offset, char_length(v_current)
      using errcode = 'CASBI';
  end if;
  if p_offset + char_length(p_text) > cas_max_task_output_chars() then
    raise exception 'task output would exceed % characters', cas_max_task_output_chars() using errcode = 'CASBI';
  end if;
  -- The length of the part of p_text already stored at p_offset (a replayed run's text).
  if substr(v_current, p_offset + 1, v_limit) = left(p_text, v_limit) then
    v_same := v_limit;
  else
    while v_same < v_limit and substr(v_current, p_offset + v_same + 1, 1) = substr(p_text, v_same + 1, 1) loop
      v_same := v_same + 1;
    end loop;
  end if;
  if v_same = char_length(p_text) then
    return query select char_length(v_current), false;
    return;
  end if;
  update cas_tasks
    set output = left(v_current, p_offset + v_same) || substr(p_text, v_same + 1), updated_at = now()
    where id = p_task_id;
  perform cas_append_event('task_output', v_task.agent_id, v_task.id,
    jsonb_build_object('attempt', v_task.attempts, 'offset', p_offset + v_same,
      'text', substr(p_text, v_same + 1)), null);
  return query select p_offset + char_length(p_text), true;
end $$;

-- Token usage of one model request of a running task: two metric points of its agent
-- (llm_prompt_tokens, llm_completion_tokens), tagged with the action, task and model. Lock order:
-- the task row, then (implicitly, by the inserts' foreign key) the agent row.
create or replace function cas_record_model_usage(
  p_task_id uuid,
  p_lease_token uuid,
  p_model text,
  p_prompt_tokens int,
  p_completion_tokens int
) returns int
language plpgsql set search_path = public, pg_temp as $$
declare
  v_task cas_tasks := cas_lock_running_task(p_task_id, p_lease_token);
  v_tags jsonb := jsonb_build_object('action', v_task.action, 'taskId', v_task.id, 'model', p_model);
begin
  insert into cas_metrics_timeseries (agent_id, metric_name, value, tags) values
    (v_task.agent_id, 'llm_prompt_tokens', greatest(p_prompt_tokens, 0), v_tags),
    (v_task.agent_id, 'llm_completion_tokens', greatest(p_completion_tokens, 0), v_tags);
  return 2;
end $$;

-- Token usage per task (Task.tokenUsage): the sums of its llm_* metric points; tasks without any
-- are absent. Reads the agent's points from the task's creation on (the metrics index).
create or replace function cas_task_token_usage(p_task_ids uuid[])
returns table (task_id uuid, prompt_tokens bigint, completion_tokens bigint, requests bigint)
language sql stable set search_path = public, pg_temp as $$
  select t.id,
         coalesce(sum(m.value) filter (where m.metric_name = 'llm_prompt_tokens'), 0)::bigint,
         coalesce(sum(m.value) filter (where m.metric_name = 'llm_completion_tokens'), 0)::bigint,
         count(*) filter (where m.metric_name = 'llm_prompt_tokens')
  from cas_tasks t
  join cas_metrics_timeseries m
    on m.agent_id = t.agent_id
   and m.metric_name in ('llm_prompt_tokens', 'llm_completion_tokens')
   and m.recorded_at >= t.created_at
   and m.tags->>'taskId' = t.id::text
  where t.id = any (p_task_ids)
  group by t.id
$$;

-- Only the owner and the service role call cas_ functions (as 20261202000600 section 10).
do $$
declare
  v_fn regprocedure;
begin
  foreach v_fn in array array['cas_write_task_output(uuid, uuid, int, text)'::regprocedure,
                              'cas_max_task_output_chars()'::regprocedure,
                              'cas_record_model_usage(uuid, uuid, text, int, int)'::regprocedure,
                              'cas_task_token_usage(uuid[])'::regprocedure] loop
    execute format('revoke execute on function %s from public', v_fn);
    if exists (select 1 from pg_roles where rolname = 'anon') then
      execute format('revoke execute on function %s from anon, authenticated', v_fn);
    end if;
    if exists (select 1 from pg_roles where rolname = 'service_role') then
      execute format('grant execute on function %s to service_role', v_fn);
    end if;
  end loop;
end $$;
