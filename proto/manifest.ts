import { SatchelError } from './errors.ts';

/**
 * A value longer than the job's block size is stored as blocks under internal keys, and its own key holds this
 * manifest (flagged MANIFEST). Block keys carry a per-write version so an overwrite never mixes two values'
 * blocks; the writer that replaces a manifest is told (REPLACED_MANIFEST) and deletes the old blocks.
 * Layout (big-endian): u8 version=1, u8 reserved, u16 reserved, f64 size, u32 blockSize, u32 blockCount,
 * then the version string (UTF-8, rest of the record).
 */
export interface Manifest {
  size: number;
  blockSize: number;
  blockCount: number;
  version: string;
}

const FIXED = 20;

export function encodeManifest(m: Manifest): Buffer {
  const version = Buffer.from(m.version, 'utf8');
  const b = Buffer.alloc(FIXED + version.length);
  b[0] = 1;
  b.writeDoubleBE(m.size, 4);
  b.writeUInt32BE(m.blockSize, 12);
  b.writeUInt32BE(m.blockCount, 16);
  version.copy(b, FIXED);
  return b;
}

export function decodeManifest(b: Uint8Array): Manifest {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < FIXED || buf[0] !== 1) throw new SatchelError('BAD_REQUEST', 'corrupt block manifest');
  return {
    size: buf.readDoubleBE(4),
    blockSize: buf.readUInt32BE(12),
    blockCount: buf.readUInt32BE(16),
    version: buf.toString('utf8', FIXED),
  };
}

/** Internal key of one block. NUL cannot appear in a user key, so block keys never collide with them. */
export function blockKey(key: string, version: string, index: number): string {
  return `${key}\u0000${version}\u0000${index}`;
}
