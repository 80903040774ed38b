/**
 * Each job's `/api/jobs/:id` (its hints: what it asked for; its whole placement), which the stream's rows do
 * not carry. Fetched once per job and again when its placement epoch moves, two at a time, so a page opened on
 * a cluster of many jobs does not send them all at once.
 */
import { readJob } from './api.ts';
import { state } from './state.ts';
import type { JobHints, JobRow } from './types.ts';

const MAX_IN_FLIGHT = 2;
const inFlight = new Set<string>();
/** Jobs whose fetch failed, and when: tried again after RETRY_MS, not every second. */
const failed = new Map<string, number>();
const RETRY_MS = 10_000;

function stale(job: JobRow): boolean {
  const known = state.details.get(job.id);
  return known === undefined || known.placement.epoch !== job.epoch;
}

/**
 * Fetches the details of jobs that have none (the open job first), or an older epoch's; `changed` is called
 * after each one arrives.
 */
export function fetchDetails(jobs: JobRow[], changed: () => void): void {
  // The open job's placement is shown whole (every generation): its details are wanted even with hints.
  const wanted = jobs.filter((job) => (job.hints === undefined || job.id === state.openJob) && stale(job));
  wanted.sort((a, b) => Number(b.id === state.openJob) - Number(a.id === state.openJob));
  const now = Date.now();
  for (const job of wanted) {
    if (inFlight.size >= MAX_IN_FLIGHT) return;
    if (inFlight.has(job.id) || now - (failed.get(job.id) ?? 0) < RETRY_MS) continue;
    inFlight.add(job.id);
    readJob(job.id).then(
      (detail) => {
        inFlight.delete(job.id);
        failed.delete(job.id);
        if (detail !== null && state.jobs.some((j) => j.id === job.id)) state.details.set(job.id, detail);
        changed();
        fetchDetails(state.jobs, changed);
      },
      () => {
        // Gone meanwhile (404), or the console is unreachable: the next snapshot says which.
        inFlight.delete(job.id);
        failed.set(job.id, Date.now());
      },
    );
  }
}

/** What the job asked for, when known: from its row if the row carries hints, else from its details. */
export function hintsOf(job: JobRow) {
  return job.hints ?? state.details.get(job.id)?.hints;
}

/**
 * The bytes a job asked for: its capacity hint, times its copies (a reservation counts every copy, so this is
 * what compares with it). Null without a capacity hint (the job then reserves the 64 MiB default, or what its
 * peakThroughput hint calls for).
 */
export function requestedBytes(hints: JobHints | undefined): number | null {
  if (hints?.capacity === undefined) return null;
  return hints.capacity * (hints.replicas ?? 1);
}
