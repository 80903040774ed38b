// The disk engine's index format: how a job's key becomes a LevelDB key (`job \x01 key`, in CESU-8) and what the
// index entry under it holds (flags, version, and the value inline or where it sits in a segment). Pure functions
// over buffers: no I/O, no state but the cache of job ids already checked.
import { SatchelError } from '../../proto/index.ts';

// Index entry: kind u8, flags u16, version epoch u32, version seq u32, then the value (inline) or segment u32,
// value offset u32, value length u32.
export const INLINE = 0;
export const IN_SEGMENT = 1;
export const INDEX_HEADER = 11;
const SEGMENT_ENTRY = INDEX_HEADER + 12;

/** Longest LevelDB key (`job \x01 key` encoded): a segment record stores its length as a u16. */
export const MAX_FULL_KEY = 0xffff;

const JOB_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const SURROGATE = /[\uD800-\uDFFF]/;
const EMPTY = Buffer.alloc(0);

export interface IndexEntry {
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

export function checkJob(jobId: string): void {
  if (typeof jobId !== 'string' || !JOB_ID.test(jobId)) throw new SatchelError('BAD_REQUEST', `invalid job id ${JSON.stringify(jobId)}`);
}

export function checkKey(key: string): void {
  if (typeof key !== 'string') throw new SatchelError('BAD_REQUEST', 'key must be a string');
  if (key.length > MAX_FULL_KEY / 3 - 64) throw new SatchelError('BAD_REQUEST', `key of ${key.length} characters is too long`);
}

/** `job \u0001 key`: the lock key, and (encoded) the LevelDB key. Job ids are [a-z0-9-], so \u0001 splits it. */
export function jobKey(jobId: string, key: string): string {
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

/** The job and the key of an encoded LevelDB key (what a segment record carries). */
export function splitFullKey(fullKey: Buffer): { jobId: string; key: string } {
  const split = fullKey.indexOf(1);
  if (split <= 0) throw new SatchelError('UNAVAILABLE', 'corrupt index key: no job');
  return { jobId: fullKey.toString('latin1', 0, split), key: decodeKey(fullKey.subarray(split + 1)) };
}

/** Every LevelDB key of `jobId`: from `job \x01` up to `job \x02`. */
export function jobRange(jobId: string): { gte: Buffer; lt: Buffer } {
  const base = encodeKey(jobKey(jobId, ''));
  return { gte: base, lt: Buffer.concat([base.subarray(0, base.length - 1), Buffer.of(0x02)]) };
}

/**
 * The LevelDB keys a LIST of `prefix` scans (past `after` when it is a cursor within the prefix), and where the
 * job's key starts in each (`keyStart`).
 */
export function listRange(
  jobId: string,
  prefix: string,
  after: string,
): { range: { gt?: Buffer; gte?: Buffer; lt: Buffer }; keyStart: number } {
  const keyStart = encodeKey(jobKey(jobId, '')).length;
  const low = encodeKey(jobKey(jobId, prefix));
  // No UTF-8/CESU-8 byte is 0xff: every key starting with `prefix` sorts below prefix + 0xff.
  const high = Buffer.concat([low, Buffer.of(0xff)]);
  const range = after !== '' && after >= prefix ? { gt: encodeKey(jobKey(jobId, after)), lt: high } : { gte: low, lt: high };
  return { range, keyStart };
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

/** The inverse of `encodeKey`. Bytes it never made decode to some string rather than throw. */
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

/** An entry holding its value. */
export function encodeInline(flags: number, epoch: number, seq: number, value: Buffer): Buffer {
  const out = indexHeader(Buffer.allocUnsafe(INDEX_HEADER + value.length), INLINE, flags, epoch, seq);
  value.copy(out, INDEX_HEADER);
  return out;
}

/** An entry pointing at a value of `length` bytes at `offset` in segment `segment`. */
export function encodeInSegment(flags: number, epoch: number, seq: number, segment: number, offset: number, length: number): Buffer {
  const out = indexHeader(Buffer.allocUnsafe(SEGMENT_ENTRY), IN_SEGMENT, flags, epoch, seq);
  out.writeUInt32BE(segment, INDEX_HEADER);
  out.writeUInt32BE(offset, INDEX_HEADER + 4);
  out.writeUInt32BE(length, INDEX_HEADER + 8);
  return out;
}

/** An inline entry's value is a view of `raw`. Anything but the two entry forms is UNAVAILABLE (corrupt). */
export function decodeIndex(raw: Buffer): IndexEntry {
  if (raw.length < INDEX_HEADER) throw new SatchelError('UNAVAILABLE', 'corrupt index entry');
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
