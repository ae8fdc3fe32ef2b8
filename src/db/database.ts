/**
 * The database seam: run SQL, run a transaction, listen to a channel. Drivers know nothing of
 * domains; domain code reaches the database through `SqlFunctions` (see sql-functions.ts).
 */
export type SqlParam = string | number | boolean | null | Date | readonly SqlParam[];

/** How a statement may be run. */
export interface QueryOptions {
  /**
   * The text is one of the few the service sends again and again (the SQL-function calls of
   * sql-functions.ts): a driver may keep it prepared on each connection, so that the server
   * neither parses nor plans it at every call.
   */
  prepare?: boolean;
}

export interface Queryable {
  /** Runs one statement with positional parameters ($1, $2, ...) and returns its rows. */
  query<Row = Record<string, unknown>>(
    sql: string,
    params?: readonly SqlParam[],
    options?: QueryOptions,
  ): Promise<Row[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export type Unlisten = () => Promise<void>;

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `work` in one transaction on one connection; rolls back when it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Calls `onNotify` with each NOTIFY payload sent on `channel` until the returned function runs. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<Unlisten>;
  /** Idempotent. */
  close(): Promise<void>;
  /** Connections of the pool by state; absent where there is no pool (PGlite: one connection). */
  poolStats?(): PoolStats;
}

export interface PoolStats {
  inUse: number;
  idle: number;
  /** Queries waiting for a connection. */
  waiting: number;
}
