/**
 * Every default of the client in one place: what an option is when the caller leaves it out, and the limits and
 * retry policies the client applies by itself. The options' JSDoc (options.ts, watch.ts) quotes these values.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Backoff,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_WAIT_MS,
  ERROR_CODES,
  type ErrorCode,
  SatchelError,
  TRANSIENT_CODES,
} from '../proto/index.ts';

export { sleep };

export const CLIENT_DEFAULTS = {
  /** JobOptions.timeoutMs (and ConnectOptions'): every call fails with TIMEOUT past it. proto's, as the servers'. */
  timeoutMs: DEFAULT_TIMEOUT_MS,
  /** JobOptions.blockParallelism: block GET/PUTs of one large value in flight at once. */
  blockParallelism: 8,
  /** BatchOptions.window: putMany/getMany operations in flight at once. */
  batchWindow: 1024,
  /** ListOptions.pageSize, and the most keys a node gives in one page. */
  listPageSize: 100,
  maxListPageSize: 1000,
  /** WaitOptions.timeoutMs (waitFor, barrier): how long a key is waited for; at most proto's MAX_WAIT_MS. */
  waitTimeoutMs: DEFAULT_WAIT_MS,
  /** WatchOptions.maxBuffered: events held for a reader that is behind before the watch fails with FULL. */
  watchMaxBuffered: 100_000,
} as const;

/** Attempts of one operation through STALE (placement changed), FULL (grown), lost nodes and blocks vanishing mid-read. */
export const MAX_ATTEMPTS = 4;

/**
 * How long past its own deadline a WAIT may take to come back before the client stops waiting for the node. With
 * 5 s, a waitFor({ timeoutMs: 2000 }) on a frozen node took 7 s (an outsider's SIGSTOP, 2026-12-07); a node that
 * answers at its deadline is a few ms late, and later still the answer is TIMEOUT either way.
 */
export const WAIT_GRACE_MS = 500;

/**
 * Polls the metadata servers after STALE until they have the epoch the node named (the controller tells the nodes
 * first): usually a few ms, so it starts at 5 ms; the cap keeps a slow republish from costing a whole second.
 */
export const METADATA_CATCH_UP = new Backoff({ baseMs: 5, capMs: 200 });

/**
 * Polls for the placement that replaces an unreachable node of a replicated job, at most every 200 ms: the
 * controller replaces it within seconds and every write to its keys waits meanwhile. Jittered, because every
 * function of the job lost the same node at the same moment. Its codes are the ones a replicated job rides out.
 */
export const REPLACEMENT_POLL = new Backoff({ baseMs: 200, capMs: 200, retryOn: TRANSIENT_CODES });

/**
 * How long a replicated job's operation waits for a new placement after a node refused it (its lease lapsed)
 * before asking that node again: a node renews its lease with its next answered report (every second at most).
 */
export const REFUSAL_PAUSE_MS = 1_000;

/** The codes a watch ends with rather than retries: the job is gone, the token is refused, the handle closed. */
const WATCH_ENDS: readonly ErrorCode[] = ['NO_SUCH_JOB', 'UNAUTHORIZED', 'CLOSED'];

/** A watch subscribing again after a node was lost or refused it: any code but those that end the watch. */
export const WATCH_RETRY = new Backoff({ baseMs: 100, capMs: 2_000, retryOn: ERROR_CODES.filter((code) => !WATCH_ENDS.includes(code)) });

/** A node that did not answer in time or could not be reached (proto's TRANSIENT_CODES): another copy, or a later placement, may. */
export function isTransient(error: unknown): error is SatchelError {
  return error instanceof SatchelError && TRANSIENT_CODES.includes(error.code);
}
