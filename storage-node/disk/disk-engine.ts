// The disk engine (`ssd` and `hdd` tiers): the StorageEngine API over its pieces. It owns what ties them: the
// write path (version, capacity, inline or segment, index entry), the job lifecycle (writes in flight, DROP_JOB,
// tombstones), open/close and calls in flight. The index format is index-codec.ts, segment files and compaction
// segment-store.ts, per-key locks key-lock.ts, batched index writes group-commit.ts, the emulated HDD device.ts.
import path from 'node:path';
import { Level } from 'level';
import { Flag, SatchelError } from '../../proto/index.ts';
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
} from '../engine.ts';
import { type Tombstone, Tombstones } from '../tombstones.ts';
import { EmulatedDevice } from './device.ts';
import { claimDirectory } from './directory.ts';
import { checkOptions, type DiskEngineOptions } from './engine-options.ts';
import { GroupCommit } from './group-commit.ts';
import {
  checkJob,
  checkKey,
  decodeIndex,
  decodeKey,
  encodeInline,
  encodeInSegment,
  encodeKey,
  IN_SEGMENT,
  INLINE,
  type IndexEntry,
  jobKey,
  jobRange,
  listRange,
  splitFullKey,
} from './index-codec.ts';
import { type JobState, JobStates } from './job-states.ts';
import { type KeyLock, KeyLocks } from './key-lock.ts';
import { type Segment, type SegmentStats, SegmentStore } from './segment-store.ts';

/**
 * The `ssd` and `hdd` tiers. LevelDB (`level`) holds the index and the small values; a value of `inlineMax`
 * bytes or more goes to an append-only segment file that its index entry points into (segment id, offset,
 * length), the Bitcask/Haystack way: LevelDB is good at small records and poor at large ones (DESIGN.md, "Disk
 * tiers": 1 MiB puts ran at ~110 MB/s with 364 ms compaction stalls). A segment whose dead bytes (overwritten,
 * deleted or dropped records) pass `compactDeadFraction` of it is compacted: its live records are copied to the
 * active segment, their index entries repointed, and the file removed.
 *
 * The data is ephemeral by design: a node that restarts has lost its jobs and the controller places them again.
 * So `open()` wipes what an earlier run left in the directory, and no write is fsync'ed.
 *
 * Concurrency. Writes to one key (PUT, UPDATE, DELETE and compaction moving the key's record) run one at a time
 * in arrival order through a per-key lock (UPDATE reads, computes and writes holding it); a GET of a key with a
 * write in flight waits for that write, so a pipelined PUT then GET reads its own write. Writes to different
 * keys run concurrently and their LevelDB writes are group-committed (one batch per event-loop turn, more while
 * a batch is being written). A GET does not take the lock: it pins the segment it reads, a segment is unlinked
 * only once nobody reads it, and a GET that finds its segment already gone reads the index again (compaction
 * repoints the index before it retires a segment). DROP_JOB waits for the job's writes in flight and holds new
 * ones back until the job is cleared.
 */

export {
  DEFAULT_COMPACT_DEAD_FRACTION,
  DEFAULT_INLINE_MAX,
  DEFAULT_SEGMENT_BYTES,
  type DiskEngineOptions,
} from './engine-options.ts';

export interface DiskEngineStats {
  segments: SegmentStats[];
  /** Segments compacted since open. */
  compactions: number;
  /** Live bytes copied by compaction since open. */
  bytesRelocated: number;
  /** The last compaction failure, if any (compaction retries when the segment gets more dead bytes). */
  lastCompactionError: unknown;
}

const MiB = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * What a locked write stores over `old` (the index entry there, if any), or the answer when it stores nothing;
 * called only once the write's version was found to land (engine.ts "Versions").
 */
type Decide = (old: IndexEntry | undefined, fullKey: Buffer) => WriteDecision | Promise<WriteDecision>;
/** `replaced`: the old entry, when `decide` has read it already (else it is read after the capacity check). */
type WriteDecision = { value: Buffer; flags: number; replaced?: StoredEntry | undefined } | PutOutcome;

export class DiskEngine implements StorageEngine {
  readonly tier: 'ssd' | 'hdd';
  readonly capacity: number;
  readonly path: string;
  readonly inlineMax: number;
  readonly segmentBytes: number;
  readonly compactDeadFraction: number;
  /** The emulated HDD head every value transfer waits for; null (the default) when not emulating. */
  private readonly device: EmulatedDevice | null;

  private db: Level<Buffer, Buffer> | null = null;
  /**
   * The index is read in the caller's turn (`getSync`) rather than on libuv's thread pool: on `ssd` without
   * emulation, where an entry is in LevelDB's memory or the page cache, or one flash read away. A read handed to
   * the pool costs two wakeups (the pool's thread, then the event loop), and on a quiet 2-vCPU VM each is
   * ~0.3 ms: a GET of a small value took 2.7 ms p50 at 1,000 ops/s, PUT 3.5 (DRAM, no pool: 1.1). Not `hdd`: a
   * seek would stall every connection.
   */
  private readonly syncReads: boolean;
  /** The index's writes, batched per event-loop turn; made with `db` on open. */
  private commits: GroupCommit | null = null;
  private readonly store: SegmentStore;

  private readonly jobs = new JobStates();
  private usedBytes = 0;
  private readonly locks = new KeyLocks();

  /**
   * Called with a PUT's value once it is written and the engine holds no reference to it: the node hands it to
   * the server's ValuePool, so a stream of large PUTs reuses its receive buffers as it does on DRAM.
   */
  recycle: ((value: Buffer) => void) | null = null;

  /**
   * Where a GET's read of a large value gets its buffer (the node: the server's ValuePool). Such an entry comes
   * back `retired` — the engine keeps no reference — so the server returns the buffer to the pool once sent.
   */
  allocateValue: ((size: number) => Buffer) | null = null;

  private inflight = 0;
  private idleWaiter: (() => void) | null = null;
  private state: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new';
  private closed: Promise<void> | null = null;

  constructor(options: DiskEngineOptions) {
    const checked = checkOptions(options);
    this.tier = checked.tier;
    this.capacity = checked.capacity;
    this.path = path.resolve(checked.path);
    this.inlineMax = checked.inlineMax;
    this.segmentBytes = checked.segmentBytes;
    this.compactDeadFraction = checked.compactDeadFraction;
    this.syncReads = options.tier === 'ssd' && options.emulate === undefined;
    this.device = EmulatedDevice.from(options.emulate);
    this.store = new SegmentStore(path.join(this.path, 'segments'), this.segmentBytes, this.compactDeadFraction, this.relocate);
  }

  /** Creates the engine and opens it. */
  static async open(options: DiskEngineOptions): Promise<DiskEngine> {
    const engine = new DiskEngine(options);
    await engine.open();
    return engine;
  }

  /**
   * Wipes what an earlier run left (the data is ephemeral: the controller re-places a restarted node's jobs) and
   * opens LevelDB. Refuses a non-empty directory the engine did not create, so a mistyped path loses nothing.
   */
  async open(): Promise<void> {
    if (this.state !== 'new') throw new SatchelError('BAD_REQUEST', `disk engine at ${this.path} was already opened`);
    this.state = 'opening';
    try {
      await claimDirectory(this.path, this.tier);
      await this.store.create();
      const db = new Level<Buffer, Buffer>(path.join(this.path, 'index'), {
        keyEncoding: 'buffer',
        valueEncoding: 'buffer',
        // Bigger than the 4 MiB default: fewer level-0 flushes for a stream of small PUTs.
        writeBufferSize: 16 * MiB,
      });
      await db.open();
      this.db = db;
      this.commits = new GroupCommit(db);
      this.state = 'open';
    } catch (error) {
      this.state = 'closed';
      if (error instanceof SatchelError) throw error;
      throw new SatchelError('UNAVAILABLE', `cannot open the ${this.tier} engine at ${this.path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  get used(): number {
    return this.usedBytes;
  }

  async put(jobId: string, key: string, value: Buffer, flags: number, epoch = 0, seq = 0): Promise<PutOutcome> {
    const db = this.begin();
    try {
      checkKey(key);
      if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff)
        throw new SatchelError('BAD_REQUEST', `flags must be a 16-bit integer, got ${String(flags)}`);
      const bytes: unknown = value;
      if (!(bytes instanceof Uint8Array)) throw new SatchelError('BAD_REQUEST', 'value must be a Buffer');
      if (!Buffer.isBuffer(bytes)) value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      // Under the key's lock, so no write can land between the version check and ours.
      return await this.writeLocked(db, jobId, key, epoch, seq, () => ({ value, flags }));
    } finally {
      this.end();
    }
  }

  async update(jobId: string, key: string, compute: ComputeValue, epoch = 0): Promise<PutOutcome> {
    const db = this.begin();
    try {
      checkKey(key);
      return await this.writeLocked(db, jobId, key, epoch, 0, async (old, fullKey) => {
        // Under the key's lock: the entry read here is the one the write replaces.
        const replaced = old === undefined ? undefined : await this.oldEntry(old, fullKey);
        const next = compute(replaced);
        if (!(next instanceof Uint8Array)) return { ok: false, reason: 'BAD_REQUEST', message: next.refuse };
        const bytes: Uint8Array = next;
        const value = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        return { value, flags: 0, replaced };
      });
    } finally {
      this.end();
    }
  }

  get(jobId: string, key: string): MaybePromise<StoredEntry | undefined> {
    if (this.syncReads && this.state === 'open' && this.db !== null) {
      try {
        checkKey(key);
        const lockKey = jobKey(jobId, key);
        // A write in flight on the key goes first (the slow path waits for it); a value in a segment is read there.
        if (this.locks.pending(lockKey) === undefined) {
          const raw = this.db.getSync(encodeKey(lockKey));
          if (raw === undefined) return undefined;
          const entry = decodeIndex(raw);
          if (entry.kind === INLINE) return { value: entry.value, flags: entry.flags, epoch: entry.epoch, seq: entry.seq };
        }
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.getLater(jobId, key);
  }

  private async getLater(jobId: string, key: string): Promise<StoredEntry | undefined> {
    const db = this.begin();
    try {
      checkKey(key);
      const lockKey = jobKey(jobId, key);
      const fullKey = encodeKey(lockKey);
      const pending = this.locks.pending(lockKey);
      if (pending !== undefined) await pending;
      for (let attempt = 0; ; attempt++) {
        const raw = await this.readIndex(db, fullKey);
        if (raw === undefined) return undefined;
        const entry = decodeIndex(raw);
        if (entry.kind === INLINE) {
          if (this.device !== null) await this.device.transfer(entry.length);
          return { value: entry.value, flags: entry.flags, epoch: entry.epoch, seq: entry.seq };
        }
        if (this.device !== null) await this.device.transfer(entry.length);
        // Looked up and pinned in one turn: a segment is never unlinked while pinned.
        const segment = this.store.get(entry.segment);
        // Compaction moved the record and retired its segment between our index read and now: read the index again.
        if (segment === undefined) {
          if (attempt < 8) continue;
          throw new SatchelError('UNAVAILABLE', `index entry points to segment ${entry.segment}, which is gone`);
        }
        const value = await this.store.read(segment, entry.offset, entry.length, this.allocateValue?.(entry.length));
        return { value, flags: entry.flags, epoch: entry.epoch, seq: entry.seq, retired: true };
      }
    } finally {
      this.end();
    }
  }

  async delete(jobId: string, key: string, epoch = 0, seq = 0, tombstone = false): Promise<DeleteOutcome> {
    const db = this.begin();
    try {
      checkKey(key);
      const lockKey = jobKey(jobId, key);
      const fullKey = encodeKey(lockKey);
      // The lock is taken in the call's own turn, so a GET issued right after this call waits for it.
      const release = this.locks.lock(lockKey);
      const job = await this.enter(jobId, release);
      try {
        const raw = await this.readIndex(db, fullKey);
        const old = raw === undefined ? undefined : decodeIndex(raw);
        const held = old ?? job.tombstones?.get(key);
        const version = held === undefined ? versionFor(epoch, seq, 0, 0) : versionFor(epoch, seq, held.epoch, held.seq);
        if (version === 0) return { ok: true, old: undefined, seq: 0, skipped: true };
        if (version < 0) return { ok: false, reason: 'STALE', message: staleMessage(held!.epoch, epoch) };
        if (tombstone) (job.tombstones ??= new Tombstones()).set(key, { epoch, seq: version });
        if (old === undefined) return { ok: true, old: undefined, seq: version };
        const entry = await this.oldEntry(old, fullKey);
        if (this.device !== null) await this.device.transfer(0);
        await this.commits!.write({ type: 'del', key: fullKey });
        const cost = entryCost(key, old.length);
        this.usedBytes -= cost;
        job.bytes -= cost;
        if (old.kind === IN_SEGMENT) this.store.markDead(old.segment, fullKey.length, old.length, jobId);
        return { ok: true, old: entry, seq: version };
      } finally {
        release();
        this.jobs.leave(jobId, job);
      }
    } finally {
      this.end();
    }
  }

  async list(jobId: string, prefix: string, after: string, limit: number, internal = false): Promise<ListPage> {
    const db = this.begin();
    try {
      if (typeof prefix !== 'string' || typeof after !== 'string')
        throw new SatchelError('BAD_REQUEST', 'prefix and cursor must be strings');
      if (!Number.isInteger(limit) || limit < 0)
        throw new SatchelError('BAD_REQUEST', `limit must be a non-negative integer, got ${String(limit)}`);
      const { range, keyStart } = listRange(jobId, prefix, after);
      if (this.device !== null) await this.device.transfer(0);
      const iterator = db.keys(range);
      const keys: string[] = [];
      let more = false;
      try {
        scan: for (;;) {
          const batch = await iterator.nextv(Math.min(Math.max(limit + 1, 16), 1024));
          if (batch.length === 0) break;
          for (const fullKey of batch) {
            if (!internal && fullKey.indexOf(0, keyStart) !== -1) continue; // internal (NUL) keys: blocks of large values
            if (keys.length === limit) {
              more = true;
              break scan;
            }
            keys.push(decodeKey(fullKey.subarray(keyStart)));
          }
          // A batch that ends among a value's blocks (`user key \0 …`, which sort together): the next one starts
          // past them (`user key \x01`), so a LIST does not read thousands of block keys to find a page.
          const last = batch[batch.length - 1]!;
          const nul = internal ? -1 : last.indexOf(0, keyStart);
          if (nul !== -1) iterator.seek(Buffer.concat([last.subarray(0, nul), Buffer.of(0x01)]));
        }
      } finally {
        await iterator.close();
      }
      return { keys, more };
    } finally {
      this.end();
    }
  }

  async dropJob(jobId: string): Promise<number> {
    const db = this.begin();
    try {
      checkJob(jobId);
      return await this.jobs.drop(jobId, async (job) => {
        await db.clear(jobRange(jobId));
        const freed = job.bytes;
        this.usedBytes -= freed;
        job.bytes = 0;
        job.tombstones = null;
        this.store.dropJob(jobId);
        return freed;
      });
    } finally {
      this.end();
    }
  }

  /** Tombstones live in memory; a key written since its delete has none (put and update clear it). */
  deletedAt(jobId: string, key: string): Tombstone | undefined {
    return this.jobs.get(jobId)?.tombstones?.get(key);
  }

  usageByJob(): Map<string, number> {
    return this.jobs.usage();
  }

  /** Segment files and compaction counters (for tests and diagnostics). */
  stats(): DiskEngineStats {
    const { store } = this;
    return {
      segments: store.stats(),
      compactions: store.compactions,
      bytesRelocated: store.bytesRelocated,
      lastCompactionError: store.lastCompactionError,
    };
  }

  /** Resolves once no compaction is queued or running and every retired segment file is removed. */
  whenIdle(): Promise<void> {
    return this.store.whenIdle();
  }

  /** Waits for calls in flight and compaction, then closes LevelDB and the segment files. Idempotent. */
  close(): Promise<void> {
    if (this.closed !== null) return this.closed;
    if (this.state === 'new' || this.state === 'closed') {
      this.state = 'closed';
      this.closed = Promise.resolve();
      return this.closed;
    }
    this.state = 'closing';
    this.store.stop();
    this.closed = (async () => {
      if (this.inflight > 0) await new Promise<void>((resolve) => (this.idleWaiter = resolve));
      await this.store.drain();
      await this.db?.close();
      this.db = null;
      this.commits = null;
      this.store.closeFiles();
      this.jobs.clear();
      this.usedBytes = 0;
      this.state = 'closed';
    })();
    return this.closed;
  }

  // ---- calls in flight ----

  private begin(): Level<Buffer, Buffer> {
    if (this.state !== 'open' || this.db === null) {
      throw new SatchelError(
        this.state === 'new' || this.state === 'opening' ? 'UNAVAILABLE' : 'CLOSED',
        `the ${this.tier} engine is ${this.state === 'new' ? 'not open' : this.state}`,
      );
    }
    this.inflight++;
    return this.db;
  }

  /** The index entry at `fullKey`, read in this turn where `syncReads` allows. */
  private readIndex(db: Level<Buffer, Buffer>, fullKey: Buffer): Buffer | undefined | Promise<Buffer | undefined> {
    return this.syncReads ? db.getSync(fullKey) : db.get(fullKey);
  }

  private end(): void {
    if (--this.inflight === 0 && this.idleWaiter !== null) {
      const resolve = this.idleWaiter;
      this.idleWaiter = null;
      resolve();
    }
  }

  /** Joins the job's writes in flight (after a DROP_JOB in progress), then waits for the key's lock. */
  private async enter(jobId: string, lock: KeyLock): Promise<JobState> {
    let job: JobState;
    try {
      job = await this.jobs.enter(jobId);
    } catch (error) {
      this.locks.abandon(lock);
      throw error;
    }
    if (lock.previous !== undefined) await lock.previous;
    return job;
  }

  /**
   * The entry a PUT, UPDATE or DELETE replaces (and UPDATE hands to its compute). A large value is not read back
   * unless it is a manifest (see engine.ts).
   */
  private async oldEntry(old: IndexEntry, fullKey: Buffer): Promise<StoredEntry> {
    const { flags, epoch, seq } = old;
    if (old.kind === INLINE) return { value: old.value, flags, epoch, seq };
    if ((old.flags & Flag.MANIFEST) === 0) return { value: EMPTY, flags, epoch, seq };
    const segment = this.store.get(old.segment);
    if (segment === undefined)
      throw new SatchelError('UNAVAILABLE', `index entry of ${fullKey.length}-byte key points to segment ${old.segment}, which is gone`);
    return { value: await this.store.read(segment, old.offset, old.length), flags, epoch, seq };
  }

  /**
   * The write path PUT and UPDATE share. Takes the key's lock in the caller's turn (so a GET issued right after
   * the call waits for it), then, holding it, reads the index entry, decides the write's version (engine.ts
   * "Versions") and asks `decide` what to store over it: an answer that stores nothing, or a value (with the
   * replaced entry if `decide` already read it). Checks and reserves capacity, writes the value inline or to a
   * segment, marks the old record dead and recycles the value.
   */
  private async writeLocked(
    db: Level<Buffer, Buffer>,
    jobId: string,
    key: string,
    epoch: number,
    seq: number,
    decide: Decide,
  ): Promise<PutOutcome> {
    const lockKey = jobKey(jobId, key);
    const fullKey = encodeKey(lockKey);
    const release = this.locks.lock(lockKey);
    const job = await this.enter(jobId, release);
    try {
      const raw = await this.readIndex(db, fullKey);
      const old = raw === undefined ? undefined : decodeIndex(raw);
      const held = old ?? job.tombstones?.get(key);
      const version = held === undefined ? versionFor(epoch, seq, 0, 0) : versionFor(epoch, seq, held.epoch, held.seq);
      if (version === 0) return { ok: true, replaced: undefined, seq: 0, skipped: true };
      if (version < 0) return { ok: false, reason: 'STALE', message: staleMessage(held!.epoch, epoch) };
      const decided = decide(old, fullKey);
      const write = decided instanceof Promise ? await decided : decided;
      if ('ok' in write) return write;
      const { value, flags } = write;
      const cost = entryCost(key, value.length);
      const freed = old === undefined ? 0 : entryCost(key, old.length);
      if (this.usedBytes - freed + cost > this.capacity) {
        return {
          ok: false,
          reason: 'FULL',
          message: `node full: ${this.usedBytes} of ${this.capacity} bytes used, value needs ${value.length}`,
        };
      }
      // Reserved now, so concurrent writes cannot overcommit; given back if the write fails.
      this.usedBytes += cost - freed;
      job.bytes += cost - freed;
      let replaced = write.replaced;
      try {
        if (old !== undefined && replaced === undefined) replaced = await this.oldEntry(old, fullKey);
        if (this.device !== null) await this.device.transfer(value.length);
        if (value.length < this.inlineMax) {
          await this.commits!.write({ type: 'put', key: fullKey, value: encodeInline(flags, epoch, version, value) });
        } else {
          const store = this.store;
          const at = store.allocate(fullKey.length, value.length);
          try {
            await store.writeRecord(at, fullKey, value, flags);
            await this.commits!.write({
              type: 'put',
              key: fullKey,
              value: encodeInSegment(flags, epoch, version, at.segment.id, at.offset, value.length),
            });
          } catch (error) {
            store.failed(at);
            throw error;
          }
          store.committed(at, jobId);
        }
      } catch (error) {
        this.usedBytes -= cost - freed;
        job.bytes -= cost - freed;
        throw error;
      }
      // Not when `decide` stored the very buffer it was handed as the old entry: that one goes back as `replaced`.
      if (replaced === undefined || value.buffer !== replaced.value.buffer) this.recycle?.(value);
      if (old !== undefined && old.kind === IN_SEGMENT) this.store.markDead(old.segment, fullKey.length, old.length, jobId);
      if (old === undefined) job.tombstones?.delete(key);
      return { ok: true, replaced, seq: version };
    } finally {
      release();
      this.jobs.leave(jobId, job);
    }
  }

  /**
   * Compaction's move of one record (segment-store.ts `Relocate`), under the key's lock like any write: copied to
   * the active segment and its index entry repointed, if the index still points at it.
   */
  private readonly relocate = async (
    segment: Segment,
    fullKey: Buffer,
    offset: number,
    length: number,
    recordLength: number,
  ): Promise<void> => {
    const { jobId, key } = splitFullKey(fullKey);
    const release = this.locks.lock(jobKey(jobId, key));
    const job = await this.enter(jobId, release);
    try {
      const raw = await this.db!.get(fullKey);
      if (raw === undefined) return;
      const entry = decodeIndex(raw);
      if (entry.kind !== IN_SEGMENT || entry.segment !== segment.id || entry.offset !== offset) return; // dead
      const store = this.store;
      const value = await store.read(segment, offset, length);
      const to = store.allocate(fullKey.length, length);
      try {
        await store.writeRecord(to, fullKey, value, entry.flags);
        await this.commits!.write({
          type: 'put',
          key: fullKey,
          value: encodeInSegment(entry.flags, entry.epoch, entry.seq, to.segment.id, to.offset, length),
        });
      } catch (error) {
        store.failed(to);
        throw error;
      }
      store.committed(to, jobId);
      store.moved(segment, recordLength, jobId);
    } finally {
      release();
      this.jobs.leave(jobId, job);
    }
  };
}
