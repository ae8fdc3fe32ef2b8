/**
 * Supabase Auth JWTs, verified with jose. Each key source is pinned to its algorithms, so a token
 * cannot pick how it is checked (algorithm confusion): HS256 only with SUPABASE_JWT_SECRET, and
 * ES256/RS256 only with keys from the project's JWKS. jose never accepts `alg: none` here.
 */
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import type { AuthConfig } from '../config.js';
import { ROLES, type Viewer } from './roles.js';

/** Algorithms verified with the shared secret. */
export const SECRET_ALGORITHMS = ['HS256'];
/** Algorithms verified with JWKS keys (Supabase's asymmetric signing keys are ES256 or RS256). */
export const JWKS_ALGORITHMS = ['ES256', 'RS256'];
/** Leeway for exp and nbf, for clocks that differ a little between Supabase and this server. */
export const CLOCK_TOLERANCE_SECONDS = 5;
/** How long fetched JWKS keys are trusted before they are fetched again. */
export const JWKS_CACHE_MAX_AGE_MS = 10 * 60_000;
/** A token with an unknown key id refetches the JWKS (a rotated key), at most this often. */
export const JWKS_COOLDOWN_MS = 30_000;
/** The longest a JWKS fetch may take. */
export const JWKS_TIMEOUT_MS = 5_000;
/**
 * How long a process trusts a token it verified before checking its signature again (never past
 * the token's `exp`). A frontend sends the same token with every request; verifying it each time
 * (WebCrypto, asynchronous) was about a tenth of the server's CPU for a dashboard query. Fetched
 * JWKS keys are trusted for JWKS_CACHE_MAX_AGE_MS anyway, so this keeps no removed key alive longer.
 */
export const VERIFIED_TOKEN_CACHE_MS = 60_000;
/** Verified tokens remembered at once; the oldest entry is dropped beyond this. */
export const VERIFIED_TOKEN_CACHE_MAX_ENTRIES = 1_000;

export interface VerifiedToken {
  viewer: Viewer;
  /** The token's `exp`: sockets authenticated with it are closed then. */
  expiresAt: Date;
}

/** A token that was refused; the message is safe to show the caller. */
export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
}

/** What CAS reads from Supabase's `app_metadata` (set by an admin, not editable by the user). */
const casClaims = z.object({
  sub: z.string().min(1).max(200),
  exp: z.number(),
  app_metadata: z
    .object({
      cas_role: z.enum(ROLES).optional().catch(undefined),
      cas_grants: z.array(z.string().max(100)).max(100).optional().catch(undefined),
    })
    .optional()
    .catch(undefined),
});

const REASONS: [new (...args: never[]) => Error, string][] = [
  [errors.JWTExpired, 'the token has expired'],
  [errors.JWTClaimValidationFailed, 'a claim of the token is not accepted (aud, iss, nbf or sub)'],
  [errors.JWSSignatureVerificationFailed, 'the token signature is not valid'],
  [errors.JOSEAlgNotAllowed, 'the token is signed with an algorithm this server does not accept'],
  [errors.JWKSNoMatchingKey, 'no key of the JWKS matches the token'],
  [errors.JWKSTimeout, 'the signing keys could not be fetched'],
  [errors.JOSEError, 'the token is malformed'],
];

function reasonFor(error: unknown): string {
  for (const [type, reason] of REASONS) if (error instanceof type) return reason;
  return 'the token could not be verified';
}

/**
 * A verifier for the configured key sources; throws InvalidTokenError for any refused token.
 * `jwksCooldownMs` and `jwksCacheMaxAgeMs` differ from their defaults only in tests of key rotation
 * and of the verified-token cache, whose clock `now` is (tests move it). Refused tokens are not
 * remembered: each is checked again.
 */
export function createJwtVerifier(
  config: AuthConfig,
  { jwksCooldownMs = JWKS_COOLDOWN_MS, jwksCacheMaxAgeMs = JWKS_CACHE_MAX_AGE_MS, now = Date.now } = {},
): (token: string) => Promise<VerifiedToken> {
  const secret = config.jwtSecret ? new TextEncoder().encode(config.jwtSecret) : undefined;
  const jwks = config.jwksUrl
    ? createRemoteJWKSet(new URL(config.jwksUrl), {
        cacheMaxAge: jwksCacheMaxAgeMs,
        cooldownDuration: jwksCooldownMs,
        timeoutDuration: JWKS_TIMEOUT_MS,
      })
    : undefined;
  const claimChecks = {
    audience: config.audience,
    issuer: config.issuer,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    requiredClaims: ['sub', 'exp'],
  };

  const verifyPayload = async (token: string): Promise<JWTPayload> => {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new InvalidTokenError('the token is malformed');
    }
    if (secret && alg && SECRET_ALGORITHMS.includes(alg)) {
      return (await jwtVerify(token, secret, { ...claimChecks, algorithms: SECRET_ALGORITHMS })).payload;
    }
    if (jwks && alg && JWKS_ALGORITHMS.includes(alg)) {
      return (await jwtVerify(token, jwks, { ...claimChecks, algorithms: JWKS_ALGORITHMS })).payload;
    }
    throw new InvalidTokenError('the token is signed with an algorithm this server does not accept');
  };

  const verify = async (token: string): Promise<VerifiedToken> => {
    let payload: JWTPayload;
    try {
      payload = await verifyPayload(token);
    } catch (error) {
      if (error instanceof InvalidTokenError) throw error;
      throw new InvalidTokenError(reasonFor(error));
    }
    const claims = casClaims.safeParse(payload);
    if (!claims.success) throw new InvalidTokenError('the token has no usable sub or exp');
    const metadata = claims.data.app_metadata;
    // Frozen: the cache hands the same viewer to every request with this token.
    return Object.freeze({
      viewer: Object.freeze({
        kind: 'user' as const,
        id: claims.data.sub,
        role: metadata?.cas_role ?? 'viewer',
        grants: Object.freeze([...(metadata?.cas_grants ?? [])]),
      }),
      expiresAt: new Date(claims.data.exp * 1000),
    });
  };

  const verified = new Map<string, { token: VerifiedToken; until: number }>();
  return async (token) => {
    const cached = verified.get(token);
    if (cached && cached.until > now()) return cached.token;
    verified.delete(token);
    const result = await verify(token);
    if (verified.size >= VERIFIED_TOKEN_CACHE_MAX_ENTRIES) verified.delete(verified.keys().next().value!);
    verified.set(token, {
      token: result,
      until: Math.min(now() + VERIFIED_TOKEN_CACHE_MS, result.expiresAt.getTime()),
    });
    return result;
  };
}
