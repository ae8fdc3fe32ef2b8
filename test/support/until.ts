/**
 * Polls `check` until it returns a value (not undefined) and resolves with it; throws "timed out
 * waiting for <what>" after `ms`. For outcomes that arrive asynchronously (a task ending, a run
 * finishing): the deadline is generous so a busy machine only makes the wait longer.
 */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  ms = 60_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
