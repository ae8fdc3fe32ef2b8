/**
 * API keys (`Authorization: Bearer cas_…`): creation (the secret is returned once, its SHA-256
 * stored), revocation, and verification with a short in-process cache.
 *
 * Revocation: the revoking process forgets the key at once; other processes keep a verified key
 * for at most API_KEY_CACHE_MS, so a revoked key stops working everywhere within that time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { createApiKeyInput, type ApiKey, type ApiKeyStore } from '../domains/api-key/api-key.js';
import { parseInput, taskId as uuid } from '../validation.js';
import type { Logger } from '../logger.js';
import { TASKS_ALL_GRANT, type Viewer } from './roles.js';

export const API_KEY_PREFIX = 'cas_';
/** Random bytes in a key: 256 bits, so a stored SHA-256 cannot be reversed by guessing. */
export const API_KEY_BYTES = 32;
/** How long a process trusts a key it verified (or found unknown) before asking the database again. */
export const API_KEY_CACHE_MS = 30_000;
/** last_used_at is written at most this often per key. */
export const API_KEY_TOUCH_INTERVAL_MS = 60_000;
/** Keys remembered at once; the oldest entry is dropped beyond this. */
export const API_KEY_CACHE_MAX_ENTRIES = 10_000;

/** A new secret: `cas_` and 43 base64url characters. */
export const generateApiKeySecret = () => API_KEY_PREFIX + randomBytes(API_KEY_BYTES).toString('base64url');

export const hashApiKeySecret = (secret: string) => createHash('sha256').update(secret).digest('hex');

export const isApiKeySecret = (token: string) => token.startsWith(API_KEY_PREFIX);

/** The viewer a key authenticates as: its id is `apiKey:<key id>`; admin keys hold tasks:all. */
export function apiKeyViewer(key: Pick<ApiKey, 'id' | 'role'>): Viewer {
  return {
    kind: 'apiKey',
    id: `apiKey:${key.id}`,
    role: key.role,
    grants: key.role === 'admin' ? [TASKS_ALL_GRANT] : [],
  };
}

interface CacheEntry {
  key: ApiKey | null;
  until: number;
}

export class ApiKeys {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly touchedAt = new Map<string, number>();

  constructor(
    private readonly store: ApiKeyStore,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Stores a new key; `secret` is shown to the caller once and never again. */
  async create(
    input: z.input<typeof createApiKeyInput>,
    createdBy: string | null,
  ): Promise<{ apiKey: ApiKey; secret: string }> {
    const parsed = parseInput(createApiKeyInput, input);
    const secret = generateApiKeySecret();
    return { apiKey: await this.store.create(parsed, hashApiKeySecret(secret), createdBy), secret };
  }

  /** Revokes a key: at once in this process, within API_KEY_CACHE_MS in every other. */
  async revoke(id: string): Promise<ApiKey> {
    const key = await this.store.revoke(parseInput(uuid, id));
    this.forget(key.id);
    return key;
  }

  list(): Promise<ApiKey[]> {
    return this.store.list();
  }

  /** The viewer of a live key, or null for an unknown or revoked one. */
  async verify(secret: string): Promise<Viewer | null> {
    const hash = hashApiKeySecret(secret);
    const key = await this.lookUp(hash);
    if (!key) return null;
    this.touch(key.id);
    return apiKeyViewer(key);
  }

  private forget(keyId: string): void {
    for (const [hash, entry] of this.cache) if (entry.key?.id === keyId) this.cache.delete(hash);
  }

  private async lookUp(hash: string): Promise<ApiKey | null> {
    const cached = this.cache.get(hash);
    if (cached && cached.until > this.now()) return cached.key;
    const key = await this.store.findByHash(hash);
    this.cache.delete(hash);
    if (this.cache.size >= API_KEY_CACHE_MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(hash, { key, until: this.now() + API_KEY_CACHE_MS });
    return key;
  }

  /** Records use at most once per interval per key; a failed write only logs. */
  private touch(keyId: string): void {
    const last = this.touchedAt.get(keyId);
    if (last !== undefined && this.now() - last < API_KEY_TOUCH_INTERVAL_MS) return;
    this.touchedAt.set(keyId, this.now());
    this.store
      .touch(keyId, API_KEY_TOUCH_INTERVAL_MS)
      .catch((error: unknown) => this.logger.warn({ err: error, keyId }, 'could not record API key use'));
  }
}
