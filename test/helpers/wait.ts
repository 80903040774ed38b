/**
 * Waiting for what a test means rather than for a time: `waitFor` polls a condition every few milliseconds and
 * returns as soon as it holds, so a fast machine is not held back and a slow one is not failed by a sleep that
 * was too short. Its timeout is a guard against hanging, not a timing assertion.
 */

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** What is awaited, for the failure message: "the survivor serving after the kill". */
  what?: string;
  /** Between polls (default 5 ms; a condition that asks a server over HTTP wants more). */
  intervalMs?: number;
  /** Called at the timeout: the state the condition saw, appended to the failure message. */
  detail?: () => string;
}

/** Resolves once `condition` returns true; throws `<what> not reached within <timeoutMs> ms` after the timeout. */
export async function waitFor(condition: () => boolean | Promise<boolean>, options: WaitOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > until) {
      const detail = options.detail?.();
      throw new Error(`${options.what ?? 'condition'} not reached within ${timeoutMs} ms${detail === undefined ? '' : ` (${detail})`}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 5));
  }
}

/**
 * How many of `items` match `which`, counted as the array grows (each item looked at once): for polling a
 * growing record of operations every few milliseconds without rescanning it.
 */
export function counter<T>(items: readonly T[], which: (item: T) => boolean): () => number {
  let scanned = 0;
  let found = 0;
  return () => {
    for (; scanned < items.length; scanned++) if (which(items[scanned]!)) found++;
    return found;
  };
}
