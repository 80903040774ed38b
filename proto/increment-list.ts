/**
 * The increments a counter's copy carries (Flag.INCREMENTS): each recent INCR's token with the total it made and
 * its version, ahead of the value in a GET VERSION answer and in the PUT COPY made from it. The node the copy
 * lands on then answers a retry of one of them with what it made instead of adding it again: an increment whose
 * answer was lost (its primary frozen, the job drained meanwhile) is retried wherever the placement names next,
 * and that node's copy of the counter may already count it.
 *
 * Body: u32 count, then per increment its token (8 bytes), total (i64), epoch (u32) and seq (u32); then the value.
 */

/** One increment as a copy carries it; `token` is its 8 bytes in hex. */
export interface CopiedIncrement {
  token: string;
  total: number;
  epoch: number;
  seq: number;
}

const RECORD_BYTES = 24;

/**
 * Most increments one copy carries, the newest: a retry comes within its call's time, so the latest matter
 * (8,192 is 192 KiB ahead of the value, for a counter incremented ~270 times a second over the 30 s they are kept).
 */
export const MAX_COPIED_INCREMENTS = 8192;

/** `value` with `increments` ahead of it. */
export function withIncrements(increments: readonly CopiedIncrement[], value: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + increments.length * RECORD_BYTES + value.length);
  out.writeUInt32BE(increments.length, 0);
  let at = 4;
  for (const made of increments) {
    out.write(made.token, at, 8, 'hex');
    out.writeBigInt64BE(BigInt(made.total), at + 8);
    out.writeUInt32BE(made.epoch, at + 16);
    out.writeUInt32BE(made.seq, at + 20);
    at += RECORD_BYTES;
  }
  out.set(value, at);
  return out;
}

/** The increments ahead of the value in `body[start, end)` and where the value starts; null if they do not fit. */
export function splitIncrements(body: Buffer, start: number, end: number): { increments: CopiedIncrement[]; valueStart: number } | null {
  if (end - start < 4) return null;
  const count = body.readUInt32BE(start);
  const valueStart = start + 4 + count * RECORD_BYTES;
  if (count > MAX_COPIED_INCREMENTS || valueStart > end) return null;
  const increments: CopiedIncrement[] = [];
  for (let at = start + 4; at < valueStart; at += RECORD_BYTES) {
    const total = Number(body.readBigInt64BE(at + 8));
    if (!Number.isSafeInteger(total)) return null;
    increments.push({ token: body.toString('hex', at, at + 8), total, epoch: body.readUInt32BE(at + 16), seq: body.readUInt32BE(at + 20) });
  }
  return { increments, valueStart };
}
