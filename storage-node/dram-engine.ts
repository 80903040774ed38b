import {
  type ComputeValue,
  type DeleteOutcome,
  entryCost,
  type ListPage,
  type MaybePromise,
  type PutOutcome,
  type StorageEngine,
  type StoredEntry,
  staleMessage,
  versionFor,
} from './engine.ts';
import { SortedKeys, type SortedKeysCursor } from './sorted-keys.ts';
import { type Tombstone, Tombstones } from './tombstones.ts';

interface JobStore {
  entries: Map<string, StoredEntry>;
  bytes: number;
  /** The job's keys in LIST order, from its first LIST on (see ListIndex); null before. */
  index: ListIndex | null;
  /** Deleted keys' versions, when a DELETE asked to keep them (engine.ts "Tombstones"). */
  tombstones: Tombstones | null;
}

/**
 * A job's keys in LIST order (sorted-keys.ts): user keys, and internal ones (the NUL-separated blocks of large
 * values) apart, so a user's LIST never steps over blocks; only a migration lists both. Made at the job's first
 * LIST, so a job that never lists pays nothing per PUT. From then on a new key is only pushed on `pending` (a
 * sorted insert costs ~2 µs at 500k keys, mostly cache misses: a third of a PUT), and the next LIST takes the
 * pending keys in; a deleted key leaves the index at once.
 *
 * The work of making the index or taking many keys in is done in slices of LIST_SLICE_MS, one per event-loop
 * turn, while the LIST waits (its answer is a promise then): other jobs' requests are served in between. Before,
 * every LIST after a change sorted every key of the job at once: 0.6–0.9 s with the event loop blocked at 500k
 * keys. A job that stops listing while it adds keys gets its index dropped once `pending` outgrows it (the next
 * LIST makes it again): the work is at most a few sorted inserts per key the job added.
 */
interface ListIndex {
  user: SortedKeys;
  internal: SortedKeys;
  /** While the index is being made: the job's keys still to visit (a live Map iterator: it sees later keys too). */
  building: Iterator<string> | null;
  /** Keys added since the index was made, to take in (each checked against the entries then). */
  pending: string[];
  /** The slices running for waiting LISTs: one driver per index. */
  ready: Promise<void> | null;
}

/** A LIST answers at once when what is left to take in takes at most this long. */
const LIST_SYNC_MS = 1;
/** Longest slice of index work per event-loop turn. */
const LIST_SLICE_MS = 4;
/** Past this many pending keys (and twice the index's size) the index is dropped until the next LIST. */
const MAX_PENDING = 65_536;

/** The memory tier: a Map per job. Every call answers synchronously, but a LIST that has keys to sort first. */
export class DramEngine implements StorageEngine {
  readonly tier = 'dram';
  private readonly jobs = new Map<string, JobStore>();
  /** Jobs set aside (engine.ts "Kept copies"), with how each entry given up leaves. */
  private readonly kept = new Map<string, { store: JobStore; retire: (entry: StoredEntry) => void }>();
  private usedBytes = 0;
  private keptTotal = 0;

  constructor(readonly capacity: number) {}

  get used(): number {
    return this.usedBytes;
  }

  get keptBytes(): number {
    return this.keptTotal;
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
  private store(
    jobId: string,
    job: JobStore | undefined,
    key: string,
    old: StoredEntry | undefined,
    value: Buffer,
    flags: number,
    epoch: number,
    seq: number,
  ): PutOutcome {
    const cost = entryCost(key, value.length);
    const freed = old === undefined ? 0 : entryCost(key, old.value.length);
    // Kept copies are given up before a write is refused for want of room.
    if (this.usedBytes - freed + cost > this.capacity && this.kept.size > 0)
      for (const jobId of [...this.kept.keys()]) this.dropKept(jobId);
    if (this.usedBytes - freed + cost > this.capacity) {
      return {
        ok: false,
        reason: 'FULL',
        message: `node full: ${this.usedBytes} of ${this.capacity} bytes used, value needs ${value.length}`,
      };
    }
    if (job === undefined) {
      job = newJobStore();
      this.jobs.set(jobId, job);
    }
    job.entries.set(key, { value, flags, epoch, seq });
    if (old === undefined) {
      if (job.index !== null) keyAdded(job, key);
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
      if (job.index !== null) (key.includes('\u0000') ? job.index.internal : job.index.user).delete(key);
      const cost = entryCost(key, old.value.length);
      job.bytes -= cost;
      this.usedBytes -= cost;
    }
    if (tombstone) {
      if (job === undefined) this.jobs.set(jobId, (job = newJobStore()));
      (job.tombstones ??= new Tombstones()).set(key, { epoch, seq: version });
    } else if (job !== undefined && job.entries.size === 0 && (job.tombstones?.size ?? 0) === 0) {
      this.jobs.delete(jobId);
    }
    return { ok: true, old, seq: version };
  }

  /** A page costs O(log n + page) once the index has taken in the keys added since the last LIST (ListIndex). */
  list(jobId: string, prefix: string, after: string, limit: number, internal = false): MaybePromise<ListPage> {
    const job = this.jobs.get(jobId);
    if (job === undefined) return { keys: [], more: false };
    const index = (job.index ??= {
      user: new SortedKeys(),
      internal: new SortedKeys(),
      building: job.entries.keys(),
      pending: [],
      ready: null,
    });
    if (index.ready === null && catchUp(job, index, LIST_SYNC_MS)) return page(index, prefix, after, limit, internal);
    index.ready ??= this.drive(jobId, job, index);
    return index.ready.then(() => this.list(jobId, prefix, after, limit, internal));
  }

  /** Index work in slices, one per event-loop turn, until done (or the job or its index is gone). */
  private async drive(jobId: string, job: JobStore, index: ListIndex): Promise<void> {
    try {
      do await new Promise((resolve) => setImmediate(resolve));
      while (this.jobs.get(jobId) === job && job.index === index && !catchUp(job, index, LIST_SLICE_MS));
    } finally {
      index.ready = null;
    }
  }

  dropJob(jobId: string, retire?: (entry: StoredEntry) => void): number {
    const job = this.jobs.get(jobId);
    if (job === undefined) return 0;
    this.jobs.delete(jobId);
    if (retire !== undefined) for (const entry of job.entries.values()) retire(entry);
    this.usedBytes -= job.bytes;
    return job.bytes;
  }

  setAside(jobId: string, retire: (entry: StoredEntry) => void): number {
    this.dropKept(jobId);
    const store = this.jobs.get(jobId);
    this.jobs.delete(jobId);
    if (store === undefined || store.entries.size === 0) return 0;
    store.index = null;
    store.tombstones = null;
    this.kept.set(jobId, { store, retire });
    this.keptTotal += store.bytes;
    return store.bytes;
  }

  takeKept(jobId: string, key: string, epoch: number, seq: number): StoredEntry | undefined | null {
    const kept = this.kept.get(jobId);
    if (kept === undefined) return null;
    const entry = kept.store.entries.get(key);
    // One lent to a send still running, or held by a waiter, stays put: its buffer is not the engine's alone.
    if (entry === undefined || entry.epoch !== epoch || entry.seq !== seq || (entry.lent ?? 0) > 0 || entry.pinned === true)
      return undefined;
    kept.store.entries.delete(key);
    const cost = entryCost(key, entry.value.length);
    kept.store.bytes -= cost;
    this.usedBytes -= cost;
    this.keptTotal -= cost;
    if (kept.store.entries.size === 0) this.kept.delete(jobId);
    return entry;
  }

  dropKept(jobId: string): number {
    const kept = this.kept.get(jobId);
    if (kept === undefined) return 0;
    this.kept.delete(jobId);
    for (const entry of kept.store.entries.values()) kept.retire(entry);
    this.usedBytes -= kept.store.bytes;
    this.keptTotal -= kept.store.bytes;
    return kept.store.bytes;
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
    this.kept.clear();
    this.keptTotal = 0;
    this.usedBytes = 0;
  }
}

function newJobStore(): JobStore {
  return { entries: new Map(), bytes: 0, index: null, tombstones: null };
}

/** A key new to the job, which has an index: taken in at the next LIST (while building, the iterator sees it). */
function keyAdded(job: JobStore, key: string): void {
  const index = job.index!;
  if (index.building !== null) return;
  index.pending.push(key);
  if (index.pending.length > MAX_PENDING && index.pending.length > 2 * (index.user.size + index.internal.size)) job.index = null;
}

/** Takes what is left into the index for up to `budgetMs`; true when nothing is left. */
function catchUp(job: JobStore, index: ListIndex, budgetMs: number): boolean {
  const { user, internal } = index;
  const deadline = performance.now() + budgetMs;
  let n = 0;
  const building = index.building;
  if (building !== null) {
    for (;;) {
      const next = building.next();
      if (next.done === true) break;
      const key = next.value;
      (key.includes('\u0000') ? internal : user).add(key);
      if ((++n & 255) === 0 && performance.now() > deadline) return false;
    }
    index.building = null;
  }
  const pending = index.pending;
  while (pending.length > 0) {
    const key = pending.pop()!;
    if (job.entries.has(key)) (key.includes('\u0000') ? internal : user).add(key);
    if ((++n & 255) === 0 && performance.now() > deadline) return false;
  }
  return true;
}

function page(index: ListIndex, prefix: string, after: string, limit: number, internal: boolean): ListPage {
  if (!internal || index.internal.size === 0) return index.user.page(prefix, after, limit);
  // Every key, blocks included, for a migration: the two sets merged.
  return mergedPage(index.user.cursor(prefix, after), index.internal.cursor(prefix, after), prefix, limit);
}

/** Up to `limit` keys starting with `prefix` from two cursors over disjoint sets, in order. */
function mergedPage(a: SortedKeysCursor, b: SortedKeysCursor, prefix: string, limit: number): ListPage {
  const keys: string[] = [];
  let x = a.key();
  let y = b.key();
  if (x !== undefined && !x.startsWith(prefix)) x = undefined;
  if (y !== undefined && !y.startsWith(prefix)) y = undefined;
  while (x !== undefined || y !== undefined) {
    if (keys.length === limit) return { keys, more: true };
    if (y === undefined || (x !== undefined && x < y)) {
      keys.push(x!);
      x = a.next();
      if (x !== undefined && !x.startsWith(prefix)) x = undefined;
    } else {
      keys.push(y);
      y = b.next();
      if (y !== undefined && !y.startsWith(prefix)) y = undefined;
    }
  }
  return { keys, more: false };
}
