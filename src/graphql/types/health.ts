/** Health: what /ready checks, as a query. */
import type { HealthStatus } from '../../runtime/agent-runtime.js';
import { builder } from '../builder.js';

const HealthRef = builder.objectRef<HealthStatus>('Health').implement({
  description: 'The service and its database, as the runtime sees them now.',
  fields: (t) => ({
    ok: t.exposeBoolean('ok', { description: 'Database reachable and migrations applied.' }),
    database: t.exposeString('database', { description: '"ok" or "unreachable".' }),
    databaseLatencyMs: t.exposeFloat('databaseLatencyMs', { nullable: true }),
    migrationsApplied: t.exposeBoolean('migrationsApplied'),
    mode: t.exposeString('mode', { description: '"embedded", "postgres" or "supabase".' }),
    runtime: t.exposeString('runtime', { description: 'The runtime implementation, e.g. "custom".' }),
    version: t.exposeString('version'),
    uptimeSeconds: t.exposeFloat('uptimeSeconds'),
  }),
});

builder.queryField('health', (t) =>
  t.field({
    type: HealthRef,
    authScopes: { viewer: true },
    resolve: (_root, _args, { runtime }) => runtime.healthCheck(),
  }),
);
