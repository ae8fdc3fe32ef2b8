/** API keys: credentials for services and scripts, created and revoked by admins. */
import { z } from 'zod';
import { toDate, toDateOrNull } from '../../db/rows.js';
import type { SqlFunctions } from '../../db/sql-functions.js';
import { ROLES, type Role } from '../../auth/roles.js';

/** An API key as stored: its secret is never kept, only the secret's SHA-256. */
export interface ApiKey {
  id: string;
  name: string;
  role: Role;
  /** The user id of the admin who created it. */
  createdBy: string | null;
  createdAt: Date;
  /** Updated at most once a minute (see API_KEY_TOUCH_INTERVAL_MS). */
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export const createApiKeyInput = z.object({
  name: z.string().trim().min(1).max(100),
  role: z.enum(ROLES),
});

interface ApiKeyRow {
  id: string;
  name: string;
  role: Role;
  created_by: string | null;
  created_at: unknown;
  last_used_at: unknown;
  revoked_at: unknown;
}

const apiKeyFromRow = (row: ApiKeyRow): ApiKey => ({
  id: row.id,
  name: row.name,
  role: row.role,
  createdBy: row.created_by,
  createdAt: toDate(row.created_at),
  lastUsedAt: toDateOrNull(row.last_used_at),
  revokedAt: toDateOrNull(row.revoked_at),
});

export function apiKeyStore(sql: SqlFunctions) {
  const many = async (fn: string, args: Parameters<SqlFunctions['rows']>[1]) =>
    (await sql.rows<ApiKeyRow>(fn, args)).map(apiKeyFromRow);
  return {
    create: async (input: z.output<typeof createApiKeyInput>, keyHash: string, userId: string | null) =>
      (
        await many('cas_create_api_key', {
          p_name: input.name,
          p_role: input.role,
          p_key_hash: keyHash,
          p_user_id: userId,
        })
      )[0]!,
    /** Throws NOT_FOUND for an unknown id; revoking twice keeps the first time. */
    revoke: async (id: string) => (await many('cas_revoke_api_key', { p_id: id }))[0]!,
    /** Every key, revoked ones included, newest first. */
    list: () => many('cas_list_api_keys', {}),
    /** The live key with this hash, or null. */
    findByHash: async (keyHash: string) =>
      (await many('cas_find_api_key', { p_key_hash: keyHash }))[0] ?? null,
    /** Marks the key used unless it was within `minIntervalMs`. */
    touch: (id: string, minIntervalMs: number) =>
      sql.rows('cas_touch_api_key', { p_id: id, p_min_interval_ms: minIntervalMs }).then(() => undefined),
  };
}
export type ApiKeyStore = ReturnType<typeof apiKeyStore>;
