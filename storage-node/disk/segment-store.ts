// Segment files: where values of `inlineMax` bytes or more live, appended as records (Bitcask/Haystack style) and
// pointed at by their index entries. Owns the files, which segment takes appends, the dead-byte accounting, and
// compaction: a closed segment with nothing live is removed, one past `compactDeadFraction` dead has its live
// records moved to the active segment (by the engine's `relocate`, which knows the index) and is removed. A
// segment is unlinked only once nobody reads it, and compaction waits for appends not yet committed to the index.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { readFully, writeFully } from './file-io.ts';

// Segment record: magic u32, value length u32, flags u16, full-key length u16, the full key, the value.
const RECORD_MAGIC = 0x53415443; // 'SATC'
const RECORD_HEADER = 12;
const KiB = 1024;

export interface Segment {
  readonly id: number;
  readonly file: string;
  readonly fd: number;
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

/** Where an append goes: its record in `segment`, and where the value in it starts. */
export interface Location {
  segment: Segment;
  /** Where the record starts. */
  record: number;
  /** Where its value starts. */
  offset: number;
  recordLength: number;
}

export interface SegmentStats {
  id: number;
  file: string;
  size: number;
  dead: number;
  active: boolean;
}

/**
 * Moves the record of `fullKey` (its value `length` bytes at `offset` in `segment`) elsewhere if the index still
 * points at it, and tells the store (`moved`); a record the index no longer points at is dead and left alone.
 */
export type Relocate = (segment: Segment, fullKey: Buffer, offset: number, length: number, recordLength: number) => Promise<void>;

export class SegmentStore {
  private readonly segments = new Map<number, Segment>();
  private active: Segment | null = null;
  private nextSegmentId = 1;
  /** Compaction runs only between `create` and `stop` (while the engine is open). */
  private running = false;

  private readonly compactQueue: Segment[] = [];
  private compaction: Promise<void> | null = null;
  private readonly unlinks = new Set<Promise<void>>();
  /** Segments compacted since open. */
  compactions = 0;
  /** Live bytes copied by compaction since open. */
  bytesRelocated = 0;
  /** The last compaction failure, if any (compaction retries when the segment gets more dead bytes). */
  lastCompactionError: unknown = null;

  constructor(
    readonly dir: string,
    private readonly segmentBytes: number,
    private readonly compactDeadFraction: number,
    private readonly relocate: Relocate,
  ) {}

  /** Makes the (empty) directory; compaction may run from now on. */
  async create(): Promise<void> {
    await fsp.mkdir(this.dir);
    this.running = true;
  }

  /** The segment `id`, if it is not retired. Look it up and `read` it in one turn: that pins it. */
  get(id: number): Segment | undefined {
    return this.segments.get(id);
  }

  /** Room for a record at the end of the active segment (a new one when it would pass `segmentBytes`). */
  allocate(fullKeyLength: number, valueLength: number): Location {
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

  /** Writes the record `at` was allocated for. Then `committed` once its index entry is written, else `failed`. */
  writeRecord(at: Location, fullKey: Buffer, value: Buffer, flags: number): Promise<void> {
    return writeFully(at.segment.fd, [recordHeader(fullKey, value.length, flags), value], at.record);
  }

  /** The index points at the record `at` now: it is live, and counted for its job. */
  committed(at: Location, jobId: string): void {
    const segment = at.segment;
    segment.liveByJob.set(jobId, (segment.liveByJob.get(jobId) ?? 0) + at.recordLength);
    segment.writers--;
    this.reclaim(segment);
  }

  /** The record `at` was not written, or its index entry was not: a hole compaction steps over. */
  failed(at: Location): void {
    const segment = at.segment;
    (segment.holes ??= new Map()).set(at.record, at.recordLength);
    segment.dead += at.recordLength;
    segment.writers--;
    this.reclaim(segment);
  }

  /** The index stopped pointing at a record (overwritten, deleted) of `valueLength` bytes under a key of `fullKeyLength`. */
  markDead(segmentId: number, fullKeyLength: number, valueLength: number, jobId: string): void {
    const segment = this.segments.get(segmentId);
    if (segment === undefined) return;
    const recordLength = RECORD_HEADER + fullKeyLength + valueLength;
    segment.dead += recordLength;
    this.unlive(segment, recordLength, jobId);
    this.reclaim(segment);
  }

  /** `relocate` moved a record of `segment` elsewhere (the segment is being compacted: no reclaim here). */
  moved(segment: Segment, recordLength: number, jobId: string): void {
    segment.dead += recordLength;
    this.unlive(segment, recordLength, jobId);
    this.bytesRelocated += recordLength;
  }

  /** Every record of `jobId` is dead (its index range was cleared). */
  dropJob(jobId: string): void {
    for (const segment of [...this.segments.values()]) {
      const live = segment.liveByJob.get(jobId);
      if (live === undefined) continue;
      segment.liveByJob.delete(jobId);
      segment.dead += live;
      this.reclaim(segment);
    }
  }

  /** Reads `length` bytes at `offset` of `segment` (into `into` if given), keeping the file until done. */
  async read(segment: Segment, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    segment.readers++;
    try {
      return await readFully(segment.fd, offset, length, into);
    } finally {
      if (--segment.readers === 0 && segment.retired) this.unlink(segment);
    }
  }

  /** Segment files and compaction counters (for tests and diagnostics). */
  stats(): SegmentStats[] {
    return [...this.segments.values()]
      .map((s) => ({ id: s.id, file: s.file, size: s.size, dead: s.dead, active: s === this.active }))
      .sort((a, b) => a.id - b.id);
  }

  /** Resolves once no compaction is queued or running and every retired segment file is removed. */
  async whenIdle(): Promise<void> {
    while (this.compaction !== null || this.unlinks.size > 0) {
      if (this.compaction !== null) await this.compaction;
      if (this.unlinks.size > 0) await Promise.all([...this.unlinks]);
    }
  }

  /** No new compaction starts, and one running stops at its next record (the engine is closing). */
  stop(): void {
    this.running = false;
  }

  /** After `stop` and the engine's last call: drops the queue and waits for compaction and unlinks to end. */
  async drain(): Promise<void> {
    this.compactQueue.length = 0;
    await this.whenIdle();
  }

  /** Closes every segment file (the engine is closed). */
  closeFiles(): void {
    for (const segment of this.segments.values()) fs.closeSync(segment.fd);
    this.segments.clear();
    this.active = null;
  }

  private openSegment(): Segment {
    const id = this.nextSegmentId++;
    const file = path.join(this.dir, `${String(id).padStart(8, '0')}.seg`);
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

  private unlive(segment: Segment, recordLength: number, jobId: string): void {
    const live = (segment.liveByJob.get(jobId) ?? 0) - recordLength;
    if (live > 0) segment.liveByJob.set(jobId, live);
    else segment.liveByJob.delete(jobId);
  }

  /** Removes a segment with nothing live in it, or queues it for compaction once enough of it is dead. */
  private reclaim(segment: Segment): void {
    if (segment.retired || segment.compacting || segment.writers > 0 || segment.size === 0) return;
    if (segment.dead >= segment.size) {
      if (segment === this.active) this.active = null;
      this.retire(segment);
      return;
    }
    if (segment === this.active || segment.queued || !this.running) return;
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

  private async runCompactions(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (let segment = this.compactQueue.shift(); segment !== undefined; segment = this.compactQueue.shift()) {
      segment.queued = false;
      if (segment.retired || !this.running) continue;
      try {
        await this.compact(segment);
        this.compactions++;
      } catch (error) {
        this.lastCompactionError = error;
      }
    }
  }

  /** Hands every live record of `segment` to `relocate`, then removes the file. */
  private async compact(segment: Segment): Promise<void> {
    segment.compacting = true;
    segment.readers++;
    try {
      for (let at = 0; at < segment.size; ) {
        if (!this.running) return;
        const hole = segment.holes?.get(at);
        if (hole !== undefined) {
          at += hole;
          continue;
        }
        let head = await readFully(segment.fd, at, Math.min(4 * KiB, segment.size - at));
        if (head.length < RECORD_HEADER || head.readUInt32BE(0) !== RECORD_MAGIC)
          throw new Error(`segment ${segment.id}: no record at offset ${at}`);
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
