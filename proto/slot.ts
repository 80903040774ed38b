/**
 * Redis Cluster's key slots: CRC16 (XMODEM: polynomial 0x1021, initial 0) of the key's UTF-8 bytes, or of its
 * hash tag — the bytes between the first `{` and the first `}` after it, when there is at least one — mod 16384.
 * Every key's placement goes by its slot (placement.ts), so a Redis Cluster client routes a key to the node the
 * native client does, and keys sharing a hash tag share a node.
 */
export const SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16-XMODEM of `bytes[start, end)`. */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xff00) ^ TABLE[((crc >>> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** The slot of a key given as its bytes (the RESP front door's view of a key). */
export function keySlotOfBytes(key: Uint8Array): number {
  let start = 0;
  let end = key.length;
  const open = key.indexOf(0x7b); // {
  if (open !== -1) {
    const close = key.indexOf(0x7d, open + 1); // }
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  return crc16(key, start, end) & (SLOTS - 1);
}

/**
 * The slot of a key given as a string (the native client's and the servers' view). ASCII keys are hashed from
 * their char codes with no encoding step (the per-request cost matches the FNV hash this replaced); any other
 * character sends the key through UTF-8 once.
 */
export function keySlot(key: string): number {
  let start = 0;
  let end = key.length;
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = 0;
  for (let i = start; i < end; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x80) return keySlotOfBytes(Buffer.from(key, 'utf8'));
    crc = ((crc << 8) & 0xff00) ^ TABLE[((crc >>> 8) ^ c) & 0xff]!;
  }
  return crc & (SLOTS - 1);
}
