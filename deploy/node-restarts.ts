/**
 * When `satchel up` starts again a storage node whose process died (LocalCluster's `restartNodes`), as
 * Kubernetes restarts a pod's container: 1 s after the exit, the wait doubling while the node keeps dying within
 * a minute of its start, at most 60 s; a node that lived a minute starts over at 1 s.
 */
const FIRST_MS = 1_000;
const MAX_MS = 60_000;
const RESET_AFTER_MS = 60_000;

/** The wait before the next restart, given the last one's (undefined: none yet) and when the node last started. */
export function nextRestartDelay(lastMs: number | undefined, startedAt: number | undefined, now: number): number {
  const livedLong = now - (startedAt ?? 0) >= RESET_AFTER_MS;
  return livedLong || lastMs === undefined ? FIRST_MS : Math.min(2 * lastMs, MAX_MS);
}
