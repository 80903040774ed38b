import { type AnnouncedPlacement, AnnounceFlag } from '../proto/index.ts';
import { TOMBSTONE_TTL_MS } from './engine.ts';
import { newJobTraffic } from './metrics.ts';

/** What this node knows of one job, as the controller announced it to this process. */
export interface AnnouncedJob {
  /** The placement epoch: frames of older ones get STALE. Raised by the controller only, never by a client. */
  epoch: number;
  /** The job moved off this node (DROP_JOB moved): every request gets STALE, so clients look it up again. */
  moved: boolean;
  /** More than one copy of each key: tombstones are kept, and the job is refused while the lease has lapsed. */
  replicated: boolean;
  /** Tombstones are kept until then (ms since 1970): keys are being copied here, and a TTL after. 0: not. */
  copyingUntil: number;
  /**
   * The job's requests on this node since the process started (metrics.ts `newJobTraffic`): counted on the
   * request path into this array, which the request already looked up with the job, and reported in each
   * JobUsage (controller-link.ts). Kept while the job moves off and back; gone with the job.
   */
  readonly traffic: Float64Array;
  /**
   * The job's placement as last announced (proto/announce.ts), newest epoch kept: what the RESP front door
   * answers CLUSTER SLOTS and MOVED from. Null until an announcement carries one (or without a controller).
   */
  placement: AnnouncedPlacement | null;
  /**
   * Not a job this node serves: a RESP client's view of one looked up at a metadata server (resp/resp-foreign.ts),
   * which answers where its keys are and serves none of them.
   */
  foreign?: true;
}

function newJob(epoch: number, moved: boolean): AnnouncedJob {
  return { epoch, moved, replicated: false, copyingUntil: 0, traffic: newJobTraffic(), placement: null };
}

/**
 * The jobs this node serves, in this incarnation (process). With a controller a node serves a job only once the
 * controller announced it (ANNOUNCE): a node that restarted under the same id has lost its data, and answering
 * NOT_FOUND for keys it acknowledged before would read as "never written". A job it does not know gets
 * UNAVAILABLE, which clients treat as an unreachable node. Without a controller (`open`: unit tests, tools)
 * a job is served from its first request at epoch 0.
 *
 * Deregistered jobs are remembered apart (`dropped`), each until its last token expires, and get NO_SUCH_JOB.
 */
export class JobTable {
  private readonly jobs = new Map<string, AnnouncedJob>();
  readonly dropped = new DroppedJobs();

  constructor(private readonly open: boolean) {}

  /** The job as announced, or undefined when this node does not serve it (see above). */
  get(jobId: string): AnnouncedJob | undefined {
    const job = this.jobs.get(jobId);
    if (job !== undefined || !this.open) return job;
    const created = newJob(0, false);
    this.jobs.set(jobId, created);
    return created;
  }

  /**
   * The controller placed the job on this node at `epoch` (AnnounceFlag `flags`). Epochs only rise; a job that
   * moved off serves again only from a later epoch (it was placed here anew); a deregistered one never again
   * (an announcement racing the deregistration must not bring its tokens back). True when the epoch rose.
   */
  announce(jobId: string, epoch: number, flags: number, placement: AnnouncedPlacement | null = null, now = Date.now()): boolean {
    if (this.dropped.has(jobId)) return false;
    let job = this.jobs.get(jobId);
    if (job === undefined) this.jobs.set(jobId, (job = newJob(0, false)));
    // Before the moved check: a node the job moved off still sends RESP clients where its keys went.
    if (placement !== null && placement.epoch >= (job.placement?.epoch ?? 0)) job.placement = placement;
    if (job.moved && epoch <= job.epoch) return false;
    const raised = epoch > job.epoch;
    if (raised) job.epoch = epoch;
    job.moved = false;
    job.replicated = (flags & AnnounceFlag.REPLICATED) !== 0;
    if ((flags & AnnounceFlag.COPYING) !== 0) job.copyingUntil = Infinity;
    else if (job.copyingUntil === Infinity) job.copyingUntil = now + TOMBSTONE_TTL_MS;
    return raised;
  }

  /** The job's data left for other nodes: STALE from now on, at the epoch known. */
  moved(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (job === undefined) this.jobs.set(jobId, newJob(0, true));
    else job.moved = true;
  }

  /** The job ended: NO_SUCH_JOB until `tokensExpireBy` (ms since 1970), then forgotten. */
  drop(jobId: string, tokensExpireBy = Infinity): void {
    this.jobs.delete(jobId);
    this.dropped.add(jobId, tokensExpireBy);
  }

  /** Whether a DELETE of the job leaves a tombstone (engine.ts "Tombstones"). */
  keepsTombstones(job: AnnouncedJob): boolean {
    return job.replicated || (job.copyingUntil !== 0 && job.copyingUntil > Date.now());
  }

  get size(): number {
    return this.jobs.size;
  }

  entries(): IterableIterator<[string, AnnouncedJob]> {
    return this.jobs.entries();
  }
}

/**
 * Jobs deregistered here, refused from then on: each remembered until its last token has expired (the
 * controller says when, with DROP_JOB), so a node under job churn does not remember every job forever.
 */
export class DroppedJobs {
  private readonly until = new Map<string, number>();
  private nextPrune = 0;

  add(jobId: string, tokensExpireBy = Infinity): void {
    this.until.set(jobId, tokensExpireBy);
    const now = Date.now();
    if (now < this.nextPrune) return;
    this.nextPrune = now + 60_000;
    for (const [job, until] of this.until) if (until <= now) this.until.delete(job);
  }

  /** On every request: one map lookup, and a clock read only for a job that was dropped. */
  has(jobId: string): boolean {
    if (this.until.size === 0) return false;
    const until = this.until.get(jobId);
    return until !== undefined && until > Date.now();
  }

  get size(): number {
    return this.until.size;
  }
}
