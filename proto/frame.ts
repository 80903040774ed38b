/**
 * The data-plane frame: one fixed 24-byte header, then the key, then the value. Requests (client → node) and
 * responses (node → client) share the layout; in a response the opcode byte carries a status instead.
 * proto/README.md is the normative description; keep the two in step.
 */
import type { ErrorCode } from './errors.ts';

export const PROTOCOL_VERSION = 1;
export const HEADER_SIZE = 24;

/** Header field offsets. */
export const Field = {
  BodyLength: 0, // u32: bytes after the header (key + value)
  Version: 4, // u8
  Code: 5, // u8: opcode in a request, status in a response
  Flags: 6, // u16
  Id: 8, // u32: request id, echoed in the response
  Epoch: 12, // u32: the job's placement epoch as the sender knows it
  Arg: 16, // u32: op-specific (LIST page size, STAT size, HELLO max value, ...)
  KeyLength: 20, // u16
  Reserved: 22, // u16, zero
} as const;

export const Op = {
  HELLO: 0x01,
  PUT: 0x02,
  GET: 0x03,
  DELETE: 0x04,
  STAT: 0x05,
  LIST: 0x06,
  WAIT: 0x07, // answered when the key exists: at once, or when a PUT stores it (arg: timeout ms)
  INCR: 0x08, // atomic counter: value = i64 to add; answer body = the new total as i64

  DROP_JOB: 0x09, // admin: delete every byte of a job and refuse it from now on
  PING: 0x0a,
  ANNOUNCE: 0x0b, // admin: this node serves the job from epoch `arg` on (older epochs get STALE); flags: AnnounceFlag
  WATCH: 0x0c, // events (EVENT frames) for puts and deletes of keys under a prefix, until cancelled
  CANCEL: 0x0d, // ends this connection's WAIT or WATCH whose request id is arg
  LIMIT_JOB: 0x0e, // admin: arg 1 = the job is over its byte quota (PUT and INCR refused with FULL), 0 = not
} as const;

/** The arg of an EVENT frame: what happened. The event's key is in the frame's key field. */
export const WatchEvent = {
  /** The watch is registered: every later change under its prefix on this node is reported. */
  STARTED: 0,
  PUT: 1,
  DELETE: 2,
  /** The job's placement changed (frame epoch = the new one): other nodes may hold the prefix now. */
  PLACEMENT: 3,
} as const;

/** WAIT's arg when 0, and the longest a node keeps a waiter (arg is capped to it). */
export const DEFAULT_WAIT_MS = 60_000;
export const MAX_WAIT_MS = 3_600_000;

/** DROP_JOB arg: the job moved to other nodes (keep answering STALE to old epochs) rather than ended. */
export const DROP_MOVED = 1;

/** DROP_JOB flags. */
export const DropFlag = {
  /**
   * With DROP_MOVED: set the job's entries aside a while instead of deleting them (storage-node engine.ts "Kept
   * copies"), for a node back from a freeze whose replicated job was restored without it: placed on it again,
   * the controller's copies take back what did not change (Flag.KEPT) instead of sending it again.
   */
  KEEP: 0x0001,
} as const;

/** ANNOUNCE flags: what the node must know about the job to serve it safely. */
export const AnnounceFlag = {
  /** The job keeps more than one copy of each key: keep tombstones, and stop serving it when the lease lapses. */
  REPLICATED: 0x0001,
  /**
   * Keys of the job are being copied onto this node (migration, restoration), or its placement has older
   * generations readers fall back to: keep tombstones meanwhile.
   */
  COPYING: 0x0002,
} as const;
export type OpCode = (typeof Op)[keyof typeof Op];

export const Status = {
  OK: 0,
  NOT_FOUND: 1,
  STALE: 2,
  // 3 is unused. UNAVAILABLE (15) is also a node's answer for a job it does not serve in this incarnation, or a
  // replicated job while its lease from the controller has lapsed: the client treats it as an unreachable node.
  BAD_REQUEST: 10,
  UNAUTHORIZED: 11,
  NO_SUCH_JOB: 12,
  FULL: 13,
  TOO_LARGE: 14,
  UNAVAILABLE: 15,
  TIMEOUT: 16,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

/** Flags stored with an entry and echoed on GET/STAT. */
export const Flag = {
  /** The value is a manifest pointing at blocks, not the user's bytes. */
  MANIFEST: 0x0001,
  /** LIST: more keys follow; ask again with the last key as the cursor. */
  MORE: 0x0002,
  /** PUT/DELETE response: the body is the manifest of the value that was replaced. */
  REPLACED_MANIFEST: 0x0004,
  /**
   * PUT/DELETE request: a write another node ordered (a replicated key's primary): its version is (the frame's
   * epoch, arg). Stored only when newer than what the key holds or last held; answer arg 1 = stored, 0 = left
   * alone (a newer version is there).
   */
  REPLICA: 0x0008,
  /** LIST request: include internal keys (the NUL-separated blocks of large values). Migration uses it. */
  INTERNAL_KEYS: 0x0010,
  /** Answer: one event of the WATCH with this request id (arg: WatchEvent); more follow. */
  EVENT: 0x0020,
  /**
   * PUT request: a copy made by the controller (migration, restoration) with the version (the frame's epoch, arg)
   * the value had at its source. Stored only when newer than what the key holds or last held (answer arg 1 =
   * stored, 0 = left alone); the frame's epoch is a version here, so it is not checked against the placement.
   * DELETE request: the controller removing a copy no reader may see (migration.ts); no tombstone is kept.
   */
  COPY: 0x0040,
  /** GET or STAT request: answer with the value's version (epoch field, arg) instead of its size. Copies use it. */
  VERSION: 0x0080,
  /** DELETE answer: there was a value to delete. */
  EXISTED: 0x0100,
  /**
   * INCR request: only a counter this node holds (NOT_FOUND otherwise): the client then brings its value forward
   * from an older placement generation before it adds.
   */
  EXISTING: 0x0200,
  /**
   * GET/STAT answer NOT_FOUND: the key was deleted here at version (epoch field, arg) and not written since (a
   * tombstone). A reader falling back to older placement generations stops: their copies are older than this.
   */
  DELETED: 0x0400,
  /**
   * PUT COPY request with no value: store the entry this node kept aside of the key (a replicated job moved off
   * it, now placed on it again) if its version is exactly (the frame's epoch, arg), as a copy with that version.
   * Answered as the PUT COPY would be; NOT_FOUND when no entry is kept at that version (arg 1) or nothing of
   * the job is (arg 0): the copier sends the value then. The controller's only.
   */
  KEPT: 0x0800,
  /**
   * GET VERSION request: put the key's recent increments (their tokens, totals and versions) ahead of the value
   * (increment-list.ts); the answer has the flag when it did, which it does only when this node has some. PUT
   * COPY request: the body carries them so, and the node records them with the copy. A copier passes them on.
   */
  INCREMENTS: 0x1000,
} as const;

/**
 * Whether version (aEpoch, aSeq) is above (bEpoch, bSeq): a value's or a delete's version, as frames carry it
 * (storage-node/engine.ts "Versions"). Engines, copies and readers all order writes by it.
 */
export function newerVersion(aEpoch: number, aSeq: number, bEpoch: number, bSeq: number): boolean {
  return aEpoch > bEpoch || (aEpoch === bEpoch && aSeq > bSeq);
}

/** Largest key on the wire, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/**
 * Largest key a user may choose: less than MAX_KEY_BYTES so that a block key (user key + NUL + version + NUL +
 * index) still fits. User keys may not contain NUL, which is reserved for block keys.
 */
export const MAX_USER_KEY_BYTES = 960;

const statusToCode: Record<number, ErrorCode> = {
  [Status.STALE]: 'STALE',
  [Status.BAD_REQUEST]: 'BAD_REQUEST',
  [Status.UNAUTHORIZED]: 'UNAUTHORIZED',
  [Status.NO_SUCH_JOB]: 'NO_SUCH_JOB',
  [Status.FULL]: 'FULL',
  [Status.TOO_LARGE]: 'TOO_LARGE',
  [Status.UNAVAILABLE]: 'UNAVAILABLE',
  [Status.TIMEOUT]: 'TIMEOUT',
};

const codeToStatus: Partial<Record<ErrorCode, StatusCode>> = Object.fromEntries(
  Object.entries(statusToCode).map(([status, code]) => [code, Number(status) as StatusCode]),
);

export function errorCodeOf(status: number): ErrorCode {
  return statusToCode[status] ?? 'BAD_REQUEST';
}

export function statusOf(code: ErrorCode): StatusCode {
  return codeToStatus[code] ?? Status.BAD_REQUEST;
}
