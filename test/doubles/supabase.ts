/**
 * A local stand-in for a Supabase project's API, as the Supabase driver reaches it: one node:http
 * server on 127.0.0.1 (random port) with the PostgREST double at /rest/v1 and the Realtime double
 * at /realtime/v1/websocket, both on a real database. Point SUPABASE_URL at `url` and
 * SUPABASE_SERVICE_ROLE_KEY at `keys.serviceRole`.
 *
 * The database must carry supabase/migrations; installRealtimeSchema() adds the realtime schema
 * stand-in and installs the Broadcast from Database triggers, so events are broadcast as on Supabase.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Database } from '../../src/db/database.js';
import { postgrestDouble, type PostgrestDouble, type SupabaseKeys } from './postgrest.js';
import { realtimeDouble, type RealtimeDouble } from './realtime.js';
import { REALTIME_SCHEMA_SQL } from './realtime-schema.js';

export interface SupabaseDouble {
  /** http://127.0.0.1:<port>, the SUPABASE_URL. */
  url: string;
  keys: SupabaseKeys;
  /** SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY for loadConfig. */
  env: { SUPABASE_URL: string; SUPABASE_SERVICE_ROLE_KEY: string };
  postgrest: PostgrestDouble;
  realtime: RealtimeDouble;
  close(): Promise<void>;
}

/** A JWT-shaped key with a role claim, as Supabase's legacy anon and service_role keys look. */
function fakeKey(role: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return [
    part({ alg: 'HS256', typ: 'JWT' }),
    part({ iss: 'supabase-double', role }),
    randomBytes(32).toString('base64url'),
  ].join('.');
}

/**
 * Installs the realtime schema stand-in in `db` (already migrated) and then the Broadcast from
 * Database triggers, as a project whose Realtime appeared after its migrations is told to.
 */
export async function installRealtimeSchema(db: Database): Promise<void> {
  await db.exec(REALTIME_SCHEMA_SQL);
  await db.exec('select cas_install_realtime_broadcast()');
}

/** How long the double keeps an idle HTTP connection open. */
const DOUBLE_KEEP_ALIVE_MS = 120_000;

export async function startSupabaseDouble(options: {
  db: Database;
  maxRows?: number;
}): Promise<SupabaseDouble> {
  const keys: SupabaseKeys = { serviceRole: fakeKey('service_role'), anon: fakeKey('anon') };
  const postgrest = postgrestDouble({ db: options.db, keys, maxRows: options.maxRows });
  const realtime = realtimeDouble({ db: options.db, keys });
  await realtime.start();

  const server: Server = createServer((req, res) => {
    postgrest
      .handle(req, res)
      .then((handled) => {
        if (handled) return;
        // What Supabase's gateway answers for a path it has no route for.
        res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ message: 'no Route matched with those values' }));
      })
      .catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ message: `double failed: ${(error as Error).message}` }));
      });
  });
  // Keeps idle connections open longer than any client keeps them for reuse (Node's fetch: 4 s), as
  // Supabase's gateway does. With Node's default (5 s), a loaded machine lets a request go out on a
  // socket the server is closing at that moment: ECONNRESET.
  server.keepAliveTimeout = DOUBLE_KEEP_ALIVE_MS;
  server.headersTimeout = DOUBLE_KEEP_ALIVE_MS + 1_000;
  server.on('upgrade', (req, socket, head) => {
    if (!realtime.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    keys,
    env: { SUPABASE_URL: url, SUPABASE_SERVICE_ROLE_KEY: keys.serviceRole },
    postgrest,
    realtime,
    close: () =>
      (closing ??= (async () => {
        await realtime.stop();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })()),
  };
}
