/** API keys: admins create and revoke the credentials of services and scripts. */
import { API_KEY_CACHE_MS } from '../../auth/api-keys.js';
import { actorOf, ROLES } from '../../auth/roles.js';
import type { ApiKey } from '../../domains/api-key/api-key.js';
import { builder } from '../builder.js';
import { upperCaseEnum } from '../enums.js';

export const RoleEnum = upperCaseEnum(
  'Role',
  ROLES,
  'VIEWER reads; OPERATOR also runs and cancels tasks and writes state; ADMIN also manages agents and API keys.',
);

const ApiKeyRef = builder.objectRef<ApiKey>('ApiKey').implement({
  description:
    'A credential for services and scripts (Authorization: Bearer cas_…). Its secret is never shown again.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'UUID; the key acts as user apiKey:<id>.' }),
    name: t.exposeString('name'),
    role: t.expose('role', { type: RoleEnum }),
    createdBy: t.exposeID('createdBy', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'Recorded at most once a minute.',
    }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
  }),
});

const CreatedApiKeyRef = builder.objectRef<{ apiKey: ApiKey; secret: string }>('CreatedApiKey').implement({
  description: 'A new API key and its secret.',
  fields: (t) => ({
    apiKey: t.field({ type: ApiKeyRef, resolve: (created) => created.apiKey }),
    secret: t.exposeString('secret', {
      description:
        'The key to send as Authorization: Bearer <secret>. Shown only in this answer: store it now.',
    }),
  }),
});

builder.queryField('apiKeys', (t) =>
  t.field({
    type: [ApiKeyRef],
    description: 'Every API key, revoked ones included, newest first.',
    authScopes: { admin: true },
    resolve: (_root, _args, { apiKeys }) => apiKeys.list(),
  }),
);

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreatedApiKeyRef,
    description: 'Creates an API key with a role; the answer holds its secret, once.',
    args: {
      role: t.arg({ type: RoleEnum, required: true }),
      name: t.arg.string({ required: true, description: 'What the key is for (1-100 characters).' }),
    },
    authScopes: { admin: true },
    resolve: (_root, { role, name }, { apiKeys, viewer }) =>
      apiKeys.create({ role, name }, actorOf(viewer).userId ?? null),
  }),
  revokeApiKey: t.field({
    type: ApiKeyRef,
    description: `Revokes an API key: refused at once by this process, and by every other within ${API_KEY_CACHE_MS / 1000} seconds.`,
    args: { id: t.arg.id({ required: true }) },
    authScopes: { admin: true },
    resolve: (_root, { id }, { apiKeys }) => apiKeys.revoke(id),
  }),
}));
