/**
 * Least time between two output writes of one task: at most four writes a second, however fast a
 * model streams tokens. Every delta lands (deltas are concatenated, never dropped), and the
 * writer is flushed before the attempt's outcome is written.
 */
export const OUTPUT_WRITE_INTERVAL_MS = 250;

/** Characters (Unicode code points, as Postgres counts them) in `text`. */
export const codePointLength = (text: string): number => {
  let length = 0;
  for (const _ of text) length += 1;
  return length;
};

export interface OutputWriterDeps {
  /** Writes `text` at `offset` (code points) of the task's output. */
  write(offset: number, text: string): Promise<void>;
  /** A write failed; `lost` when the lease is gone (this attempt must stop writing). */
  failed(error: unknown): { leaseLost: boolean };
  intervalMs?: number;
}

/**
 * ctx.output of one run of a handler. Each run writes its text from offset 0 (the database skips
 * what is already stored, see 20261203000200_cas_task_output.sql), so a replayed run does not
 * duplicate text and a retried one replaces what it answers differently.
 */
export class OutputWriter {
  private pending = '';
  private offset = 0;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  private lastWriteAt = 0;
  private stopped = false;

  constructor(private readonly deps: OutputWriterDeps) {}

  append(delta: string): void {
    if (typeof delta !== 'string') throw new TypeError('ctx.output takes a string');
    if (this.stopped || delta.length === 0) return;
    // Postgres text cannot hold NUL.
    this.pending += delta.replaceAll('\u0000', '\uFFFD');
    this.schedule();
  }

  /** Characters (code points) this run has emitted so far. */
  length(): number {
    return this.offset + codePointLength(this.pending);
  }

  /**
   * Takes back what this run emitted after `length` characters (a model request that failed
   * mid-stream and is retried): text not yet written is dropped, and the next write starts at
   * `length`, so the database replaces the rest from there (see the migration).
   */
  rewind(length: number): void {
    if (length >= this.length()) return;
    if (length >= this.offset) {
      this.pending = [...this.pending].slice(0, length - this.offset).join('');
    } else {
      this.pending = '';
      this.offset = length;
    }
  }

  /**
   * Starts this run's text after the first `length` characters, which it keeps (a graph resumed
   * from a checkpoint: the output of the nodes that will not run again). Only before any text.
   */
  continueAfter(length: number): void {
    if (this.offset === 0 && this.pending === '') this.offset = length;
  }

  /** Writes everything appended so far; stops further writes when `final`. */
  async flush(final = false): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.writing;
    await this.writePending();
    if (final) this.stopped = true;
  }

  private schedule(): void {
    if (this.timer || this.writing || !this.pending) return;
    const interval = this.deps.intervalMs ?? OUTPUT_WRITE_INTERVAL_MS;
    const delay = Math.max(0, this.lastWriteAt + interval - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.writing = this.writePending().finally(() => {
        this.writing = null;
        this.schedule();
      });
    }, delay);
  }

  private async writePending(): Promise<void> {
    const text = this.pending;
    if (!text || this.stopped) return;
    this.pending = '';
    this.lastWriteAt = Date.now();
    try {
      await this.deps.write(this.offset, text);
      this.offset += codePointLength(text);
    } catch (error) {
      if (this.deps.failed(error).leaseLost) {
        this.stopped = true;
        return;
      }
      // Kept for the next write: text is never dropped for a passing failure.
      this.pending = text + this.pending;
    }
  }
}
