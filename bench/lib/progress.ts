/** Progress lines on stderr, prefixed with the time since the benchmark started. */

const startedAt = performance.now();

export function elapsedSeconds(): number {
  return (performance.now() - startedAt) / 1000;
}

function stamp(): string {
  const total = Math.floor(elapsedSeconds());
  const minutes = String(Math.floor(total / 60)).padStart(2, '0');
  const seconds = String(total % 60).padStart(2, '0');
  return `${minutes}:${seconds}`;
}

export function progress(message: string): void {
  process.stderr.write(`[bench ${stamp()}] ${message}\n`);
}

/** Section heading in the progress output. */
export function section(title: string): void {
  process.stderr.write(`\n[bench ${stamp()}] ==== ${title} ====\n`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `tick` every `everyMs` while `work` runs (for long steps: "enqueued 200/500"), and stops
 * when it settles.
 */
export async function withTicker<T>(work: Promise<T>, tick: () => string, everyMs = 2_000): Promise<T> {
  const timer = setInterval(() => progress(tick()), everyMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
