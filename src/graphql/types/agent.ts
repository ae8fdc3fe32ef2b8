/** Agents: the registry of who can run tasks, and their live status. */
import type { ActionDescription } from '../../agents/registry.js';
import { AGENT_STATUSES, MAX_AGENT_CONCURRENCY, type Agent } from '../../domains/agent/agent.js';
import { badInput } from '../../errors.js';
import { agentId as agentIdSchema } from '../../validation.js';
import { actorOf } from '../../auth/roles.js';
import { SHARE_LIVE_ONLY } from '../sharing.js';
import { builder } from '../builder.js';
import { upperCaseEnum } from '../enums.js';
import { preloadSelected } from '../preload.js';
import { cursorArg, refuseExpiredCursor } from '../pagination.js';

export const AgentStatusEnum = upperCaseEnum(
  'AgentStatus',
  AGENT_STATUSES,
  'IDLE: ready, BUSY: running tasks, STOPPED: unregistered (history kept), ERROR: see errorMessage.',
);

export const AgentRef = builder.objectRef<Agent>('Agent');

export const AgentActionRef = builder.objectRef<ActionDescription>('AgentAction');

AgentActionRef.implement({
  description:
    'An action an agent accepts in executeTask, with JSON Schemas (draft 2020-12) a client can build a form from.',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'The `action` of executeTask, e.g. "ping".' }),
    description: t.exposeString('description', { nullable: true }),
    inputSchema: t.expose('inputSchema', {
      type: 'JSON',
      nullable: true,
      description:
        'JSON Schema of the input a client sends (executeTask checks it when queuing); null when unknown (an action without a schema takes any JSON).',
    }),
    outputSchema: t.expose('outputSchema', {
      type: 'JSON',
      nullable: true,
      description: "JSON Schema of the task's result; null when the action declares none.",
    }),
  }),
});

/** An agent id from a client: a slug, checked before it reaches any query (BAD_USER_INPUT). */
export function parseAgentId(id: string, argument = 'id'): string {
  if (!agentIdSchema.safeParse(id).success) {
    throw badInput(`"${argument}" is not an agent id: 1-63 characters of a-z, 0-9, "-" or "_"`);
  }
  return id;
}

AgentRef.implement({
  description: 'An agent: a named role with actions (handlers) that run tasks.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The slug, e.g. "marketer".' }),
    name: t.exposeString('name'),
    role: t.exposeString('role'),
    description: t.exposeString('description', { nullable: true }),
    status: t.expose('status', { type: AgentStatusEnum }),
    lastActivityAt: t.expose('lastActivityAt', { type: 'DateTime', nullable: true }),
    errorMessage: t.exposeString('errorMessage', { nullable: true }),
    registeredAt: t.expose('registeredAt', { type: 'DateTime', nullable: true }),
    unregisteredAt: t.expose('unregisteredAt', { type: 'DateTime', nullable: true }),
    startedAt: t.expose('startedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the agent last became available; null while stopped.',
    }),
    runningTasks: t.exposeInt('runningTasks', { description: 'Tasks running on this agent now.' }),
    maxConcurrency: t.exposeInt('maxConcurrency', {
      nullable: true,
      description: 'Most tasks of this agent running at once over all workers; null for no limit.',
    }),
    actions: t.field({
      type: [AgentActionRef],
      description:
        'The actions this agent accepts in executeTask (the diagnostics ping, wait, fail and its own), sorted by name.',
      resolve: (agent, _args, { runtime }) => runtime.describeActions(agent.id),
    }),
    actionNames: t.stringList({
      description: 'The names of `actions`, sorted.',
      deprecationReason: 'use actions { name }',
      resolve: (agent, _args, { runtime }) => runtime.actionsOf(agent.id),
    }),
  }),
});

builder.queryFields((t) => ({
  agents: t.field({
    type: [AgentRef],
    authScopes: { viewer: true },
    description: 'Every registered agent, stopped ones included, ordered by id.',
    resolve: async (_root, _args, { loaders }, info) => {
      const agents = await loaders.allAgents();
      for (const agent of agents) loaders.agents.prime(agent.id, agent);
      // Their selected batched fields (metrics, state, recentTasks) in one batch each, before
      // graphql-js runs them: the list then completes without a promise per agent (preload.ts).
      await preloadSelected(
        info,
        agents.map((agent) => agent.id),
        loaders,
      );
      return agents;
    },
  }),
  agent: t.field({
    type: AgentRef,
    nullable: true,
    authScopes: { viewer: true },
    description: 'One agent by id; null when there is none.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { loaders }) => loaders.agents.load(parseAgentId(id)),
  }),
}));

const RegisterAgentInput = builder.inputType('RegisterAgentInput', {
  fields: (t) => ({
    id: t.id({ required: true, description: 'Slug: 1-63 of a-z, 0-9, "-", "_".' }),
    name: t.string({ required: true }),
    role: t.string({ required: true }),
    description: t.string({ required: false }),
    maxConcurrency: t.int({
      required: false,
      description: `Most tasks of this agent running at once over all workers (1-${MAX_AGENT_CONCURRENCY}); others wait queued. Omitted or null: no limit.`,
    }),
  }),
});

builder.mutationFields((t) => ({
  registerAgent: t.field({
    type: AgentRef,
    description: 'Registers an agent, or re-registers a stopped one (it becomes IDLE again).',
    args: { input: t.arg({ type: RegisterAgentInput, required: true }) },
    authScopes: { admin: true },
    resolve: (_root, { input }, { runtime, viewer }) => runtime.registerAgent(input, actorOf(viewer)),
  }),
  unregisterAgent: t.field({
    type: AgentRef,
    description: 'Stops an agent (status STOPPED) and cancels its queued tasks; its history is kept.',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { admin: true },
    resolve: (_root, { id }, { runtime, viewer }) =>
      runtime.unregisterAgent(parseAgentId(id), actorOf(viewer)),
  }),
}));

builder.subscriptionField('agentStatusChanged', (t) =>
  t.field({
    type: AgentRef,
    description:
      'An agent (or, without agentId, any agent) each time its status, last activity or error may have changed. With `after` (an AgentEvent.cursor, e.g. Query.eventHead read with the agents), first each agent with such a change after it, once, as it is now; then live. Without it, live only. Never completes.',
    args: {
      agentId: t.arg.id({ required: false }),
      after: t.arg.string({
        required: false,
        description: 'An AgentEvent.cursor: catch up on the changes after it first.',
      }),
    },
    authScopes: { viewer: true },
    // Subscribers without `after` share one execution per event (src/server/shared-subscriptions.ts).
    extensions: SHARE_LIVE_ONLY,
    subscribe: async (_root, args, { runtime }) => {
      const agentId = args.agentId ? parseAgentId(args.agentId, 'agentId') : null;
      // Refused up front (NOT_FOUND, BAD_USER_INPUT, CURSOR_EXPIRED) rather than mid-stream.
      if (agentId) await runtime.getAgentStatus(agentId);
      const after = cursorArg(args.after);
      await refuseExpiredCursor(runtime, after);
      return runtime.watchAgents(agentId, { after });
    },
    resolve: (agent, _args, { loaders }) => {
      loaders.clearAll();
      return agent;
    },
  }),
);
