/** What the page knows, filled by the live stream (stream.ts) and read by every view. */
import { type Band, DEFAULT_BAND } from './levels.ts';
import type { ClusterEvent, JobDetail, JobRow, NodeRow, Totals } from './types.ts';

/** How far back the charts go (the stream's history covers the same five minutes). */
export const WINDOW_MS = 5 * 60 * 1000;
export const MAX_EVENTS = 200;

export interface JobSample {
  t: number;
  used: number;
  reserved: number;
  opsPerSec: number;
  bytesInPerSec: number;
  bytesOutPerSec: number;
  latencyMeanUs: number | null;
}

export const state = {
  nodes: [] as NodeRow[],
  jobs: [] as JobRow[],
  totals: null as Totals | null,
  /** The server's clock at the last snapshot (ages and leases are counted from it). */
  t: 0,
  /** When the last snapshot arrived, by this browser's clock. */
  lastSnapshotAt: 0,
  events: [] as ClusterEvent[],
  band: DEFAULT_BAND as Band,
  /** Each job's bytes (used, reserved) and requests (rates, mean latency) at every snapshot this page saw, for the last WINDOW_MS. */
  jobSamples: new Map<string, JobSample[]>(),
  /** `/api/jobs/:id` answers (hints, whole placement), by job; fetched again when the job's epoch moves. */
  details: new Map<string, JobDetail>(),
  /** The job whose detail view is open. */
  openJob: null as string | null,
};

export function serverNow(): number {
  return state.t || Date.now();
}

/** Keeps each job's samples for the last WINDOW_MS; forgets jobs that are gone. */
export function sampleJobs(t: number, jobs: JobRow[]): void {
  const live = new Set<string>();
  for (const job of jobs) {
    live.add(job.id);
    let samples = state.jobSamples.get(job.id);
    if (samples === undefined) state.jobSamples.set(job.id, (samples = []));
    const last = samples[samples.length - 1];
    if (last !== undefined && last.t >= t) continue; // a repeated snapshot (reconnect)
    samples.push({
      t,
      used: job.usage,
      reserved: job.reservation,
      opsPerSec: job.opsPerSec,
      bytesInPerSec: job.bytesInPerSec,
      bytesOutPerSec: job.bytesOutPerSec,
      latencyMeanUs: job.latencyMeanUs,
    });
    while (samples.length > 0 && samples[0]!.t < t - WINDOW_MS) samples.shift();
  }
  for (const id of state.jobSamples.keys()) if (!live.has(id)) state.jobSamples.delete(id);
  for (const id of state.details.keys()) if (!live.has(id)) state.details.delete(id);
}
