/** The LIST answer body: for each key, u16 length then its UTF-8 bytes (keys may hold NUL, so no separator). */
export function encodeKeyList(keys: readonly string[]): Buffer {
  if (keys.length === 0) return Buffer.alloc(0);
  let size = 0;
  for (const key of keys) size += 2 + Buffer.byteLength(key);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const key of keys) {
    const n = out.write(key, at + 2, 'utf8');
    out.writeUInt16BE(n, at);
    at += 2 + n;
  }
  return out;
}

export function decodeKeyList(body: Buffer): string[] {
  const keys: string[] = [];
  for (let at = 0; at + 2 <= body.length; ) {
    const n = body.readUInt16BE(at);
    keys.push(body.toString('utf8', at + 2, at + 2 + n));
    at += 2 + n;
  }
  return keys;
}
