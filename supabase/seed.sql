-- The eight built-in agents. Idempotent: applied after migrations on every start, and by
-- `supabase db reset`. Existing rows (including agents an operator unregistered) are left alone.
insert into cas_agents (id, name, role, description) values
  ('marketer',  'Marketer',  'marketer',  'Plans campaigns, writes copy and tracks channel performance.'),
  ('analyst',   'Analyst',   'analyst',   'Explores data, computes metrics and explains what changed.'),
  ('planner',   'Planner',   'planner',   'Breaks goals into ordered steps and assigns them to agents.'),
  ('developer', 'Developer', 'developer', 'Writes and changes code to implement planned work.'),
  ('tester',    'Tester',    'tester',    'Designs and runs tests against new and changed behaviour.'),
  ('qa',        'QA',        'qa',        'Reviews deliverables against acceptance criteria before release.'),
  ('engineer',  'Engineer',  'engineer',  'Operates infrastructure: deploys, scales and keeps services healthy.'),
  ('security',  'Security',  'security',  'Reviews changes for vulnerabilities and enforces security policy.')
on conflict (id) do nothing;

insert into cas_agent_status (agent_id, status, started_at, last_activity_at)
select id, 'idle', now(), now() from cas_agents
where id in ('marketer', 'analyst', 'planner', 'developer', 'tester', 'qa', 'engineer', 'security')
on conflict (agent_id) do nothing;
