import { CasError, ErrorCode } from '../errors.js';

/**
 * An unbounded producer feeding a bounded async iterator. When the consumer is too slow and more
 * than `capacity` items wait, the iterator ends with a SUBSCRIPTION_OVERFLOW error rather than
 * dropping items silently.
 */
export class BoundedQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | null = null;
  private failWaiting: ((error: unknown) => void) | null = null;
  private error: unknown = null;
  private closed = false;

  constructor(private readonly capacity: number) {}

  push(item: T): void {
    if (this.closed || this.error) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = this.failWaiting = null;
      resolve({ value: item, done: false });
      return;
    }
    if (this.items.length >= this.capacity) {
      this.fail(
        new CasError(
          ErrorCode.SUBSCRIPTION_OVERFLOW,
          `subscriber fell more than ${this.capacity} items behind; resume with the last cursor received`,
        ),
      );
      return;
    }
    this.items.push(item);
  }

  /** Ends the iterator with `error` once the items before it are consumed. */
  fail(error: unknown): void {
    if (this.closed || this.error) return;
    this.error = error;
    this.items.length = 0;
    if (this.failWaiting) {
      const reject = this.failWaiting;
      this.waiting = this.failWaiting = null;
      reject(error);
    }
  }

  close(): void {
    this.closed = true;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = this.failWaiting = null;
      resolve({ value: undefined, done: true });
    }
  }

  get size(): number {
    return this.items.length;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.error) return Promise.reject(this.error);
        if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise<IteratorResult<T>>((resolve, reject) => {
          this.waiting = resolve;
          this.failWaiting = reject;
        });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
