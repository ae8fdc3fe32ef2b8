import type { Database, Queryable } from './database.js';

export interface RoundTripCounter {
  count: number;
}

/**
 * The database with every statement counted (each `query`, `exec` and statement inside a
 * transaction); everything else passes through unchanged. Tests and the benchmark use it to
 * check how many round trips a request costs.
 */
export function countingDatabase(db: Database, counter: RoundTripCounter): Database {
  const countQueries = <Q extends Queryable>(target: Q): Q =>
    new Proxy(target, {
      get(object, property, receiver) {
        const value = Reflect.get(object, property, receiver);
        if (property === 'query' || property === 'exec') {
          return (...args: unknown[]) => {
            counter.count++;
            return (value as (...a: unknown[]) => unknown).apply(object, args);
          };
        }
        if (property === 'transaction') {
          return (work: (tx: Queryable) => Promise<unknown>) =>
            (value as Database['transaction']).call(object, (tx) => work(countQueries(tx)));
        }
        return typeof value === 'function' ? value.bind(object) : value;
      },
    });
  return countQueries(db);
}
