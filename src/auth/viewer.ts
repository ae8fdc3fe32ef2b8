/**
 * Resolves the Viewer of a request or socket from its credentials: an `Authorization` header, or
 * the `authorization` of a graphql-ws connection_init payload (same format: `Bearer <token>`).
 */
import type { AuthConfig } from '../config.js';
import type { ApiKeyStore } from '../domains/api-key/api-key.js';
import { CasError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { ApiKeys, isApiKeySecret } from './api-keys.js';
import { createJwtVerifier, InvalidTokenError } from './jwt.js';
import { ANONYMOUS_VIEWER, LOCAL_VIEWER, type Viewer } from './roles.js';

export type { Role, Viewer } from './roles.js';

/** A viewer and until when its credentials hold (null: no expiry, e.g. an API key). */
export interface Caller {
  viewer: Viewer;
  expiresAt: Date | null;
}

export interface Authenticator {
  readonly mode: AuthConfig['mode'];
  readonly apiKeys: ApiKeys;
  /**
   * The caller presenting `authorization` (absent: local admin or anonymous, by mode). Throws a
   * CasError UNAUTHENTICATED for credentials that are malformed, invalid, expired or revoked.
   */
  authenticate(authorization: string | null | undefined): Promise<Caller>;
}

const BEARER = /^Bearer +(\S+) *$/i;

export const unauthenticated = (message: string) => new CasError(ErrorCode.UNAUTHENTICATED, message);

export function createAuthenticator(options: {
  auth: AuthConfig;
  apiKeys: ApiKeyStore;
  logger: Logger;
}): Authenticator {
  const { auth } = options;
  const apiKeys = new ApiKeys(options.apiKeys, options.logger);
  const verifyJwt = auth.mode === 'jwt' ? createJwtVerifier(auth) : undefined;

  return {
    mode: auth.mode,
    apiKeys,
    async authenticate(authorization) {
      if (authorization === undefined || authorization === null || authorization === '') {
        return { viewer: auth.mode === 'local' ? LOCAL_VIEWER : ANONYMOUS_VIEWER, expiresAt: null };
      }
      const token = BEARER.exec(authorization)?.[1];
      if (!token) throw unauthenticated('the authorization must be "Bearer <token>"');
      if (isApiKeySecret(token)) {
        const viewer = await apiKeys.verify(token);
        if (!viewer) throw unauthenticated('the API key is unknown or revoked');
        return { viewer, expiresAt: null };
      }
      if (!verifyJwt) {
        throw unauthenticated(
          'this server verifies no JWTs (no SUPABASE_JWT_SECRET, SUPABASE_URL or CAS_JWKS_URL): send no token, or an API key',
        );
      }
      try {
        return await verifyJwt(token);
      } catch (error) {
        if (error instanceof InvalidTokenError) throw unauthenticated(error.message);
        throw error;
      }
    },
  };
}
