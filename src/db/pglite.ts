import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import type { Database, Queryable, SqlParam } from './database.js';

export interface PgliteOptions {
  /** A folder to keep the data in, or undefined for an in-memory database. */
  dataDir?: string;
  /** A data folder dump (from `dumpDataDir`) to start from; tests use a migrated template. */
  loadDataDir?: Blob | File;
}

const queryable = (db: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
  async query<Row>(sql: string, params: readonly SqlParam[] = []) {
    const result = await db.query<Row>(sql, params as unknown[]);
    return result.rows;
  },
  async exec(sql: string) {
    await db.exec(sql);
  },
});

export async function openPglite(options: PgliteOptions = {}): Promise<Database & { pglite: PGlite }> {
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
  const pglite = await PGlite.create({ dataDir: options.dataDir, loadDataDir: options.loadDataDir });
  let closed = false;
  return {
    kind: 'pglite',
    pglite,
    ...queryable(pglite),
    transaction: (work) => pglite.transaction((tx) => work(queryable(tx))),
    async listen(channel, onNotify) {
      const unlisten = await pglite.listen(channel, onNotify);
      return async () => {
        if (!closed) await unlisten();
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      await pglite.close();
    },
  };
}
