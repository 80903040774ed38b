import {
  type ComputeValue,
  type DeleteOutcome,
  entryCost,
  type ListPage,
  type PutOutcome,
  staleMessage,
  type StorageEngine,
  type StoredEntry,
  versionFor,
} from './engine.ts';
import { type Tombstone, Tombstones } from './tombstones.ts';

interface JobStore {
  entries: Map<string, StoredEntry>;
  bytes: number;
  /** User keys in sorted order, rebuilt on the first LIST after a key was added or removed. */
  sorted: string[] | null;
  /** Deleted keys' versions, when a DELETE asked to keep them (engine.ts "Tombstones"). */
  tombstones: Tombstones | null;
}

/** The memory tier: a Map per job. Every call answers synchronously. */
export class DramEngine implements StorageEngine {
  readonly tier = 'dram';
  private readonly jobs = new Map<string, JobStore>();
  private usedBytes = 0;

  constructor(readonly capacity: number) {}

  get used(): number {
    return this.usedBytes;
  }

  put(jobId: string, key: string, value: Buffer, flags: number, epoch = 0, seq = 0): PutOutcome {
    const job = this.jobs.get(jobId);
    const old = job?.entries.get(key);
    const held = old ?? job?.tombstones?.get(key);
    const version = held === undefined ? versionFor(epoch, seq, 0, 0) : versionFor(epoch, seq, held.epoch, held.seq);
    if (version === 0) return { ok: true, replaced: undefined, seq: 0, skipped: true };
    if (version < 0) return { ok: false, reason: 'STALE', message: staleMessage(held!.epoch, epoch) };
    return this.store(jobId, job, key, old, value, flags, epoch, version);
  }

  /** Read, compute and write in one synchronous step: nothing can run in between. */
  update(jobId: string, key: string, compute: ComputeValue, epoch = 0): PutOutcome {
    const job = this.jobs.get(jobId);
    const old = job?.entries.get(key);
    const held = old ?? job?.tombstones?.get(key);
    const version = held === undefined ? 1 : versionFor(epoch, 0, held.epoch, held.seq);
    if (version < 0) return { ok: false, reason: 'STALE', message: staleMessage(held!.epoch, epoch) };
    const next = compute(old);
    if (!(next instanceof Uint8Array)) return { ok: false, reason: 'BAD_REQUEST', message: next.refuse };
    return this.store(jobId, job, key, old, next, 0, epoch, version);
  }

  /** Stores `value` over `old` (what `job` holds under `key` now), unless it does not fit. */
  private store(jobId: string, job: JobStore | undefined, key: string, old: StoredEntry | undefined, value: Buffer, flags: number, epoch: number, seq: number): PutOutcome {
    const cost = entryCost(key, value.length);
    const freed = old === undefined ? 0 : entryCost(key, old.value.length);
    if (this.usedBytes - freed + cost > this.capacity) {
      return {
        ok: false,
        reason: 'FULL',
        message: `node full: ${this.usedBytes} of ${this.capacity} bytes used, value needs ${value.length}`,
      };
    }
    if (job === undefined) {
      job = { entries: new Map(), bytes: 0, sorted: null, tombstones: null };
      this.jobs.set(jobId, job);
    }
    job.entries.set(key, { value, flags, epoch, seq });
    if (old === undefined) {
      job.sorted = null;
      job.tombstones?.delete(key);
    }
    job.bytes += cost - freed;
    this.usedBytes += cost - freed;
    return { ok: true, replaced: old, seq };
  }

  get(jobId: string, key: string): StoredEntry | undefined {
    return this.jobs.get(jobId)?.entries.get(key);
  }

  delete(jobId: string, key: string, epoch = 0, seq = 0, tombstone = false): DeleteOutcome {
    let job = this.jobs.get(jobId);
    const old = job?.entries.get(key);
    const held = old ?? job?.tombstones?.get(key);
    const version = held === undefined ? versionFor(epoch, seq, 0, 0) : versionFor(epoch, seq, held.epoch, held.seq);
    if (version === 0) return { ok: true, old: undefined, seq: 0, skipped: true };
    if (version < 0) return { ok: false, reason: 'STALE', message: staleMessage(held!.epoch, epoch) };
    if (job !== undefined && old !== undefined) {
      job.entries.delete(key);
      job.sorted = null;
      const cost = entryCost(key, old.value.length);
      job.bytes -= cost;
      this.usedBytes -= cost;
    }
    if (tombstone) {
      if (job === undefined) this.jobs.set(jobId, (job = { entries: new Map(), bytes: 0, sorted: null, tombstones: null }));
      (job.tombstones ??= new Tombstones()).set(key, { epoch, seq: version });
    } else if (job !== undefined && job.entries.size === 0 && (job.tombstones?.size ?? 0) === 0) {
      this.jobs.delete(jobId);
    }
    return { ok: true, old, seq: version };
  }

  list(jobId: string, prefix: string, after: string, limit: number, internal = false): ListPage {
    const job = this.jobs.get(jobId);
    if (job === undefined) return { keys: [], more: false };
    // Every key, blocks included, for a migration: rare, so sorted afresh rather than cached.
    if (internal) return page([...job.entries.keys()].sort(), prefix, after, limit);
    if (job.sorted === null) {
      const keys: string[] = [];
      for (const key of job.entries.keys()) if (!key.includes('\u0000')) keys.push(key);
      keys.sort();
      job.sorted = keys;
    }
    return page(job.sorted, prefix, after, limit);
  }

  dropJob(jobId: string, retire?: (entry: StoredEntry) => void): number {
    const job = this.jobs.get(jobId);
    if (job === undefined) return 0;
    this.jobs.delete(jobId);
    if (retire !== undefined) for (const entry of job.entries.values()) retire(entry);
    this.usedBytes -= job.bytes;
    return job.bytes;
  }

  deletedAt(jobId: string, key: string): Tombstone | undefined {
    const job = this.jobs.get(jobId);
    return job === undefined || job.entries.has(key) ? undefined : job.tombstones?.get(key);
  }

  usageByJob(): Map<string, number> {
    const usage = new Map<string, number>();
    for (const [jobId, job] of this.jobs) if (job.entries.size > 0) usage.set(jobId, job.bytes);
    return usage;
  }

  close(): void {
    this.jobs.clear();
    this.usedBytes = 0;
  }
}

/** First index whose key is >= `target`. */
function lowerBound(sorted: readonly string[], target: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Up to `limit` keys of a sorted array that start with `prefix` and sort after `after`. */
function page(sorted: readonly string[], prefix: string, after: string, limit: number): ListPage {
  const from = after > prefix ? after : prefix;
  let i = lowerBound(sorted, from);
  if (i < sorted.length && sorted[i] === after) i++;
  const keys: string[] = [];
  for (; i < sorted.length && keys.length < limit; i++) {
    const key = sorted[i]!;
    if (!key.startsWith(prefix)) break;
    keys.push(key);
  }
  const more = i < sorted.length && sorted[i]!.startsWith(prefix);
  return { keys, more };
}
