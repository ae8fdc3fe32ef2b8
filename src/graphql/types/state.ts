/** Agent state: versioned JSON per agent, with optimistic concurrency. */
import type { AgentState } from '../../domains/state/state.js';
import { actorOf } from '../../auth/roles.js';
import { MAX_PAGE_SIZE } from '../../domains/pagination.js';
import { builder } from '../builder.js';
import { pageSizeArg } from '../pagination.js';
import { preloadExtension } from '../preload.js';
import { AgentRef, parseAgentId } from './agent.js';

/** Versions Agent.stateHistory gives without `first`. */
const DEFAULT_STATE_HISTORY = 20;

export const AgentStateRef = builder.objectRef<AgentState>('AgentState').implement({
  description:
    "A version of an agent's state: the active one (Agent.state) or an earlier one (Agent.stateHistory).",
  fields: (t) => ({
    agentId: t.exposeID('agentId'),
    version: t.exposeInt('version', {
      description: 'Starts at 1; pass it as expectedVersion to update safely.',
    }),
    data: t.expose('data', { type: 'JSON' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When this version was written.' }),
  }),
});

builder.objectField(AgentRef, 'state', (t) =>
  t.field({
    type: AgentStateRef,
    nullable: true,
    description: 'The active state version; null when there is none (never set, or reset).',
    // Query.agents loads every agent's state at once (preload.ts); `now` takes it from there.
    extensions: preloadExtension((_args, loaders) => loaders.states),
    resolve: (agent, _args, { loaders }) => loaders.now(loaders.states, agent.id),
  }),
);

builder.objectField(AgentRef, 'stateHistory', (t) =>
  t.field({
    type: [AgentStateRef],
    description:
      'The newest state versions, newest first, the active one included (reset and replaced ones too). Batched over agents.',
    args: {
      first: t.arg.int({
        required: false,
        description: `How many versions (1-${MAX_PAGE_SIZE}, default 20).`,
      }),
    },
    resolve: (agent, args, { loaders }) =>
      loaders.stateHistory(pageSizeArg(args.first, { defaultSize: DEFAULT_STATE_HISTORY })).load(agent.id),
  }),
);

builder.mutationFields((t) => ({
  updateAgentState: t.field({
    type: AgentStateRef,
    description:
      'Writes a new state version. With expectedVersion (0 = "no state yet"), fails with CONFLICT ' +
      'unless that is the active version.',
    args: {
      agentId: t.arg.id({ required: true }),
      data: t.arg({ type: 'JSON', required: true, description: 'A JSON object of at most 1 MB.' }),
      expectedVersion: t.arg.int({ required: false }),
    },
    authScopes: { operator: true },
    resolve: (_root, { agentId, data, expectedVersion }, { runtime, viewer }) =>
      runtime.updateAgentState(parseAgentId(agentId, 'agentId'), data, {
        expectedVersion,
        ...actorOf(viewer),
      }),
  }),
  resetAgentState: t.boolean({
    description: 'Deactivates the active state (history is kept); false when there was none.',
    args: { agentId: t.arg.id({ required: true }) },
    authScopes: { operator: true },
    resolve: (_root, { agentId }, { runtime, viewer }) =>
      runtime.resetAgentState(parseAgentId(agentId, 'agentId'), actorOf(viewer)),
  }),
}));
