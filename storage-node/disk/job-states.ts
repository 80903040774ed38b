// The disk engine's jobs: the bytes each holds, its writes in flight and its tombstones, and the lifecycle around
// DROP_JOB: a drop waits for the job's writes in flight and holds new ones back until the job is cleared. A job
// holding nothing, with nothing in flight and no tombstone, is forgotten.
import type { Tombstones } from '../tombstones.ts';
import { checkJob } from './index-codec.ts';

export interface JobState {
  bytes: number;
  /** Writes of this job in progress (PUT, UPDATE, DELETE, compaction moving one of its records). */
  inflight: number;
  dropping: Promise<number> | null;
  drained: (() => void) | null;
  /** Deleted keys' versions, when a DELETE asked to keep them (engine.ts "Tombstones"); in memory only. */
  tombstones: Tombstones | null;
}

export class JobStates {
  private readonly jobs = new Map<string, JobState>();

  get(jobId: string): JobState | undefined {
    return this.jobs.get(jobId);
  }

  /** Joins the job's writes in flight (after a DROP_JOB in progress), making its state on its first write. */
  async enter(jobId: string): Promise<JobState> {
    for (;;) {
      let job = this.jobs.get(jobId);
      if (job === undefined) {
        checkJob(jobId);
        job = { bytes: 0, inflight: 0, dropping: null, drained: null, tombstones: null };
        this.jobs.set(jobId, job);
      }
      if (job.dropping !== null) {
        await job.dropping.catch(() => undefined);
        continue;
      }
      job.inflight++;
      return job;
    }
  }

  /** A write of the job that `enter`ed ended. */
  leave(jobId: string, job: JobState): void {
    if (--job.inflight > 0) return;
    if (job.drained !== null) job.drained();
    else if (job.dropping === null && job.bytes === 0 && (job.tombstones?.size ?? 0) === 0 && this.jobs.get(jobId) === job)
      this.jobs.delete(jobId);
  }

  /**
   * Runs `clear` once the job's writes in flight have ended, holding new ones back until it is done; resolves
   * with what it freed. A drop already in progress is joined (0: it freed the bytes); an unknown job is 0.
   */
  async drop(jobId: string, clear: (job: JobState) => Promise<number>): Promise<number> {
    const job = this.jobs.get(jobId);
    if (job === undefined) return 0;
    if (job.dropping !== null) {
      await job.dropping.catch(() => undefined);
      return 0;
    }
    const dropping = (async () => {
      if (job.inflight > 0) await new Promise<void>((resolve) => (job.drained = resolve));
      job.drained = null;
      return clear(job);
    })();
    job.dropping = dropping;
    try {
      return await dropping;
    } finally {
      job.dropping = null;
      if (job.inflight === 0 && job.bytes === 0 && this.jobs.get(jobId) === job) this.jobs.delete(jobId);
    }
  }

  /** Bytes held per job, for jobs holding any. */
  usage(): Map<string, number> {
    const usage = new Map<string, number>();
    for (const [jobId, job] of this.jobs) if (job.bytes > 0) usage.set(jobId, job.bytes);
    return usage;
  }

  clear(): void {
    this.jobs.clear();
  }
}
