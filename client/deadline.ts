/**
 * A call's deadline: `timeoutMs` bounds a whole call (a get, a put, a block of a large value), retries and waits
 * for a new placement included, not each request it makes. Before, a get while both holders of a replicas-2 key
 * were frozen asked one, then the other, then waited for a placement, then asked again: 8.8 s with `timeoutMs`
 * 2,000 (an outsider's SIGSTOP of both nodes, 2026-12-07).
 */
import { SatchelError } from '../proto/index.ts';

/**
 * How far past its deadline a call may end rather than start a timer of its own: a request sent within this of
 * the call's start has its connection's timeout (the same `timeoutMs`) end it in time. So the common path, one
 * request answered, sets no timer; a retry later in the call does.
 */
export const DEADLINE_SLACK_MS = 100;

/**
 * Half of what is left until `deadline`, as a deadline: what one request of a replicated job's call may take, so a
 * frozen node leaves the call time for the next copy or the placement that replaces it. A timer per replicated
 * request (`settleBy`: 0.7 µs in a tsx loop here, against ~100 µs for a replicated PUT); none for a single copy,
 * whose retry goes to the same node.
 */
export function shareOf(deadline: number): number {
  if (deadline === Infinity) return Infinity;
  const now = Date.now();
  return now + (deadline - now) / 2;
}

/** Whether a call with `deadline` (ms since the epoch) has no time left. */
export function pastDeadline(deadline: number): boolean {
  return Date.now() >= deadline;
}

/**
 * `request`, or TIMEOUT once `deadline` passes, whichever comes first (the request is left to end on its own: a
 * write may still land, as after any TIMEOUT; `givenUp` runs first, so a read into a caller's buffer stops
 * writing there: NodeConnection.releaseInto). No timer when the request's own timeout, `timeoutMs` from now,
 * ends it within DEADLINE_SLACK_MS of the deadline.
 */
export function settleBy<T>(request: Promise<T>, deadline: number, timeoutMs: number, givenUp?: () => void): Promise<T> {
  const left = deadline - Date.now();
  if (left + DEADLINE_SLACK_MS >= timeoutMs) return request;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        givenUp?.();
        reject(new SatchelError('TIMEOUT', `no answer within the call's ${timeoutMs} ms (timeoutMs), its retries included`));
      },
      Math.max(0, left),
    );
    request.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
