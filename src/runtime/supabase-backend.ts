import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { BUILT_IN_AGENT_IDS } from '../domains/agent/agent.js';
import { readMigrations } from '../db/migrate.js';
import {
  createSupabaseClient,
  supabaseFailure,
  supabaseSqlFunctions,
  SupabaseError,
  type SupabaseSettings,
} from '../db/supabase.js';
import { databaseChangeFeed, type ChangeFeed, type FeedListener } from '../feed/change-feed.js';
import { supabaseRealtimeFeed } from '../feed/supabase-realtime.js';
import type { Logger } from '../logger.js';
import type { Backend } from './backend.js';

/**
 * Supabase mode: the SQL functions over PostgREST RPC, the change feed over Supabase Realtime.
 * The schema is deployed with the Supabase CLI (`supabase db push`), not by this process: prepare()
 * only checks that every migration in supabase/migrations is there, so a wrong URL, a wrong key or
 * a project without the schema fails at start with a message saying which.
 */
export function supabaseBackend(
  settings: SupabaseSettings,
  logger: Logger,
  /** Requests to the project in flight at once (the pool size the other modes would use). */
  maxConcurrentRequests?: number,
): Backend {
  const client = createSupabaseClient(settings);
  const feed = supabaseRealtimeFeed(client, logger);
  const sql = supabaseSqlFunctions(client, settings.url, maxConcurrentRequests);
  /** The migrations this code expects; read once (the files do not change under a running process). */
  let expected: ReturnType<typeof readMigrations> | null = null;
  let closed = false;

  const schemaState = async () => {
    const { data, error, status } = await client.rpc('cas_applied_migrations');
    if (error) {
      if (error.code === 'PGRST202') {
        throw new SupabaseError(
          `the CAS schema is not deployed to ${settings.url} (it has no cas_applied_migrations function): ` +
            'link the project and run `supabase db push` (see docs/supabase.md)',
          status,
          error.code,
          error,
        );
      }
      throw supabaseFailure(settings.url, 'cas_applied_migrations', status, error);
    }
    const deployed = new Set((data as unknown[] | null)?.map(String) ?? []);
    expected ??= readMigrations();
    const missing = (await expected).filter((m) => !deployed.has(m.version));
    return { missing, deployed: deployed.size };
  };

  return {
    kind: 'supabase',
    sql,
    feed,
    async prepare() {
      const { missing, deployed } = await schemaState();
      if (missing.length > 0) {
        throw new SupabaseError(
          `${settings.url} lacks ${missing.length} of the migrations in supabase/migrations ` +
            `(${missing.map((m) => `${m.version}_${m.name}`).join(', ')}): run \`supabase db push\``,
          200,
          null,
        );
      }
      logger.info({ url: settings.url, migrations: deployed }, 'Supabase schema is deployed');
      // supabase/seed.sql goes with `supabase db push --include-seed`; without it the built-in
      // agents are missing (the other modes apply the seed at every start).
      const agents = await sql.rows<{ id: string }>('cas_list_agents', { p_ids: [...BUILT_IN_AGENT_IDS] });
      const unseeded = BUILT_IN_AGENT_IDS.filter((id) => !agents.some((agent) => agent.id === id));
      if (unseeded.length > 0) {
        logger.warn(
          { missing: unseeded },
          'built-in agents are missing: seed the project with `supabase db push --include-seed` (docs/supabase.md)',
        );
      }
      if (!(await sql.value<boolean>('cas_broadcasts_notices', {}))) {
        logger.warn(
          'this project does not send change notices to Supabase Realtime (the realtime schema did not ' +
            'exist when the migrations ran): changes are picked up by polling only. Run ' +
            '`select cas_install_realtime_broadcast();` in its SQL editor (docs/supabase.md)',
        );
      }
    },
    migrationsApplied: async () => (await schemaState()).missing.length === 0,
    poolStats: () => sql.poolStats(),
    async close() {
      if (closed) return;
      closed = true;
      await feed.stop();
    },
  };
}

/**
 * DATABASE_URL and Supabase both set: data goes through the database connection; notices come
 * over Supabase Realtime when that database broadcasts them (it is the Supabase project's own
 * database, so supabase/migrations installed the Broadcast triggers), and over LISTEN otherwise.
 */
export function realtimeFeedOverDatabase(
  db: Database,
  settings: SupabaseSettings,
  logger: Logger,
  options: { require?: boolean } = {},
): ChangeFeed {
  return deferredFeed(logger, async () => {
    const [row] = await db.query<{ broadcasts: boolean }>('select cas_broadcasts_notices() as broadcasts');
    if (row?.broadcasts) {
      logger.info('notices over Supabase Realtime (data over DATABASE_URL)');
      return supabaseRealtimeFeed(createSupabaseClient(settings), logger);
    }
    if (options.require) {
      throw new Error(
        'CAS_FEED=realtime, but the database at DATABASE_URL does not broadcast to Supabase Realtime ' +
          '(no realtime schema when the migrations ran); is it the Supabase project database?',
      );
    }
    logger.info('notices over LISTEN: the database at DATABASE_URL does not broadcast to Supabase Realtime');
    return databaseChangeFeed(db, logger);
  });
}

/** A feed whose implementation is chosen when it starts; listeners may subscribe before that. */
function deferredFeed(logger: Logger, choose: () => Promise<ChangeFeed>): ChangeFeed {
  const listeners = new Set<FeedListener>();
  let inner: ChangeFeed | null = null;
  let starting: Promise<void> | null = null;
  return {
    start() {
      starting ??= (async () => {
        const feed = await choose();
        feed.subscribe((notice) => {
          for (const listener of listeners) {
            try {
              listener(notice);
            } catch (error) {
              logger.error({ err: error }, 'feed listener failed');
            }
          }
        });
        await feed.start();
        inner = feed;
      })();
      return starting;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      listeners.clear();
      await starting?.catch(() => undefined);
      const feed = inner;
      inner = null;
      await feed?.stop();
    },
  };
}

/** The feed CAS_FEED and the mode select for a backend on a database this process connects to. */
export function feedForDatabase(db: Database, config: Config, logger: Logger): ChangeFeed | null {
  if (!config.supabase || config.feed === 'listen') return null;
  return realtimeFeedOverDatabase(db, config.supabase, logger, { require: config.feed === 'realtime' });
}
