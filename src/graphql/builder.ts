/**
 * The one Pothos SchemaBuilder: plugins, the typed request context and the scalars. It defines no
 * domain types; those live in src/graphql/types/<domain>.ts, and src/graphql/schema.ts builds.
 */
import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { DateTimeResolver, JSONResolver } from 'graphql-scalars';
import { authScopes, unauthorizedError, type AuthScopes } from './auth-scopes.js';
import type { GraphQLContext } from './context.js';

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: AuthScopes;
  Scalars: {
    ID: { Input: string; Output: string };
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
  };
  /** Connections may carry a lazy total (only TaskConnection exposes it). */
  Connection: { totalCount?: () => Promise<number> };
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  DefaultFieldNullability: false;
}>({
  // Relay before scope-auth, scope-auth before any plugin that wraps resolvers (their READMEs).
  plugins: [RelayPlugin, ScopeAuthPlugin],
  scopeAuth: {
    // Subscriptions are checked when they start, before anything is streamed.
    authorizeOnSubscribe: true,
    authScopes,
    unauthorizedError,
  },
  relay: {
    // Plain ids (agent slugs, task UUIDs), no global-id `node` lookups: see api-contract.md.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    cursorType: 'String',
    edgeCursorType: 'String',
    pageInfoCursorType: 'String',
  },
  defaultFieldNullability: false,
});

builder.addScalarType('DateTime', DateTimeResolver);
builder.addScalarType('JSON', JSONResolver);

builder.queryType({ description: 'Reads. Every field goes through the AgentRuntime.' });
builder.mutationType({ description: 'Writes. Input is validated before anything is stored.' });
builder.subscriptionType({
  description:
    'Live updates over WebSocket (graphql-ws) or SSE (see docs/api.md). What each field sends first differs: ' +
    'taskEvents, taskOutput and workflowRunEvents replay the history of their task or run (or from `after`), then go live and complete at its end; ' +
    'taskUpdated and workflowRunUpdated send the current state, then each change, and complete at the end; ' +
    'events, logAdded and agentStatusChanged are live only, unless given `after` (a cursor, or Query.eventHead / Query.logHead), from which they first catch up; they never complete. ' +
    'Every resumable stream is gap-free: nothing missed or repeated between the catch-up and live.',
});
