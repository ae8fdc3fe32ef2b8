/**
 * Reads of concurrent operations merged into one runtime call per turn of the event loop.
 *
 * Each operation keeps its own DataLoaders (loaders.ts), so a cached value never crosses from one
 * operation to another; what operations share is the round trip. A batch collects the ids every
 * operation asks for until the event loop has handled the I/O at hand (setImmediate), then makes
 * one call for all of them. Fifty dashboards in flight cost four queries instead of two hundred:
 * each query costs the API process a loopback write and a result parse, and PostgreSQL a statement
 * (`npm run bench -- --only=http`, dashboard rows). A read that starts after a write has committed
 * still sees it: a batch only gathers reads that were waiting at the same moment.
 */

/** Most ids in one shared call; a fuller batch starts a new one (the SQL takes them as an array). */
export const MAX_SHARED_READ_IDS = 1_000;

type Read<V> = (ids: readonly string[]) => Promise<V[]>;

interface Waiter<V> {
  ids: readonly string[];
  resolve: (values: V[]) => void;
  reject: (error: unknown) => void;
}

interface Batch<V> {
  ids: Set<string>;
  read: Read<V>;
  waiters: Waiter<V>[];
}

export class SharedReads {
  private readonly open = new Map<string, Batch<unknown>>();

  /**
   * `read(ids)` in input order, made together with every other read under `key` this turn. `key`
   * names the read completely (what it reads and every parameter, e.g. the viewer's visibility):
   * the first caller's `read` serves them all.
   */
  load<V>(key: string, ids: readonly string[], read: Read<V>): Promise<V[]> {
    let batch = this.open.get(key) as Batch<V> | undefined;
    if (!batch) {
      const opened: Batch<V> = { ids: new Set(), read, waiters: [] };
      this.open.set(key, opened as Batch<unknown>);
      setImmediate(() => void this.run(key, opened));
      batch = opened;
    }
    for (const id of ids) batch.ids.add(id);
    if (batch.ids.size >= MAX_SHARED_READ_IDS) this.close(key, batch as Batch<unknown>);
    const joined = batch;
    return new Promise<V[]>((resolve, reject) => joined.waiters.push({ ids, resolve, reject }));
  }

  /** One value (`read()`), shared like `load`. */
  async one<V>(key: string, read: () => Promise<V>): Promise<V> {
    const [value] = await this.load(key, [''], async () => [await read()]);
    return value!;
  }

  /** Later callers under `key` start a new batch. */
  private close(key: string, batch: Batch<unknown>): void {
    if (this.open.get(key) === batch) this.open.delete(key);
  }

  private async run<V>(key: string, batch: Batch<V>): Promise<void> {
    this.close(key, batch as Batch<unknown>);
    const ids = [...batch.ids];
    try {
      const values = await batch.read(ids);
      if (values.length !== ids.length)
        throw new Error(`shared read ${key} returned ${values.length} values for ${ids.length} ids`);
      const byId = new Map(ids.map((id, index) => [id, values[index]!]));
      for (const waiter of batch.waiters) waiter.resolve(waiter.ids.map((id) => byId.get(id)!));
    } catch (error) {
      for (const waiter of batch.waiters) waiter.reject(error);
    }
  }
}

const byRuntime = new WeakMap<object, SharedReads>();

/** The shared reads of every operation served by `runtime` in this process. */
export function sharedReadsOf(runtime: object): SharedReads {
  let shared = byRuntime.get(runtime);
  if (!shared) byRuntime.set(runtime, (shared = new SharedReads()));
  return shared;
}
