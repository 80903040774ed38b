import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Level } from 'level';
import { Flag, SatchelError } from '../../proto/index.ts';
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
} from '../engine.ts';
import { type Tombstone, Tombstones } from '../tombstones.ts';

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

export interface DiskEngineOptions {
  tier: 'ssd' | 'hdd';
  /** A directory the engine owns: created if missing, its earlier contents wiped on open. */
  path: string;
  /** Bytes the engine may hold (keys + values + a fixed per-entry overhead, as in DRAM). */
  capacity: number;
  /** Values of this many bytes or more go to segment files; smaller ones live in LevelDB. Default 64 KiB. */
  inlineMax?: number;
  /** A segment is closed for appends once it holds this many bytes. Default 64 MiB. */
  segmentBytes?: number;
  /** A closed segment whose dead share passes this is compacted. Default 0.5. */
  compactDeadFraction?: number;
  /** Emulates a slower device (the `hdd` tier on a machine without one); off by default. */
  emulate?: DeviceEmulation;
}

export interface DeviceEmulation {
  /** Added to every value read and write (one seek each). */
  seekMs?: number;
  /** Transfer rate of the one emulated head; reads and writes queue behind each other. */
  bandwidthBytesPerSec?: number;
}

export interface SegmentStats {
  id: number;
  file: string;
  size: number;
  dead: number;
  active: boolean;
}

export interface DiskEngineStats {
  segments: SegmentStats[];
  /** Segments compacted since open. */
  compactions: number;
  /** Live bytes copied by compaction since open. */
  bytesRelocated: number;
  /** The last compaction failure, if any (compaction retries when the segment gets more dead bytes). */
  lastCompactionError: unknown;
}

const KiB = 1024;
const MiB = 1024 * KiB;
export const DEFAULT_INLINE_MAX = 64 * KiB;
export const DEFAULT_SEGMENT_BYTES = 64 * MiB;
export const DEFAULT_COMPACT_DEAD_FRACTION = 0.5;

const JOB_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const SURROGATE = /[\uD800-\uDFFF]/;
const MARKER = 'SATCHEL-DISK-ENGINE';
const EMPTY = Buffer.alloc(0);

// Index entry: kind u8, flags u16, version epoch u32, version seq u32, then the value (inline) or segment u32,
// value offset u32, value length u32.
const INLINE = 0;
const IN_SEGMENT = 1;
const INDEX_HEADER = 11;
const SEGMENT_ENTRY = INDEX_HEADER + 12;

// Segment record: magic u32, value length u32, flags u16, full-key length u16, the full key, the value.
const RECORD_MAGIC = 0x53415443; // 'SATC'
const RECORD_HEADER = 12;
const MAX_FULL_KEY = 0xffff;

interface Segment {
  id: number;
  file: string;
  fd: number;
  /** Bytes allocated (records written or being written). */
  size: number;
  /** Bytes of records no index entry points to any more. */
  dead: number;
  /** Live record bytes per job, so DROP_JOB can mark a job's records dead without reading the index. */
  liveByJob: Map<string, number>;
  /** Appends allocated here whose index entry is not committed yet: compaction must wait for them. */
  writers: number;
  /** Reads in progress: the file stays open until they finish. */
  readers: number;
  compacting: boolean;
  queued: boolean;
  retired: boolean;
  /** Records whose write failed (offset → length): compaction steps over them. */
  holes: Map<number, number> | null;
}

interface JobState {
  bytes: number;
  /** Writes of this job in progress (PUT, UPDATE, DELETE, compaction moving one of its records). */
  inflight: number;
  dropping: Promise<number> | null;
  drained: (() => void) | null;
  /** Deleted keys' versions, when a DELETE asked to keep them (engine.ts "Tombstones"); in memory only. */
  tombstones: Tombstones | null;
}

interface IndexEntry {
  kind: number;
  flags: number;
  epoch: number;
  seq: number;
  length: number;
  /** Inline values only. */
  value: Buffer;
  segment: number;
  offset: number;
}

interface Location {
  segment: Segment;
  /** Where the record starts. */
  record: number;
  /** Where its value starts. */
  offset: number;
  recordLength: number;
}

type KeyLock = (() => void) & { previous?: Promise<void> };

/**
 * What a locked write stores over `old` (the index entry there, if any), or the answer when it stores nothing;
 * called only once the write's version was found to land (engine.ts "Versions").
 */
type Decide = (old: IndexEntry | undefined, fullKey: Buffer) => WriteDecision | Promise<WriteDecision>;
/** `replaced`: the old entry, when `decide` has read it already (else it is read after the capacity check). */
type WriteDecision = { value: Buffer; flags: number; replaced?: StoredEntry | undefined } | PutOutcome;

type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

export class DiskEngine implements StorageEngine {
  readonly tier: 'ssd' | 'hdd';
  readonly capacity: number;
  readonly path: string;
  readonly inlineMax: number;
  readonly segmentBytes: number;
  readonly compactDeadFraction: number;
  private readonly seekMs: number;
  private readonly bytesPerMs: number;
  private readonly emulating: boolean;
  private deviceFreeAt = 0;

  private db: Level<Buffer, Buffer> | null = null;
  private readonly segmentDir: string;
  private readonly segments = new Map<number, Segment>();
  private active: Segment | null = null;
  private nextSegmentId = 1;

  private readonly jobs = new Map<string, JobState>();
  private usedBytes = 0;
  private readonly locks = new Map<string, Promise<void>>();

  private batch: { ops: BatchOp[]; waiters: { resolve: () => void; reject: (error: unknown) => void }[] } | null = null;
  private batchScheduled = false;
  private batchRunning = false;

  private readonly compactQueue: Segment[] = [];
  private compaction: Promise<void> | null = null;
  private readonly unlinks = new Set<Promise<void>>();
  private compactions = 0;
  private bytesRelocated = 0;
  private lastCompactionError: unknown = null;

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
    if (options.tier !== 'ssd' && options.tier !== 'hdd') throw new SatchelError('BAD_REQUEST', `a disk engine serves the ssd or hdd tier, not ${String(options.tier)}`);
    if (typeof options.path !== 'string' || options.path.length === 0) throw new SatchelError('BAD_REQUEST', `the ${options.tier} tier needs a directory (path)`);
    if (!(options.capacity > 0)) throw new SatchelError('BAD_REQUEST', 'capacity must be a positive number of bytes');
    this.tier = options.tier;
    this.capacity = options.capacity;
    this.path = path.resolve(options.path);
    this.segmentDir = path.join(this.path, 'segments');
    this.inlineMax = positive(options.inlineMax ?? DEFAULT_INLINE_MAX, 'inlineMax');
    this.segmentBytes = positive(options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, 'segmentBytes');
    // Offsets are u32 in the index; one record larger than a segment still starts at 0.
    if (this.segmentBytes > 2 ** 31) throw new SatchelError('BAD_REQUEST', 'segmentBytes must be at most 2 GiB');
    this.compactDeadFraction = options.compactDeadFraction ?? DEFAULT_COMPACT_DEAD_FRACTION;
    if (!(this.compactDeadFraction > 0 && this.compactDeadFraction < 1)) throw new SatchelError('BAD_REQUEST', 'compactDeadFraction must be between 0 and 1');
    this.seekMs = options.emulate?.seekMs ?? 0;
    const bandwidth = options.emulate?.bandwidthBytesPerSec ?? 0;
    if (!(this.seekMs >= 0) || !(bandwidth >= 0)) throw new SatchelError('BAD_REQUEST', 'emulated seek time and bandwidth must not be negative');
    this.bytesPerMs = bandwidth / 1000;
    this.emulating = this.seekMs > 0 || bandwidth > 0;
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
      await fsp.mkdir(this.path, { recursive: true });
      const entries = await fsp.readdir(this.path);
      if (entries.length > 0 && !entries.includes(MARKER)) {
        throw new SatchelError('BAD_REQUEST', `refusing to use ${this.path}: not empty and not a satchel ${this.tier} directory (no ${MARKER} file)`);
      }
      await fsp.writeFile(path.join(this.path, MARKER), 'Satchel storage-engine data. Wiped whenever a storage node starts here.\n');
      for (const name of entries) {
        if (name !== MARKER) await fsp.rm(path.join(this.path, name), { recursive: true, force: true });
      }
      await fsp.mkdir(this.segmentDir);
      const db = new Level<Buffer, Buffer>(path.join(this.path, 'index'), {
        keyEncoding: 'buffer',
        valueEncoding: 'buffer',
        // Bigger than the 4 MiB default: fewer level-0 flushes for a stream of small PUTs.
        writeBufferSize: 16 * MiB,
      });
      await db.open();
      this.db = db;
      this.state = 'open';
    } catch (error) {
      this.state = 'closed';
      if (error instanceof SatchelError) throw error;
      throw new SatchelError('UNAVAILABLE', `cannot open the ${this.tier} engine at ${this.path}: ${(error as Error).message}`, { cause: error });
    }
  }

  get used(): number {
    return this.usedBytes;
  }

  async put(jobId: string, key: string, value: Buffer, flags: number, epoch = 0, seq = 0): Promise<PutOutcome> {
    const db = this.begin();
    try {
      checkKey(key);
      if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff) throw new SatchelError('BAD_REQUEST', `flags must be a 16-bit integer, got ${String(flags)}`);
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

  async get(jobId: string, key: string): Promise<StoredEntry | undefined> {
    const db = this.begin();
    try {
      checkKey(key);
      const lockKey = jobKey(jobId, key);
      const fullKey = encodeKey(lockKey);
      const pending = this.locks.get(lockKey);
      if (pending !== undefined) await pending;
      for (let attempt = 0; ; attempt++) {
        const raw = await db.get(fullKey);
        if (raw === undefined) return undefined;
        const entry = decodeIndex(raw);
        if (entry.kind === INLINE) {
          if (this.emulating) await this.device(entry.length);
          return { value: entry.value, flags: entry.flags, epoch: entry.epoch, seq: entry.seq };
        }
        if (this.emulating) await this.device(entry.length);
        // Looked up and pinned in one turn: a segment is never unlinked while pinned.
        const segment = this.segments.get(entry.segment);
        // Compaction moved the record and retired its segment between our index read and now: read the index again.
        if (segment === undefined) {
          if (attempt < 8) continue;
          throw new SatchelError('UNAVAILABLE', `index entry points to segment ${entry.segment}, which is gone`);
        }
        const value = await this.readPinned(segment, entry.offset, entry.length, this.allocateValue?.(entry.length));
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
      const release = this.lock(lockKey);
      const job = await this.enter(jobId, release);
      try {
        const raw = await db.get(fullKey);
        const old = raw === undefined ? undefined : decodeIndex(raw);
        const held = old ?? job.tombstones?.get(key);
        const version = held === undefined ? versionFor(epoch, seq, 0, 0) : versionFor(epoch, seq, held.epoch, held.seq);
        if (version === 0) return { ok: true, old: undefined, seq: 0, skipped: true };
        if (version < 0) return { ok: false, reason: 'STALE', message: staleMessage(held!.epoch, epoch) };
        if (tombstone) (job.tombstones ??= new Tombstones()).set(key, { epoch, seq: version });
        if (old === undefined) return { ok: true, old: undefined, seq: version };
        const entry = await this.oldEntry(old, fullKey);
        if (this.emulating) await this.device(0);
        await this.write({ type: 'del', key: fullKey });
        const cost = entryCost(key, old.length);
        this.usedBytes -= cost;
        job.bytes -= cost;
        if (old.kind === IN_SEGMENT) this.markDead(old, fullKey.length, jobId);
        return { ok: true, old: entry, seq: version };
      } finally {
        release();
        this.leaveJob(jobId, job);
      }
    } finally {
      this.end();
    }
  }

  async list(jobId: string, prefix: string, after: string, limit: number, internal = false): Promise<ListPage> {
    const db = this.begin();
    try {
      if (typeof prefix !== 'string' || typeof after !== 'string') throw new SatchelError('BAD_REQUEST', 'prefix and cursor must be strings');
      if (!Number.isInteger(limit) || limit < 0) throw new SatchelError('BAD_REQUEST', `limit must be a non-negative integer, got ${String(limit)}`);
      const base = encodeKey(jobKey(jobId, ''));
      const low = encodeKey(jobKey(jobId, prefix));
      // No UTF-8/CESU-8 byte is 0xff: every key starting with `prefix` sorts below prefix + 0xff.
      const high = Buffer.concat([low, Buffer.of(0xff)]);
      const range = after !== '' && after >= prefix ? { gt: encodeKey(jobKey(jobId, after)), lt: high } : { gte: low, lt: high };
      if (this.emulating) await this.device(0);
      const iterator = db.keys(range);
      const keys: string[] = [];
      let more = false;
      try {
        scan: for (;;) {
          const batch = await iterator.nextv(Math.min(Math.max(limit + 1, 16), 1024));
          if (batch.length === 0) break;
          for (const fullKey of batch) {
            if (!internal && fullKey.indexOf(0, base.length) !== -1) continue; // internal (NUL) keys: blocks of large values
            if (keys.length === limit) {
              more = true;
              break scan;
            }
            keys.push(decodeKey(fullKey.subarray(base.length)));
          }
          // A batch that ends among a value's blocks (`user key \0 …`, which sort together): the next one starts
          // past them (`user key \x01`), so a LIST does not read thousands of block keys to find a page.
          const last = batch[batch.length - 1]!;
          const nul = internal ? -1 : last.indexOf(0, base.length);
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
      const job = this.jobs.get(jobId);
      if (job === undefined) return 0;
      if (job.dropping !== null) {
        await job.dropping.catch(() => undefined);
        return 0;
      }
      const dropping = (async () => {
        if (job.inflight > 0) await new Promise<void>((resolve) => (job.drained = resolve));
        job.drained = null;
        const base = encodeKey(jobKey(jobId, ''));
        await db.clear({ gte: base, lt: Buffer.concat([base.subarray(0, base.length - 1), Buffer.of(0x02)]) });
        const freed = job.bytes;
        this.usedBytes -= freed;
        job.bytes = 0;
        job.tombstones = null;
        for (const segment of [...this.segments.values()]) {
          const live = segment.liveByJob.get(jobId);
          if (live === undefined) continue;
          segment.liveByJob.delete(jobId);
          segment.dead += live;
          this.reclaim(segment);
        }
        return freed;
      })();
      job.dropping = dropping;
      try {
        return await dropping;
      } finally {
        job.dropping = null;
        if (job.inflight === 0 && job.bytes === 0 && this.jobs.get(jobId) === job) this.jobs.delete(jobId);
      }
    } finally {
      this.end();
    }
  }

  /** Tombstones live in memory; a key written since its delete has none (put and update clear it). */
  deletedAt(jobId: string, key: string): Tombstone | undefined {
    return this.jobs.get(jobId)?.tombstones?.get(key);
  }

  usageByJob(): Map<string, number> {
    const usage = new Map<string, number>();
    for (const [jobId, job] of this.jobs) if (job.bytes > 0) usage.set(jobId, job.bytes);
    return usage;
  }

  /** Segment files and compaction counters (for tests and diagnostics). */
  stats(): DiskEngineStats {
    const segments = [...this.segments.values()]
      .map((s) => ({ id: s.id, file: s.file, size: s.size, dead: s.dead, active: s === this.active }))
      .sort((a, b) => a.id - b.id);
    return { segments, compactions: this.compactions, bytesRelocated: this.bytesRelocated, lastCompactionError: this.lastCompactionError };
  }

  /** Resolves once no compaction is queued or running and every retired segment file is removed. */
  async whenIdle(): Promise<void> {
    while (this.compaction !== null || this.unlinks.size > 0) {
      if (this.compaction !== null) await this.compaction;
      if (this.unlinks.size > 0) await Promise.all([...this.unlinks]);
    }
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
    this.closed = (async () => {
      if (this.inflight > 0) await new Promise<void>((resolve) => (this.idleWaiter = resolve));
      this.compactQueue.length = 0;
      await this.whenIdle();
      await this.db?.close();
      this.db = null;
      for (const segment of this.segments.values()) fs.closeSync(segment.fd);
      this.segments.clear();
      this.active = null;
      this.jobs.clear();
      this.usedBytes = 0;
      this.state = 'closed';
    })();
    return this.closed;
  }

  // ---- calls in flight ----

  private begin(): Level<Buffer, Buffer> {
    if (this.state !== 'open' || this.db === null) {
      throw new SatchelError(this.state === 'new' || this.state === 'opening' ? 'UNAVAILABLE' : 'CLOSED', `the ${this.tier} engine is ${this.state === 'new' ? 'not open' : this.state}`);
    }
    this.inflight++;
    return this.db;
  }

  private end(): void {
    if (--this.inflight === 0 && this.idleWaiter !== null) {
      const resolve = this.idleWaiter;
      this.idleWaiter = null;
      resolve();
    }
  }

  private async enterJob(jobId: string): Promise<JobState> {
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

  private leaveJob(jobId: string, job: JobState): void {
    if (--job.inflight > 0) return;
    if (job.drained !== null) job.drained();
    else if (job.dropping === null && job.bytes === 0 && (job.tombstones?.size ?? 0) === 0 && this.jobs.get(jobId) === job) this.jobs.delete(jobId);
  }

  /**
   * Queues for the key's write lock, in arrival order, now; `enter` waits for it. The release is called exactly
   * once, whether or not the lock was reached.
   */
  private lock(lockKey: string): KeyLock {
    const previous = this.locks.get(lockKey);
    let resolve!: () => void;
    const mine = new Promise<void>((r) => (resolve = r));
    this.locks.set(lockKey, mine);
    const release = (() => {
      if (this.locks.get(lockKey) === mine) this.locks.delete(lockKey);
      resolve();
    }) as KeyLock;
    release.previous = previous;
    return release;
  }

  /** Joins the job's writes in flight (after a DROP_JOB in progress), then waits for the key's lock. */
  private async enter(jobId: string, lock: KeyLock): Promise<JobState> {
    let job: JobState;
    try {
      job = await this.enterJob(jobId);
    } catch (error) {
      lock();
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
    const segment = this.segments.get(old.segment);
    if (segment === undefined) throw new SatchelError('UNAVAILABLE', `index entry of ${fullKey.length}-byte key points to segment ${old.segment}, which is gone`);
    return { value: await this.readPinned(segment, old.offset, old.length), flags, epoch, seq };
  }

  /**
   * The write path PUT and UPDATE share. Takes the key's lock in the caller's turn (so a GET issued right after
   * the call waits for it), then, holding it, reads the index entry, decides the write's version (engine.ts
   * "Versions") and asks `decide` what to store over it: an answer that stores nothing, or a value (with the
   * replaced entry if `decide` already read it). Checks and reserves capacity, writes the value inline or to a
   * segment, marks the old record dead and recycles the value.
   */
  private async writeLocked(db: Level<Buffer, Buffer>, jobId: string, key: string, epoch: number, seq: number, decide: Decide): Promise<PutOutcome> {
    const lockKey = jobKey(jobId, key);
    const fullKey = encodeKey(lockKey);
    const release = this.lock(lockKey);
    const job = await this.enter(jobId, release);
    try {
      const raw = await db.get(fullKey);
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
        if (this.emulating) await this.device(value.length);
        if (value.length < this.inlineMax) {
          await this.write({ type: 'put', key: fullKey, value: encodeInline(flags, epoch, version, value) });
        } else {
          const at = this.allocate(fullKey.length, value.length);
          try {
            await writeFully(at.segment.fd, [recordHeader(fullKey, value.length, flags), value], at.record);
            await this.write({ type: 'put', key: fullKey, value: encodeInSegment(flags, epoch, version, at) });
          } catch (error) {
            this.appendFailed(at);
            throw error;
          }
          this.appendCommitted(at, jobId);
        }
      } catch (error) {
        this.usedBytes -= cost - freed;
        job.bytes -= cost - freed;
        throw error;
      }
      // Not when `decide` stored the very buffer it was handed as the old entry: that one goes back as `replaced`.
      if (replaced === undefined || value.buffer !== replaced.value.buffer) this.recycle?.(value);
      if (old !== undefined && old.kind === IN_SEGMENT) this.markDead(old, fullKey.length, jobId);
      if (old === undefined) job.tombstones?.delete(key);
      return { ok: true, replaced, seq: version };
    } finally {
      release();
      this.leaveJob(jobId, job);
    }
  }

  // ---- LevelDB writes, group-committed ----

  private write(op: BatchOp): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.batch === null) this.batch = { ops: [], waiters: [] };
      this.batch.ops.push(op);
      this.batch.waiters.push({ resolve, reject });
      if (!this.batchRunning && !this.batchScheduled) {
        this.batchScheduled = true;
        setImmediate(() => void this.flushBatches());
      }
    });
  }

  private async flushBatches(): Promise<void> {
    this.batchScheduled = false;
    this.batchRunning = true;
    while (this.batch !== null) {
      const { ops, waiters } = this.batch;
      this.batch = null;
      try {
        await this.db!.batch(ops);
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        for (const waiter of waiters) waiter.reject(error);
      }
    }
    this.batchRunning = false;
  }

  // ---- segments ----

  private allocate(fullKeyLength: number, valueLength: number): Location {
    const recordLength = RECORD_HEADER + fullKeyLength + valueLength;
    let segment = this.active;
    if (segment === null || (segment.size > 0 && segment.size + recordLength > this.segmentBytes)) {
      if (segment !== null) {
        this.active = null;
        this.reclaim(segment);
      }
      segment = this.openSegment();
      this.active = segment;
    }
    const record = segment.size;
    segment.size += recordLength;
    segment.writers++;
    return { segment, record, offset: record + RECORD_HEADER + fullKeyLength, recordLength };
  }

  private openSegment(): Segment {
    const id = this.nextSegmentId++;
    const file = path.join(this.segmentDir, `${String(id).padStart(8, '0')}.seg`);
    // Synchronous, once per segment (64 MiB by default): appends allocate their offset without waiting.
    const fd = fs.openSync(file, 'w+');
    const segment: Segment = {
      id,
      file,
      fd,
      size: 0,
      dead: 0,
      liveByJob: new Map(),
      writers: 0,
      readers: 0,
      compacting: false,
      queued: false,
      retired: false,
      holes: null,
    };
    this.segments.set(id, segment);
    return segment;
  }

  private appendCommitted(at: Location, jobId: string): void {
    const segment = at.segment;
    segment.liveByJob.set(jobId, (segment.liveByJob.get(jobId) ?? 0) + at.recordLength);
    segment.writers--;
    this.reclaim(segment);
  }

  private appendFailed(at: Location): void {
    const segment = at.segment;
    (segment.holes ??= new Map()).set(at.record, at.recordLength);
    segment.dead += at.recordLength;
    segment.writers--;
    this.reclaim(segment);
  }

  private markDead(old: IndexEntry, fullKeyLength: number, jobId: string): void {
    const segment = this.segments.get(old.segment);
    if (segment === undefined) return;
    const recordLength = RECORD_HEADER + fullKeyLength + old.length;
    segment.dead += recordLength;
    const live = (segment.liveByJob.get(jobId) ?? 0) - recordLength;
    if (live > 0) segment.liveByJob.set(jobId, live);
    else segment.liveByJob.delete(jobId);
    this.reclaim(segment);
  }

  /** Removes a segment with nothing live in it, or queues it for compaction once enough of it is dead. */
  private reclaim(segment: Segment): void {
    if (segment.retired || segment.compacting || segment.writers > 0 || segment.size === 0) return;
    if (segment.dead >= segment.size) {
      if (segment === this.active) this.active = null;
      this.retire(segment);
      return;
    }
    if (segment === this.active || segment.queued || this.state !== 'open') return;
    if (segment.dead / segment.size <= this.compactDeadFraction) return;
    segment.queued = true;
    this.compactQueue.push(segment);
    this.compaction ??= this.runCompactions().finally(() => (this.compaction = null));
  }

  private retire(segment: Segment): void {
    segment.retired = true;
    this.segments.delete(segment.id);
    if (segment.readers === 0) this.unlink(segment);
  }

  private unlink(segment: Segment): void {
    const done = (async () => {
      fs.close(segment.fd, () => undefined);
      await fsp.rm(segment.file, { force: true });
    })()
      .catch(() => undefined)
      .finally(() => this.unlinks.delete(done));
    this.unlinks.add(done);
  }

  private async readPinned(segment: Segment, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    segment.readers++;
    try {
      return await readFully(segment.fd, offset, length, into);
    } finally {
      if (--segment.readers === 0 && segment.retired) this.unlink(segment);
    }
  }

  // ---- compaction ----

  private async runCompactions(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (let segment = this.compactQueue.shift(); segment !== undefined; segment = this.compactQueue.shift()) {
      segment.queued = false;
      if (segment.retired || this.state !== 'open') continue;
      try {
        await this.compact(segment);
        this.compactions++;
      } catch (error) {
        this.lastCompactionError = error;
      }
    }
  }

  /** Copies the live records of `segment` to the active segment, repoints their index entries, removes the file. */
  private async compact(segment: Segment): Promise<void> {
    segment.compacting = true;
    segment.readers++;
    try {
      for (let at = 0; at < segment.size; ) {
        if (this.state !== 'open') return;
        const hole = segment.holes?.get(at);
        if (hole !== undefined) {
          at += hole;
          continue;
        }
        let head = await readFully(segment.fd, at, Math.min(4 * KiB, segment.size - at));
        if (head.length < RECORD_HEADER || head.readUInt32BE(0) !== RECORD_MAGIC) throw new Error(`segment ${segment.id}: no record at offset ${at}`);
        const valueLength = head.readUInt32BE(4);
        const keyLength = head.readUInt16BE(10);
        if (head.length < RECORD_HEADER + keyLength) head = await readFully(segment.fd, at, RECORD_HEADER + keyLength);
        const fullKey = Buffer.from(head.subarray(RECORD_HEADER, RECORD_HEADER + keyLength));
        const recordLength = RECORD_HEADER + keyLength + valueLength;
        await this.relocate(segment, fullKey, at + RECORD_HEADER + keyLength, valueLength, recordLength);
        at += recordLength;
      }
    } finally {
      segment.readers--;
      segment.compacting = false;
    }
    // Every record is now dead or moved: nothing points into this file any more.
    segment.dead = segment.size;
    segment.liveByJob.clear();
    this.retire(segment);
  }

  private async relocate(segment: Segment, fullKey: Buffer, offset: number, length: number, recordLength: number): Promise<void> {
    const split = fullKey.indexOf(1);
    const jobId = fullKey.toString('latin1', 0, split);
    const lockKey = jobKey(jobId, decodeKey(fullKey.subarray(split + 1)));
    const release = this.lock(lockKey);
    const job = await this.enter(jobId, release);
    try {
      const raw = await this.db!.get(fullKey);
      if (raw === undefined) return;
      const entry = decodeIndex(raw);
      if (entry.kind !== IN_SEGMENT || entry.segment !== segment.id || entry.offset !== offset) return; // dead
      const value = await readFully(segment.fd, offset, length);
      const to = this.allocate(fullKey.length, length);
      try {
        await writeFully(to.segment.fd, [recordHeader(fullKey, length, entry.flags), value], to.record);
        await this.write({ type: 'put', key: fullKey, value: encodeInSegment(entry.flags, entry.epoch, entry.seq, to) });
      } catch (error) {
        this.appendFailed(to);
        throw error;
      }
      this.appendCommitted(to, jobId);
      segment.dead += recordLength;
      const live = (segment.liveByJob.get(jobId) ?? 0) - recordLength;
      if (live > 0) segment.liveByJob.set(jobId, live);
      else segment.liveByJob.delete(jobId);
      this.bytesRelocated += recordLength;
    } finally {
      release();
      this.leaveJob(jobId, job);
    }
  }

  // ---- emulated device ----

  /** One head: each transfer waits for the ones before it, then takes a seek plus its bytes at the set rate. */
  private async device(bytes: number): Promise<void> {
    const now = performance.now();
    const cost = this.seekMs + (this.bytesPerMs > 0 ? bytes / this.bytesPerMs : 0);
    this.deviceFreeAt = Math.max(now, this.deviceFreeAt) + cost;
    const wait = this.deviceFreeAt - now;
    if (wait >= 1) await sleep(Math.round(wait));
  }
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new SatchelError('BAD_REQUEST', `${name} must be a positive integer`);
  return value;
}

function checkJob(jobId: string): void {
  if (typeof jobId !== 'string' || !JOB_ID.test(jobId)) throw new SatchelError('BAD_REQUEST', `invalid job id ${JSON.stringify(jobId)}`);
}

function checkKey(key: string): void {
  if (typeof key !== 'string') throw new SatchelError('BAD_REQUEST', 'key must be a string');
  if (key.length > MAX_FULL_KEY / 3 - 64) throw new SatchelError('BAD_REQUEST', `key of ${key.length} characters is too long`);
}

/** `job \u0001 key`: the lock key, and (encoded) the LevelDB key. Job ids are [a-z0-9-], so \u0001 splits it. */
function jobKey(jobId: string, key: string): string {
  checkJobFast(jobId);
  return `${jobId}\u0001${key}`;
}

const knownJobs = new Set<string>();
function checkJobFast(jobId: string): void {
  if (knownJobs.has(jobId)) return;
  checkJob(jobId);
  if (knownJobs.size > 10_000) knownJobs.clear();
  knownJobs.add(jobId);
}

/**
 * Keys are stored in CESU-8 (UTF-8 applied to each UTF-16 code unit) so LevelDB's byte order is JavaScript's
 * string order, which LIST promises and the client's merge across nodes relies on. Plain UTF-8 orders by code
 * point and would put 'U+1F600' after 'U+FFFD'. Without surrogates the two encodings are the same bytes.
 */
export function encodeKey(text: string): Buffer {
  if (!SURROGATE.test(text)) return Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(text.length * 3);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) out[n++] = c;
    else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return out.subarray(0, n);
}

export function decodeKey(bytes: Buffer): string {
  // A surrogate's CESU-8 form starts with 0xed; without one the bytes are plain UTF-8.
  if (bytes.indexOf(0xed) === -1) return bytes.toString('utf8');
  const units: number[] = [];
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    if (b < 0x80) {
      units.push(b);
      i += 1;
    } else if (b < 0xe0) {
      units.push(((b & 0x1f) << 6) | (bytes[i + 1]! & 0x3f));
      i += 2;
    } else {
      units.push(((b & 0x0f) << 12) | ((bytes[i + 1]! & 0x3f) << 6) | (bytes[i + 2]! & 0x3f));
      i += 3;
    }
  }
  let text = '';
  for (let i = 0; i < units.length; i += 4096) text += String.fromCharCode(...units.slice(i, i + 4096));
  return text;
}

function indexHeader(out: Buffer, kind: number, flags: number, epoch: number, seq: number): Buffer {
  out[0] = kind;
  out.writeUInt16BE(flags, 1);
  out.writeUInt32BE(epoch, 3);
  out.writeUInt32BE(seq, 7);
  return out;
}

function encodeInline(flags: number, epoch: number, seq: number, value: Buffer): Buffer {
  const out = indexHeader(Buffer.allocUnsafe(INDEX_HEADER + value.length), INLINE, flags, epoch, seq);
  value.copy(out, INDEX_HEADER);
  return out;
}

function encodeInSegment(flags: number, epoch: number, seq: number, at: Location): Buffer {
  const out = indexHeader(Buffer.allocUnsafe(SEGMENT_ENTRY), IN_SEGMENT, flags, epoch, seq);
  out.writeUInt32BE(at.segment.id, INDEX_HEADER);
  out.writeUInt32BE(at.offset, INDEX_HEADER + 4);
  out.writeUInt32BE(at.recordLength - (at.offset - at.record), INDEX_HEADER + 8);
  return out;
}

function decodeIndex(raw: Buffer): IndexEntry {
  const kind = raw[0]!;
  const flags = raw.readUInt16BE(1);
  const epoch = raw.readUInt32BE(3);
  const seq = raw.readUInt32BE(7);
  if (kind === INLINE) {
    const value = raw.subarray(INDEX_HEADER);
    return { kind, flags, epoch, seq, length: value.length, value, segment: 0, offset: 0 };
  }
  if (kind !== IN_SEGMENT || raw.length !== SEGMENT_ENTRY) throw new SatchelError('UNAVAILABLE', 'corrupt index entry');
  return {
    kind,
    flags,
    epoch,
    seq,
    length: raw.readUInt32BE(INDEX_HEADER + 8),
    value: EMPTY,
    segment: raw.readUInt32BE(INDEX_HEADER),
    offset: raw.readUInt32BE(INDEX_HEADER + 4),
  };
}

function recordHeader(fullKey: Buffer, valueLength: number, flags: number): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER + fullKey.length);
  out.writeUInt32BE(RECORD_MAGIC, 0);
  out.writeUInt32BE(valueLength, 4);
  out.writeUInt16BE(flags, 8);
  out.writeUInt16BE(fullKey.length, 10);
  fullKey.copy(out, RECORD_HEADER);
  return out;
}

function writeFully(fd: number, buffers: Buffer[], position: number): Promise<void> {
  const total = buffers.reduce((n, b) => n + b.length, 0);
  return new Promise((resolve, reject) => {
    fs.writev(fd, buffers, position, (error, written) => {
      if (error) return reject(error);
      if (written === total) return resolve();
      // A short write (rare on a regular file): write the rest from one buffer.
      const rest = Buffer.concat(buffers).subarray(written);
      writeRest(fd, rest, position + written).then(resolve, reject);
    });
  });
}

async function writeRest(fd: number, rest: Buffer, position: number): Promise<void> {
  while (rest.length > 0) {
    const written = await new Promise<number>((resolve, reject) =>
      fs.write(fd, rest, 0, rest.length, position, (error, n) => (error ? reject(error) : resolve(n))),
    );
    if (written === 0) throw new Error('segment write made no progress');
    rest = rest.subarray(written);
    position += written;
  }
}

function readFully(fd: number, position: number, length: number, into?: Buffer): Promise<Buffer> {
  const out = into ?? Buffer.allocUnsafe(length);
  if (length === 0) return Promise.resolve(out);
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      fs.read(fd, out, done, length - done, position + done, (error, n) => {
        if (error) return reject(error);
        if (n === 0) return reject(new Error(`segment ends before ${position + length}`));
        if (done + n === length) return resolve(out);
        step(done + n);
      });
    };
    step(0);
  });
}
