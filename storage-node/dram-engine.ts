import { type ComputeValue, entryCost, type ListPage, type PutOutcome, type StorageEngine, type StoredEntry } from './engine.ts';

interface JobStore {
  entries: Map<string, StoredEntry>;
  bytes: number;
  /** User keys in sorted order, rebuilt on the first LIST after a key was added or removed. */
  sorted: string[] | null;
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

  put(jobId: string, key: string, value: Buffer, flags: number, ifAbsent = false): PutOutcome {
    const job = this.jobs.get(jobId);
    const old = job?.entries.get(key);
    if (ifAbsent && old !== undefined) return { ok: true, replaced: undefined, skipped: true };
    return this.store(jobId, job, key, old, value, flags);
  }

  /** Read, compute and write in one synchronous step: nothing can run in between. */
  update(jobId: string, key: string, compute: ComputeValue): PutOutcome {
    const job = this.jobs.get(jobId);
    const old = job?.entries.get(key);
    const next = compute(old);
    if (!(next instanceof Uint8Array)) return { ok: false, reason: 'BAD_REQUEST', message: next.refuse };
    return this.store(jobId, job, key, old, next, 0);
  }

  /** Stores `value` over `old` (what `job` holds under `key` now), unless it does not fit. */
  private store(jobId: string, job: JobStore | undefined, key: string, old: StoredEntry | undefined, value: Buffer, flags: number): PutOutcome {
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
      job = { entries: new Map(), bytes: 0, sorted: null };
      this.jobs.set(jobId, job);
    }
    job.entries.set(key, { value, flags });
    if (old === undefined) job.sorted = null;
    job.bytes += cost - freed;
    this.usedBytes += cost - freed;
    return { ok: true, replaced: old };
  }

  get(jobId: string, key: string): StoredEntry | undefined {
    return this.jobs.get(jobId)?.entries.get(key);
  }

  delete(jobId: string, key: string): StoredEntry | undefined {
    const job = this.jobs.get(jobId);
    const old = job?.entries.get(key);
    if (job === undefined || old === undefined) return undefined;
    job.entries.delete(key);
    job.sorted = null;
    const cost = entryCost(key, old.value.length);
    job.bytes -= cost;
    this.usedBytes -= cost;
    if (job.entries.size === 0) this.jobs.delete(jobId);
    return old;
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

  usageByJob(): Map<string, number> {
    const usage = new Map<string, number>();
    for (const [jobId, job] of this.jobs) usage.set(jobId, job.bytes);
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
