/**
 * Supabase Auth JWTs through jose: claims mapped to a Viewer, every refusal reason, and JWKS keys
 * fetched over real HTTP, rotated keys picked up.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createJwtVerifier,
  InvalidTokenError,
  VERIFIED_TOKEN_CACHE_MAX_ENTRIES,
  VERIFIED_TOKEN_CACHE_MS,
} from '../../src/auth/jwt.js';
import type { AuthConfig } from '../../src/config.js';
import { loadConfig } from '../../src/config.js';
import {
  AUDIENCE,
  hs256Token,
  JWT_SECRET,
  startJwksServer,
  unsignedToken,
  type JwksServer,
} from '../support/auth.js';

let jwks: JwksServer;
let config: AuthConfig;
beforeAll(async () => {
  jwks = await startJwksServer();
  config = { mode: 'jwt', jwtSecret: JWT_SECRET, jwksUrl: jwks.url, audience: AUDIENCE };
});
afterAll(() => jwks?.close());

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => 'accepted',
    (error: unknown) => (error instanceof InvalidTokenError ? error.message : `unexpected ${String(error)}`),
  );

describe('JWT verification', () => {
  it('maps sub, app_metadata.cas_role (default viewer) and cas_grants to a viewer', async () => {
    const verify = createJwtVerifier(config);
    const plain = await verify(await hs256Token({ sub: 'user-1' }));
    expect(plain.viewer).toEqual({ kind: 'user', id: 'user-1', role: 'viewer', grants: [] });
    const granted = await verify(
      await jwks.es256Token({ sub: 'user-2', role: 'operator', grants: ['tasks:all'] }),
    );
    expect(granted.viewer).toEqual({ kind: 'user', id: 'user-2', role: 'operator', grants: ['tasks:all'] });
    expect(granted.expiresAt.getTime()).toBeGreaterThan(Date.now());
  });

  it('refuses expired, not-yet-valid, wrong-audience, wrong-issuer, unsigned and confused tokens', async () => {
    const verify = createJwtVerifier({ ...config, issuer: 'https://project.supabase.co/auth/v1' });
    const withoutIssuerCheck = createJwtVerifier(config);
    const withIssuer = (token: SignJWT) =>
      token.setIssuer('https://project.supabase.co/auth/v1').sign(new TextEncoder().encode(JWT_SECRET));
    const base = (claims: Record<string, unknown> = {}) =>
      new SignJWT({ sub: 'u', ...claims })
        .setProtectedHeader({ alg: 'HS256' })
        .setAudience(AUDIENCE)
        .setExpirationTime('1h');
    expect(await refusal(verify(await withIssuer(base())))).toBe('accepted');
    expect(await refusal(withoutIssuerCheck(await hs256Token({ sub: 'u', expiresIn: -60 })))).toBe(
      'the token has expired',
    );
    expect(await refusal(verify(await withIssuer(base().setNotBefore('10m'))))).toMatch(/claim/);
    expect(await refusal(verify(await withIssuer(base().setAudience('anon'))))).toMatch(/claim/);
    expect(await refusal(verify(await hs256Token({ sub: 'u' })))).toMatch(/claim/); // no iss
    expect(await refusal(withoutIssuerCheck(unsignedToken({ sub: 'u' })))).toMatch(/algorithm/);
    expect(await refusal(withoutIssuerCheck(await jwks.confusedToken({ sub: 'u' })))).toMatch(/signature/);
    expect(await refusal(withoutIssuerCheck(await hs256Token({ sub: 'u' }, 'x'.repeat(40))))).toMatch(
      /signature/,
    );
    expect(await refusal(verify('not a token'))).toBe('the token is malformed');
  });

  it('pins algorithms to key sources: no secret, no HS256; no JWKS, no ES256', async () => {
    const jwksOnly = createJwtVerifier({ ...config, jwtSecret: undefined });
    expect(await refusal(jwksOnly(await hs256Token({ sub: 'u' })))).toMatch(/algorithm/);
    const secretOnly = createJwtVerifier({ ...config, jwksUrl: undefined });
    expect(await refusal(secretOnly(await jwks.es256Token({ sub: 'u' })))).toMatch(/algorithm/);
  });

  it('fetches the JWKS once for many tokens and picks up a rotated key', async () => {
    const verify = createJwtVerifier(config, { jwksCooldownMs: 0 });
    const before = jwks.fetches();
    for (let index = 0; index < 5; index += 1) await verify(await jwks.es256Token({ sub: `u${index}` }));
    expect(jwks.fetches() - before).toBe(1);
    await jwks.rotate();
    expect((await verify(await jwks.es256Token({ sub: 'after-rotation' }))).viewer.id).toBe('after-rotation');
    expect(jwks.fetches() - before).toBe(2);
  });
});

describe('verified-token cache', () => {
  // With a JWKS cache age of 0, each signature check downloads the JWKS: the downloads count the
  // checks, and a token the verifier remembers costs none.
  const cachedVerifier = () => {
    let at = Date.now();
    const verify = createJwtVerifier(config, { jwksCacheMaxAgeMs: 0, now: () => at });
    const checks = async (token: string) => {
      const before = jwks.fetches();
      await verify(token);
      return jwks.fetches() - before;
    };
    return { verify, checks, advance: (ms: number) => (at += ms) };
  };

  it('trusts a verified token for VERIFIED_TOKEN_CACHE_MS, then checks its signature again', async () => {
    const { verify, checks, advance } = cachedVerifier();
    const token = await jwks.es256Token({ sub: 'cached' });
    const first = await verify(token);
    advance(VERIFIED_TOKEN_CACHE_MS - 1);
    expect(await verify(token)).toBe(first);
    expect(await checks(token)).toBe(0);
    advance(1);
    expect(await checks(token)).toBe(1);
  });

  it("never past the token's exp", async () => {
    const { checks, advance } = cachedVerifier();
    const token = await jwks.es256Token({ sub: 'short-lived', expiresIn: 30 });
    expect(await checks(token)).toBe(1);
    advance(29_000);
    expect(await checks(token)).toBe(0);
    advance(1_000);
    expect(await checks(token)).toBe(1);
  });

  it('remembers at most VERIFIED_TOKEN_CACHE_MAX_ENTRIES tokens, dropping the oldest', async () => {
    const { checks } = cachedVerifier();
    const tokens: string[] = [];
    for (let index = 0; index <= VERIFIED_TOKEN_CACHE_MAX_ENTRIES; index += 1) {
      tokens.push(await jwks.es256Token({ sub: `u${index}` }));
      expect(await checks(tokens[index]!)).toBe(1);
    }
    expect(await checks(tokens[1]!)).toBe(0);
    expect(await checks(tokens[0]!)).toBe(1);
  });

  it('remembers no refused token, and hands out frozen viewers (every request with a token shares one)', async () => {
    const { verify } = cachedVerifier();
    const wrongKey = await hs256Token({ sub: 'u' }, 'x'.repeat(40));
    expect(await refusal(verify(wrongKey))).toMatch(/signature/);
    expect(await refusal(verify(wrongKey))).toMatch(/signature/);
    const verified = await verify(await hs256Token({ sub: 'frozen', grants: ['tasks:all'] }));
    expect(Object.isFrozen(verified.viewer)).toBe(true);
    expect(Object.isFrozen(verified.viewer.grants)).toBe(true);
  });
});

describe('authentication settings', () => {
  it('default to local mode on 127.0.0.1; any key source turns JWT verification on', () => {
    const local = loadConfig({});
    expect(local.host).toBe('127.0.0.1');
    expect(local.auth.mode).toBe('local');
    const supabase = loadConfig({
      SUPABASE_URL: 'https://p.supabase.co/',
      SUPABASE_SERVICE_ROLE_KEY: 'k'.repeat(40),
    });
    expect(supabase.auth).toMatchObject({
      mode: 'jwt',
      jwksUrl: 'https://p.supabase.co/auth/v1/.well-known/jwks.json',
      audience: 'authenticated',
    });
    expect(loadConfig({ SUPABASE_JWT_SECRET: JWT_SECRET }).auth.mode).toBe('jwt');
    expect(loadConfig({ CAS_JWKS_URL: 'http://127.0.0.1:1/jwks.json' }).auth.jwksUrl).toBe(
      'http://127.0.0.1:1/jwks.json',
    );
  });

  it('refuse production without authentication, and a short secret', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/^NODE_ENV=production needs authentication/);
    expect(() =>
      loadConfig({ NODE_ENV: 'production', CAS_AUTH: 'local', SUPABASE_JWT_SECRET: JWT_SECRET }),
    ).toThrow(/needs authentication/);
    expect(loadConfig({ NODE_ENV: 'production', SUPABASE_JWT_SECRET: JWT_SECRET }).auth.mode).toBe('jwt');
    expect(() => loadConfig({ SUPABASE_JWT_SECRET: 'short' })).toThrow(/SUPABASE_JWT_SECRET/);
  });
});
