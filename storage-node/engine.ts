/**
 * The storage-engine interface every tier implements (DRAM; SSD and HDD on LevelDB + segment files). Results may be
 * plain values or promises: the DRAM engine answers synchronously so the hot path never waits a tick, a disk
 * engine returns promises. One conformance suite (engine-conformance.ts) runs against every implementation.
 */
export interface StoredEntry {
  value: Buffer;
  flags: number;
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
 * `replaced` (and DELETE's result) is the entry that was there. The server only needs the old value when it is a
 * block manifest (it hands it back to the client), so an engine that keeps large values out of memory may answer
 * a non-manifest entry it would have to read from disk with an empty `value` (the right `flags`).
 */
export type PutOutcome =
  /** `skipped`: an `ifAbsent` PUT found an entry and stored nothing. */
  | { ok: true; replaced: StoredEntry | undefined; skipped?: true }
  | { ok: false; reason: 'FULL'; message: string }
  /** `update`'s compute refused the entry there (not a counter, say): nothing was stored. */
  | { ok: false; reason: 'BAD_REQUEST'; message: string };

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
   * Stores `value` (the engine may keep the buffer: callers hand over ownership). With `ifAbsent`, only when
   * the key holds nothing, checked and written as one step (migration copies must never overwrite a newer write).
   */
  put(jobId: string, key: string, value: Buffer, flags: number, ifAbsent?: boolean): MaybePromise<PutOutcome>;
  /**
   * Read, compute and write as one step under the key (INCR: no other write to the key lands in between). The
   * new entry has flags 0; `replaced` is the old entry, as for `put`. A refusal from `compute` is answered
   * `{ ok: false, reason: 'BAD_REQUEST' }` and stores nothing; so is FULL.
   */
  update(jobId: string, key: string, compute: ComputeValue): MaybePromise<PutOutcome>;
  get(jobId: string, key: string): MaybePromise<StoredEntry | undefined>;
  delete(jobId: string, key: string): MaybePromise<StoredEntry | undefined>;
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
  /** Bytes held per job. */
  usageByJob(): Map<string, number>;
  close(): MaybePromise<void>;
}

/** What an entry costs beyond its key and value: the Map slot, the entry object, the Buffer header. */
export const ENTRY_OVERHEAD = 96;

export function entryCost(key: string, valueLength: number): number {
  return key.length + valueLength + ENTRY_OVERHEAD;
}
