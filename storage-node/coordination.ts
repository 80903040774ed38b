/**
 * Waiters (WAIT: answered when a key exists) and watches (WATCH: an event per put or delete under a prefix) of
 * one storage node. Nothing here polls: a waiter is one small object and one timer, answered from the PUT that
 * stores its key; a watch is matched against each put and delete of its job. A node with neither pays one
 * integer compare per write (`active`).
 *
 * Parked requests end, with one final answer, when: the key appears (OK + the value, as GET); the time is up
 * (TIMEOUT); the job's placement changes under a waiter (STALE: another node may own the key now, so the
 * client asks again); the job is deregistered (NO_SUCH_JOB) or moved off this node (STALE); the client cancels
 * (CANCEL: NOT_FOUND to a waiter, OK to a watch). A closed connection drops its parked requests silently.
 *
 * Each is a few hundred bytes and a timer, so their number is capped per connection and per job (`admit`,
 * before the server parks one): past either cap the request is refused with FULL, and the job's other
 * requests, and every other job's, go on.
 */
import { COPY_THRESHOLD, Flag, Status, type StatusCode, WatchEvent } from '../proto/index.ts';

/** Where parked requests are answered: the connection they came on (connection.ts). */
export interface ParkedOwner {
  /** Queues one answer frame and schedules a flush. */
  push(status: StatusCode, flags: number, id: number, epoch: number, arg: number, key: string, body: Uint8Array | null): void;
}

interface Parked {
  readonly owner: ParkedOwner;
  readonly id: number;
  readonly jobId: string;
  /** The key waited for, or the prefix watched. */
  readonly key: string;
  readonly epoch: number;
  /** null: a watch. */
  timer: NodeJS.Timeout | null;
  readonly watch: boolean;
}

interface JobParked {
  /** Waiters by key: one waiter (the common case), or a set of them (a barrier's parties, say). */
  readonly waiters: Map<string, Parked | Set<Parked>>;
  readonly watches: Set<Parked>;
}

export interface CoordinationLimits {
  /** WAITs and WATCHes one connection may have parked at once (default 1,000). */
  perConnection?: number;
  /** WAITs and WATCHes one job may have parked on this node at once, over all its connections (default 10,000). */
  perJob?: number;
}

export const DEFAULT_PARKED_PER_CONNECTION = 1_000;
export const DEFAULT_PARKED_PER_JOB = 10_000;

export class Coordination {
  /** Waiters and watches parked on this node: a write checks this before anything else. */
  active = 0;
  private readonly jobs = new Map<string, JobParked>();
  private readonly byOwner = new Map<ParkedOwner, Map<number, Parked>>();
  /** Parked requests per job (kept apart from `jobs`, which forgets a job as soon as nothing waits on a key). */
  private readonly perJob = new Map<string, number>();
  readonly maxPerConnection: number;
  readonly maxPerJob: number;

  constructor(limits: CoordinationLimits = {}) {
    this.maxPerConnection = limits.perConnection ?? DEFAULT_PARKED_PER_CONNECTION;
    this.maxPerJob = limits.perJob ?? DEFAULT_PARKED_PER_JOB;
  }

  /**
   * Whether `owner` may park request `id` of `jobId`: null if so (one replacing a request of the same id always
   * may), else why not (the caller answers FULL with it).
   */
  admit(owner: ParkedOwner, id: number, jobId: string): string | null {
    const mine = this.byOwner.get(owner);
    if (mine?.has(id) === true) return null;
    if ((mine?.size ?? 0) >= this.maxPerConnection) {
      return `this connection has ${this.maxPerConnection} WAIT and WATCH requests parked on the node, its limit: cancel some first`;
    }
    if ((this.perJob.get(jobId) ?? 0) >= this.maxPerJob) {
      return `job ${jobId} has ${this.maxPerJob} WAIT and WATCH requests parked on this node, its limit: cancel some first`;
    }
    return null;
  }

  /** Requests `jobId` has parked on this node. */
  parkedOf(jobId: string): number {
    return this.perJob.get(jobId) ?? 0;
  }

  get waiters(): number {
    let n = 0;
    for (const job of this.jobs.values()) for (const entry of job.waiters.values()) n += entry instanceof Set ? entry.size : 1;
    return n;
  }

  get watches(): number {
    let n = 0;
    for (const job of this.jobs.values()) n += job.watches.size;
    return n;
  }

  /**
   * Parks a WAIT. The caller then looks the key up: if it is there, `settleWait` answers with it, unless a PUT
   * answered first (registering before the lookup means a PUT landing during a disk read is not missed).
   */
  wait(owner: ParkedOwner, id: number, jobId: string, key: string, epoch: number, timeoutMs: number): void {
    const waiter: Parked = { owner, id, jobId, key, epoch, timer: null, watch: false };
    waiter.timer = setTimeout(this.expire, timeoutMs, waiter);
    const job = this.job(jobId);
    const entry = job.waiters.get(key);
    if (entry === undefined) job.waiters.set(key, waiter);
    else if (entry instanceof Set) entry.add(waiter);
    else job.waiters.set(key, new Set([entry, waiter]));
    this.own(waiter);
  }

  /** The lookup after `wait` found the key: answer the waiter with it, if it is still parked. */
  settleWait(owner: ParkedOwner, id: number, value: Buffer, flags: number): void {
    const waiter = this.byOwner.get(owner)?.get(id);
    if (waiter === undefined || waiter.watch) return;
    this.remove(waiter);
    waiter.owner.push(Status.OK, flags, id, waiter.epoch, value.length, '', value);
  }

  /** Parks a WATCH and answers its STARTED event. */
  watch(owner: ParkedOwner, id: number, jobId: string, prefix: string, epoch: number): void {
    const watch: Parked = { owner, id, jobId, key: prefix, epoch, timer: null, watch: true };
    this.job(jobId).watches.add(watch);
    this.own(watch);
    owner.push(Status.OK, Flag.EVENT, id, epoch, WatchEvent.STARTED, '', null);
  }

  /** CANCEL: ends `owner`'s parked request `id`; false when there is none (answered already, say). */
  cancel(owner: ParkedOwner, id: number): boolean {
    const parked = this.byOwner.get(owner)?.get(id);
    if (parked === undefined) return false;
    this.remove(parked);
    parked.owner.push(parked.watch ? Status.OK : Status.NOT_FOUND, 0, id, parked.epoch, 0, '', null);
    return true;
  }

  /** A value was stored under `key` (PUT, INCR, a migration copy): wake its waiters; `notify` also tells watches. */
  stored(jobId: string, key: string, value: Buffer, flags: number, epoch: number, notify: boolean): void {
    const job = this.jobs.get(jobId);
    if (job === undefined) return;
    const entry = job.waiters.get(key);
    if (entry !== undefined) {
      job.waiters.delete(key);
      // Sent by reference when large: a copy, since the stored buffer may be recycled once it is replaced.
      const body = value.length > COPY_THRESHOLD ? Buffer.from(value) : value;
      const wake = (waiter: Parked) => {
        this.disown(waiter);
        waiter.owner.push(Status.OK, flags, waiter.id, epoch, body.length, '', body);
      };
      if (entry instanceof Set) entry.forEach(wake);
      else wake(entry);
    }
    if (notify) this.tell(job, key, WatchEvent.PUT, epoch);
    this.forgetIfEmpty(jobId, job);
  }

  deleted(jobId: string, key: string, epoch: number): void {
    const job = this.jobs.get(jobId);
    if (job !== undefined) this.tell(job, key, WatchEvent.DELETE, epoch);
  }

  /** The job's epoch rose to `epoch`: waiters of older epochs ask again (STALE); watches hear PLACEMENT. */
  epochChanged(jobId: string, epoch: number): void {
    const job = this.jobs.get(jobId);
    if (job === undefined) return;
    for (const entry of [...job.waiters.values()]) {
      for (const waiter of entry instanceof Set ? [...entry] : [entry]) {
        if (waiter.epoch >= epoch) continue;
        this.remove(waiter);
        waiter.owner.push(Status.STALE, 0, waiter.id, epoch, epoch, '', null);
      }
    }
    for (const watch of job.watches) watch.owner.push(Status.OK, Flag.EVENT, watch.id, epoch, WatchEvent.PLACEMENT, '', null);
    this.forgetIfEmpty(jobId, job);
  }

  /** The job's data left this node: deregistered (NO_SUCH_JOB) or moved to other nodes (STALE). */
  dropped(jobId: string, moved: boolean, epoch: number): void {
    const job = this.jobs.get(jobId);
    if (job === undefined) return;
    const message = Buffer.from(moved ? `job ${jobId} moved to other nodes` : `job ${jobId} was deregistered`);
    const end = (parked: Parked) => {
      this.disown(parked);
      parked.owner.push(moved ? Status.STALE : Status.NO_SUCH_JOB, 0, parked.id, epoch, epoch, '', message);
    };
    for (const entry of job.waiters.values()) {
      if (entry instanceof Set) entry.forEach(end);
      else end(entry);
    }
    job.watches.forEach(end);
    this.jobs.delete(jobId);
  }

  /** Forgets `owner`'s parked request `id` without answering it (its request was answered otherwise). */
  abandon(owner: ParkedOwner, id: number): void {
    const parked = this.byOwner.get(owner)?.get(id);
    if (parked !== undefined) this.remove(parked);
  }

  /** A connection closed: forget what it parked (nobody is left to answer). */
  ownerClosed(owner: ParkedOwner): void {
    const parked = this.byOwner.get(owner);
    if (parked === undefined) return;
    for (const p of [...parked.values()]) this.remove(p);
    this.byOwner.delete(owner);
  }

  private readonly expire = (waiter: Parked): void => {
    waiter.timer = null;
    this.remove(waiter);
    waiter.owner.push(Status.TIMEOUT, 0, waiter.id, waiter.epoch, 0, '', Buffer.from(`${waiter.key} did not appear in time`));
  };

  private tell(job: JobParked, key: string, event: number, epoch: number): void {
    // Internal keys (the NUL-separated blocks of large values) are not the user's changes.
    if (job.watches.size === 0 || key.includes('\u0000')) return;
    for (const watch of job.watches) {
      if (key.startsWith(watch.key)) watch.owner.push(Status.OK, Flag.EVENT, watch.id, epoch, event, key, null);
    }
  }

  private job(jobId: string): JobParked {
    let job = this.jobs.get(jobId);
    if (job === undefined) this.jobs.set(jobId, (job = { waiters: new Map(), watches: new Set() }));
    return job;
  }

  private own(parked: Parked): void {
    // A client reusing the id of a request still parked: the old one is replaced (its answer would be ambiguous).
    // Removed first: taking the owner's last entry drops its map, which must not be the one `parked` goes into.
    const previous = this.byOwner.get(parked.owner)?.get(parked.id);
    if (previous !== undefined) this.remove(previous);
    let mine = this.byOwner.get(parked.owner);
    if (mine === undefined) this.byOwner.set(parked.owner, (mine = new Map()));
    mine.set(parked.id, parked);
    this.active++;
    this.perJob.set(parked.jobId, (this.perJob.get(parked.jobId) ?? 0) + 1);
  }

  /** Takes `parked` off its owner's list and its timer (the job's lists are the caller's business). */
  private disown(parked: Parked): void {
    if (parked.timer !== null) clearTimeout(parked.timer);
    parked.timer = null;
    const mine = this.byOwner.get(parked.owner);
    if (mine?.get(parked.id) === parked) {
      mine.delete(parked.id);
      this.active--;
      if (mine.size === 0) this.byOwner.delete(parked.owner);
      const left = (this.perJob.get(parked.jobId) ?? 1) - 1;
      if (left > 0) this.perJob.set(parked.jobId, left);
      else this.perJob.delete(parked.jobId);
    }
  }

  /** Takes `parked` off every list. */
  private remove(parked: Parked): void {
    this.disown(parked);
    const job = this.jobs.get(parked.jobId);
    if (job === undefined) return;
    if (parked.watch) job.watches.delete(parked);
    else {
      const entry = job.waiters.get(parked.key);
      if (entry === parked) job.waiters.delete(parked.key);
      else if (entry instanceof Set) {
        entry.delete(parked);
        if (entry.size === 0) job.waiters.delete(parked.key);
      }
    }
    this.forgetIfEmpty(parked.jobId, job);
  }

  private forgetIfEmpty(jobId: string, job: JobParked): void {
    if (job.waiters.size === 0 && job.watches.size === 0) this.jobs.delete(jobId);
  }
}
