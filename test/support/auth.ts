/**
 * Credentials for authentication tests: Supabase-shaped JWTs signed here with HS256 (a shared
 * secret) and ES256 (a key pair whose public half a JWKS server on 127.0.0.1 serves), and the
 * broken variants a server must refuse.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import type { Role } from '../../src/auth/roles.js';

export const JWT_SECRET = 'test-only-jwt-secret-with-at-least-32-characters';
export const AUDIENCE = 'authenticated';

export interface TokenClaims {
  sub: string;
  role?: Role;
  grants?: string[];
  /** Seconds from now; negative for an expired token. Default one hour. */
  expiresIn?: number;
  audience?: string;
}

const payloadOf = (claims: TokenClaims): JWTPayload => ({
  sub: claims.sub,
  role: 'authenticated',
  app_metadata: {
    provider: 'email',
    ...(claims.role ? { cas_role: claims.role } : {}),
    ...(claims.grants ? { cas_grants: claims.grants } : {}),
  },
});

const sign = (claims: TokenClaims, alg: string, kid?: string) => {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(payloadOf(claims))
    .setProtectedHeader({ alg, typ: 'JWT', ...(kid ? { kid } : {}) })
    .setIssuedAt(now - 60)
    .setExpirationTime(now + (claims.expiresIn ?? 3600))
    .setAudience(claims.audience ?? AUDIENCE);
};

/** An HS256 token signed with `secret` (the server's JWT_SECRET unless a test wants a wrong one). */
export const hs256Token = (claims: TokenClaims, secret = JWT_SECRET) =>
  sign(claims, 'HS256').sign(new TextEncoder().encode(secret));

/** An unsigned token (`alg: none`), as an attacker would forge it. */
export function unsignedToken(claims: TokenClaims): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = { ...payloadOf(claims), aud: AUDIENCE, iat: now, exp: now + 3600 };
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(body)}.`;
}

/** An ES256 key pair whose public key a JWKS server publishes; `rotate` replaces it. */
export interface JwksServer {
  url: string;
  /** Signs with the current key. */
  es256Token(claims: TokenClaims): Promise<string>;
  /**
   * Algorithm confusion: an HS256 token whose HMAC key is the published public key, for a server
   * that would let the token's header choose how it is verified.
   */
  confusedToken(claims: TokenClaims): Promise<string>;
  /** Publishes a new key (new kid) in place of the old one. */
  rotate(): Promise<void>;
  /** Number of JWKS downloads so far. */
  fetches(): number;
  close(): Promise<void>;
}

export async function startJwksServer(): Promise<JwksServer> {
  let generation = 0;
  let current: { kid: string; privateKey: CryptoKey; publicJwk: JWK };
  const newKey = async () => {
    generation += 1;
    const kid = `test-key-${generation}`;
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    current = {
      kid,
      privateKey,
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' },
    };
  };
  await newKey();
  let downloads = 0;
  const server: Server = createServer((req, res) => {
    downloads += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [current.publicJwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/auth/v1/.well-known/jwks.json`,
    es256Token: (claims) => sign(claims, 'ES256', current.kid).sign(current.privateKey),
    confusedToken: (claims) =>
      sign(claims, 'HS256', current.kid).sign(new TextEncoder().encode(JSON.stringify(current.publicJwk))),
    rotate: newKey,
    fetches: () => downloads,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The environment of a server that verifies both kinds of token (harness defaults to local). */
export const authEnv = (jwks: JwksServer) => ({
  CAS_AUTH: 'auto',
  SUPABASE_JWT_SECRET: JWT_SECRET,
  CAS_JWKS_URL: jwks.url,
});
