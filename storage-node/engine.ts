/**
 * The storage-engine interface every tier implements (DRAM; SSD and HDD on LevelDB + segment files). Results may be
 * plain values or promises: the DRAM engine answers synchronously so the hot path never waits a tick, a disk
 * engine returns promises. One conformance suite (engine-conformance.suite.ts) runs against every implementation.
 */
export interface StoredEntry {
  value: Buffer;
  flags: number;
  /**
   * The entry's version: the placement epoch it was written in, then its order among that epoch's writes of the
   * key (engine.ts "Versions"). Copies of a key converge on the highest.
   */
  epoch: number;
  seq: number;
  /**
   * Sends of this value by reference (over COPY_THRESHOLD) the socket has not finished: its memory may go back
   * to the pool only at 0. Set and read by the server, never by an engine.
   */
  lent?: number;
  /** The entry left the engine while lent: the last send to finish hands its memory back. */
  retired?: true;
  /** Held by something that does not say when it is done (a waiter's answer): never recycled. */
  pinned?: true;
}

/**
 * Versions. Every write of a key gets a version (epoch, seq), compared epoch first. A write carries `seq` 0 when
 * this node orders it (a job's only copy, or a replicated key's primary): the engine gives it the frame's epoch
 * and the next seq after what the key holds or last held (its tombstone) in that epoch, and refuses it with STALE
 * when the key holds a version of a later epoch (the writer's placement is out of date). A write with `seq` > 0
 * was ordered elsewhere (a replica of the primary's write, a migration copy): stored only when its version is
 * above the key's, else left alone (`skipped`). So replicas and copies converge on the newest write, and a copy
 * never overwrites a write made after it was read.
 *
 * Tombstones. A DELETE asked to keep one (the server does for replicated jobs, and for jobs being copied onto the
 * node) remembers the deleted key's version for `TOMBSTONE_TTL_MS`, so a replica or copy of an older write that
 * arrives after the delete cannot bring the key back, and a GET that finds the key deleted says so (Flag.DELETED)
 * with that version: a reader falling back to an older placement generation stops there, since a copy left on an
 * older generation's node (which the same DELETE reaches later) is older than the delete.
 */
import { newerVersion } from '../proto/index.ts';

export const TOMBSTONE_TTL_MS = 60_000;

/**
 * `replaced` (and DELETE's result) is the entry that was there. The server only needs the old value when it is a
 * block manifest (it hands it back to the client), so an engine that keeps large values out of memory may answer
 * a non-manifest entry it would have to read from disk with an empty `value` (the right `flags`).
 */
export type PutOutcome =
  /** `seq`: the version's seq the write got (or was given). `skipped`: a newer version was there; nothing stored. */
  | { ok: true; replaced: StoredEntry | undefined; seq: number; skipped?: true }
  | { ok: false; reason: 'FULL'; message: string }
  /** `update`'s compute refused the entry there (not a counter, say): nothing was stored. */
  | { ok: false; reason: 'BAD_REQUEST'; message: string }
  /** The key holds a version of a later epoch than the write's: the writer's placement is out of date. */
  | { ok: false; reason: 'STALE'; message: string };

/** DELETE: `old` the entry deleted (undefined: none); `seq` the delete's version, as for a write. */
export type DeleteOutcome =
  | { ok: true; old: StoredEntry | undefined; seq: number; skipped?: true }
  | { ok: false; reason: 'STALE'; message: string };

/**
 * What `update` stores given the entry there now (undefined: none): the new value, or a refusal. An entry whose
 * value a disk engine keeps out of memory is handed over with an empty `value` (as for `replaced`); its flags
 * are right, and it is never a counter anyway.
 */
export type ComputeValue = (old: StoredEntry | undefined) => Buffer | { refuse: string };

export interface ListPage {
  keys: string[];
  more: boolean;
}

export type MaybePromise<T> = T | Promise<T>;

export interface StorageEngine {
  readonly tier: string;
  /** Bytes this engine may hold; PUTs past it are refused with FULL. */
  readonly capacity: number;
  /** Bytes held now, counting keys and a fixed per-entry overhead. */
  readonly used: number;
  /**
   * Stores `value` (the engine may keep the buffer: callers hand over ownership) at version (epoch, seq), `seq` 0
   * meaning "the next one" (see Versions above), checked and written as one step.
   */
  put(jobId: string, key: string, value: Buffer, flags: number, epoch?: number, seq?: number): MaybePromise<PutOutcome>;
  /**
   * Read, compute and write as one step under the key (INCR: no other write to the key lands in between), at the
   * next version of `epoch`. The new entry has flags 0; `replaced` is the old entry, as for `put`. A refusal
   * from `compute` is answered `{ ok: false, reason: 'BAD_REQUEST' }` and stores nothing; so is FULL.
   */
  update(jobId: string, key: string, compute: ComputeValue, epoch?: number): MaybePromise<PutOutcome>;
  get(jobId: string, key: string): MaybePromise<StoredEntry | undefined>;
  /**
   * The version of the key's last delete while it holds no value and remembers one (a tombstone), else
   * undefined. A GET finding nothing says so: an older placement generation's copy is older than this delete.
   */
  deletedAt(jobId: string, key: string): { epoch: number; seq: number } | undefined;
  /** Deletes the key at version (epoch, seq) as `put` orders writes; with `tombstone`, remembers the version. */
  delete(jobId: string, key: string, epoch?: number, seq?: number, tombstone?: boolean): MaybePromise<DeleteOutcome>;
  /**
   * Keys starting with `prefix`, strictly after `after`, in JavaScript string order (UTF-16 code units);
   * internal (NUL) keys, the blocks of large values, only with `internal` (migration moves every stored key).
   */
  list(jobId: string, prefix: string, after: string, limit: number, internal?: boolean): MaybePromise<ListPage>;
  /**
   * Deletes every entry of a job; returns the number of bytes freed. An engine holding values in memory hands
   * each entry to `retire` (the server recycles its buffer); one keeping them on disk may ignore it.
   */
  dropJob(jobId: string, retire?: (entry: StoredEntry) => void): MaybePromise<number>;
  /**
   * Kept copies (optional: the memory tier has them). A replicated job that moved off this node — a node back from
   * a freeze, whose copies were restored elsewhere meanwhile — has its entries set aside rather than dropped: out
   * of every read, LIST and `usageByJob`, still counted in `used`, given up first when a write needs the room.
   * When the job is placed here again, the controller's copy of a key takes the entry kept at the same version
   * (`takeKept`: the same write, so its bytes need not travel again). Returns the bytes set aside.
   */
  setAside?(jobId: string, retire: (entry: StoredEntry) => void): number;
  /** Bytes of `used` that are kept copies: reclaimable, so not reported as held (the controller places by it). */
  readonly keptBytes?: number;
  /**
   * Removes and returns the entry kept of the key if its version is exactly (epoch, seq); undefined when there is
   * none at that version; null when nothing of the job is kept at all (the copier stops asking).
   */
  takeKept?(jobId: string, key: string, epoch: number, seq: number): StoredEntry | undefined | null;
  /** Gives up what is kept of the job (`retire` as set aside); returns the bytes freed. */
  dropKept?(jobId: string): number;
  /** Bytes held per job. */
  usageByJob(): Map<string, number>;
  close(): MaybePromise<void>;
}

/** What an entry costs beyond its key and value: the Map slot, the entry object, the Buffer header. */
export const ENTRY_OVERHEAD = 96;

export function entryCost(key: string, valueLength: number): number {
  return key.length + valueLength + ENTRY_OVERHEAD;
}

/**
 * How a write at (epoch, seq) lands on a key holding version (heldEpoch, heldSeq) — the entry's, or its
 * tombstone's when it has none (0, 0: nothing): the seq it gets, 0 = left alone (a replica or copy older than
 * what is held), or -1 = STALE (the node orders it, and the key was written in a later epoch). Both engines
 * decide every write with this.
 */
export function versionFor(epoch: number, seq: number, heldEpoch: number, heldSeq: number): number {
  if (seq > 0) return newerVersion(epoch, seq, heldEpoch, heldSeq) ? seq : 0;
  if (heldEpoch > epoch) return -1;
  if (heldEpoch < epoch) return 1;
  // A seq is a u32 on the wire: a key whose epoch's seqs ran out (a replica may carry any seq) is written again
  // only in a later epoch.
  return heldSeq >= MAX_SEQ ? -1 : heldSeq + 1;
}

/** The largest seq a version may have (a frame's arg). */
export const MAX_SEQ = 0xffffffff;

/** A refused write's message: the key was written under a later placement than the writer's (or its seqs ran out). */
export function staleMessage(heldEpoch: number, epoch: number): string {
  if (heldEpoch === epoch) return `the key's versions in epoch ${epoch} ran out (seq ${MAX_SEQ}): it takes writes again from a later epoch`;
  return `the key holds a write of epoch ${heldEpoch}, later than this request's ${epoch}: refresh the placement`;
}
