/**
 * A stand-in for the part of Supabase's `realtime` schema the migrations use, installed in a test
 * database so supabase/migrations installs its Broadcast from Database triggers there as it does on
 * Supabase. `realtime.send` behaves as Supabase's (it adds an `id` to the payload when there is none,
 * sets `realtime.topic`, inserts into realtime.messages, and turns its own failures into warnings).
 * Supabase Realtime reads new realtime.messages rows from the write-ahead log; here a trigger sends
 * each committed row on the NOTIFY channel REALTIME_WAL_CHANNEL instead, which the Realtime double
 * listens to. NOTIFY is delivered at commit, as the WAL stream is.
 */
export const REALTIME_WAL_CHANNEL = 'cas_test_realtime_wal';

export const REALTIME_SCHEMA_SQL = /* sql */ `
create schema if not exists realtime;

create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp not null default now(),
  inserted_at timestamp not null default now(),
  id uuid not null default gen_random_uuid(),
  primary key (id, inserted_at)
);
alter table realtime.messages enable row level security;

create or replace function realtime.topic() returns text
language sql stable as $$ select nullif(current_setting('realtime.topic', true), '')::text $$;

create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void language plpgsql as $$
declare
  v_id uuid := gen_random_uuid();
begin
  begin
    execute format('set local realtime.topic to %L', topic);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (
      v_id,
      case when payload ? 'id' then payload else jsonb_set(payload, '{id}', to_jsonb(v_id)) end,
      event, topic, private, 'broadcast'
    );
  exception when others then
    raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
  end;
end $$;

create or replace function realtime.cas_test_wal() returns trigger
language plpgsql as $$
begin
  perform pg_notify('${REALTIME_WAL_CHANNEL}', json_build_object(
    'id', new.id, 'topic', new.topic, 'event', new.event, 'private', new.private,
    'extension', new.extension, 'payload', new.payload
  )::text);
  return null;
end $$;

drop trigger if exists cas_test_wal on realtime.messages;
create trigger cas_test_wal after insert on realtime.messages
  for each row execute function realtime.cas_test_wal();
`;
