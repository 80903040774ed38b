import { type ErrorCode, SatchelError } from './errors.ts';

/** Codes that say "not now" rather than "no": the node or server may answer the same call a moment later. */
export const TRANSIENT_CODES: readonly ErrorCode[] = ['UNAVAILABLE', 'TIMEOUT'];

export interface BackoffOptions {
  /** Delay after the first failure, before jitter. Default 100 ms. */
  baseMs?: number;
  /** Longest delay, before jitter. Default 2,000 ms. */
  capMs?: number;
  /** Error codes worth another attempt; anything else (and anything not a SatchelError) fails at once. */
  retryOn?: readonly ErrorCode[];
}

/**
 * The one retry policy: after `n` failures wait min(cap, base·2^(n−1)) times a random factor in [0.5, 1)
 * ("equal jitter"). The jitter is there because failures come in crowds — every function of a job loses the same
 * node at the same moment — and without it they all come back in the same millisecond; the floor of half keeps
 * the delay from collapsing to zero, which full jitter allows.
 */
export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  readonly retryOn: readonly ErrorCode[];

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 100;
    this.capMs = options.capMs ?? 2_000;
    this.retryOn = options.retryOn ?? TRANSIENT_CODES;
  }

  /** How long to wait after the `failures`-th failure in a row (1 for the first). */
  delay(failures: number, random: () => number = Math.random): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
    return ceiling * (0.5 + random() / 2);
  }

  /** Whether `error` is one this policy retries. */
  retries(error: unknown): boolean {
    return error instanceof SatchelError && this.retryOn.includes(error.code);
  }
}

export interface RetryOptions extends BackoffOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Told before each wait: the error, the attempt that failed (from 1) and the delay chosen. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `attempt` until it resolves, it throws an error the policy does not retry, or `attempts` are used up
 * (then the last error is thrown).
 */
export async function retry<T>(attempt: (n: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const backoff = new Backoff(options);
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (n >= options.attempts || !backoff.retries(error)) throw error;
      const delayMs = backoff.delay(n);
      options.onRetry?.(error, n, delayMs);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
