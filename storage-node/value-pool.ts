/**
 * Recycles the buffers of large values the node has let go of (overwritten or deleted), so a stream of large
 * PUTs reuses memory instead of allocating a fresh ArrayBuffer per value. In Node each such allocation counts
 * as external memory and drives V8's full collections: measured here with 1 MiB PUTs × 64 in flight, the node
 * spent 22 % of its time in GC before this pool.
 *
 * Buffers come in classes of whole 64 KiB units. Only buffers the pool itself allocated (whose ArrayBuffer is a
 * whole number of units) go back in, and only when nothing else can still read them: a value sent by
 * reference comes back when the socket is done with it (`StorageServer.retire`, `StoredEntry.lent`).
 */
import { COPY_THRESHOLD } from '../proto/index.ts';

const UNIT = 64 * 1024;
/** Bodies smaller than this are left to Node's allocator. */
export const POOLED_MIN = UNIT;
/** Small buffers kept for reuse at most (`keepSmall`). */
const SMALL_BYTES = 1024 * 1024;

export class ValuePool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private freeBytes = 0;
  /** The fewest free bytes since the last `trim`: what sat unused the whole time. */
  private lowWater = 0;

  /**
   * `maxFreeBytes`: free memory kept at most. Buffers come back the moment their values leave the engine
   * (StorageServer.retire), so the pool only bridges a release and the next PUT; a job dropping more than
   * this hands the rest back to the allocator, and so to the OS (STORAGE_NODE_ENV).
   */
  /** Small values' buffers by exact size (`keepSmall`, `takeSmall`). */
  private readonly small = new Map<number, Buffer[]>();
  private smallBytes = 0;

  constructor(private readonly maxFreeBytes = 16 * 1024 * 1024) {}

  /**
   * A buffer of exactly `size` bytes (at most COPY_THRESHOLD) that a replaced small value left (`keepSmall`), or
   * undefined. Every buffer of its own per stored value (allocUnsafeSlow) cost a storage node 5 % of its CPU, and
   * its collections more, under `redis-benchmark -t set -P 16 -d 1024` (`satchel bench resp`, 2026-12-04); a
   * workload that rewrites keys with values of their size allocates nothing.
   */
  takeSmall(size: number): Buffer | undefined {
    const buffer = this.small.get(size)?.pop();
    if (buffer !== undefined) this.smallBytes -= size;
    return buffer;
  }

  /**
   * Keeps a small value's buffer for `takeSmall` when it is wholly that value (its own ArrayBuffer) of at most
   * COPY_THRESHOLD bytes, within SMALL_BYTES; false otherwise. Only for a value nothing can read any more: the
   * caller (StorageServer.retire, for the memory tier) knows it left the engine and was never lent — a value
   * that small is copied into every answer that carries it (the writers copy up to COPY_THRESHOLD, a woken
   * WAIT's answer is encoded at once).
   */
  keepSmall(value: Buffer): boolean {
    const length = value.length;
    if (
      length === 0 ||
      length > COPY_THRESHOLD ||
      value.byteOffset !== 0 ||
      value.buffer.byteLength !== length ||
      this.smallBytes + length > SMALL_BYTES
    )
      return false;
    let list = this.small.get(length);
    if (list === undefined) this.small.set(length, (list = []));
    list.push(value);
    this.smallBytes += length;
    return true;
  }

  /** A buffer of exactly `size` bytes (a view of a pooled or new whole-unit ArrayBuffer). */
  allocate(size: number): Buffer {
    if (size < POOLED_MIN) return Buffer.allocUnsafe(size);
    const units = Math.ceil(size / UNIT);
    const recycled = this.free.get(units)?.pop();
    if (recycled !== undefined) {
      this.freeBytes -= recycled.byteLength;
      if (this.freeBytes < this.lowWater) this.lowWater = this.freeBytes;
      return Buffer.from(recycled, 0, size);
    }
    return Buffer.from(Buffer.allocUnsafeSlow(units * UNIT).buffer, 0, size);
  }

  /** Takes back the memory under `value` if the pool made it; a no-op otherwise. */
  release(value: Buffer): void {
    const backing = value.buffer;
    if (!(backing instanceof ArrayBuffer)) return;
    const bytes = backing.byteLength;
    if (bytes < POOLED_MIN || bytes % UNIT !== 0 || this.freeBytes + bytes > this.maxFreeBytes) return;
    const units = bytes / UNIT;
    let list = this.free.get(units);
    if (list === undefined) {
      list = [];
      this.free.set(units, list);
    }
    list.push(backing);
    this.freeBytes += bytes;
  }

  /**
   * Lets go of what sat in the pool unused since the last call (the server calls it every few seconds), so a
   * node whose load fell returns that memory. Returns the bytes let go of.
   */
  trim(): number {
    let excess = this.lowWater;
    let dropped = 0;
    for (const units of [...this.free.keys()].sort((a, b) => b - a)) {
      const list = this.free.get(units)!;
      while (excess > 0 && list.length > 0) {
        const bytes = list.pop()!.byteLength;
        excess -= bytes;
        dropped += bytes;
      }
      if (list.length === 0) this.free.delete(units);
    }
    this.freeBytes -= dropped;
    this.lowWater = this.freeBytes;
    return dropped;
  }

  get pooledBytes(): number {
    return this.freeBytes;
  }
}
