/**
 * A set of strings kept in JavaScript string order (UTF-16 code units, LIST's order), for the DRAM engine's
 * LIST: a list of sorted chunks of at most 2 × LOAD keys, with each chunk's last key in `lasts` (the layout of
 * Python's sortedcontainers). Adding or removing a key is two binary searches and a splice of one chunk
 * (O(log n + LOAD)); a page of a listing is a binary search and then a walk (O(log n + page)).
 *
 * Before, the engine kept a sorted array it threw away on every new or deleted key and sorted afresh on the next
 * LIST: a LIST after a PUT sorted every key of the job, 0.6–0.9 s of blocked event loop at 500k keys here.
 * A balanced tree would do too; chunks keep the keys in flat arrays (8 bytes a key, no node objects) and the
 * splices are memmoves, which is what makes this shape faster than trees in JavaScript.
 */
const LOAD = 512;

export class SortedKeys {
  private chunks: string[][] = [];
  /** The last (largest) key of each chunk. */
  private lasts: string[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds `key`; false when it was there already. */
  add(key: string): boolean {
    const lasts = this.lasts;
    if (lasts.length === 0) {
      this.chunks.push([key]);
      lasts.push(key);
      this.count = 1;
      return true;
    }
    let c = lowerBound(lasts, key);
    // Past every chunk's last key: it goes at the end of the last chunk.
    if (c === lasts.length) c--;
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, key);
    if (i < chunk.length && chunk[i] === key) return false;
    chunk.splice(i, 0, key);
    if (i === chunk.length - 1) lasts[c] = key;
    this.count++;
    if (chunk.length > 2 * LOAD) {
      const upper = chunk.splice(LOAD);
      this.chunks.splice(c + 1, 0, upper);
      lasts.splice(c, 0, chunk[chunk.length - 1]!);
    }
    return true;
  }

  /** Removes `key`; false when it was not there. */
  delete(key: string): boolean {
    const lasts = this.lasts;
    const c = lowerBound(lasts, key);
    if (c === lasts.length) return false;
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, key);
    if (i === chunk.length || chunk[i] !== key) return false;
    chunk.splice(i, 1);
    this.count--;
    if (chunk.length === 0) {
      this.chunks.splice(c, 1);
      lasts.splice(c, 1);
      return true;
    }
    if (i === chunk.length) lasts[c] = chunk[i - 1]!;
    // A chunk run down by deletes joins a neighbour, so the chunk list stays about n / LOAD long.
    if (chunk.length < LOAD / 2 && this.chunks.length > 1) {
      const left = c > 0 ? c - 1 : c;
      const a = this.chunks[left]!;
      const b = this.chunks[left + 1]!;
      if (a.length + b.length <= 2 * LOAD) {
        for (const k of b) a.push(k);
        this.chunks.splice(left + 1, 1);
        lasts.splice(left, 1);
      }
    }
    return true;
  }

  has(key: string): boolean {
    const c = lowerBound(this.lasts, key);
    if (c === this.lasts.length) return false;
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, key);
    return i < chunk.length && chunk[i] === key;
  }

  /**
   * Up to `limit` keys that start with `prefix` and sort after `after` (from the first such key when `after` is
   * not past `prefix`), in order; `more` when another such key follows.
   */
  page(prefix: string, after: string, limit: number): { keys: string[]; more: boolean } {
    const keys: string[] = [];
    const cursor = this.cursor(prefix, after);
    for (let key = cursor.key(); key?.startsWith(prefix); key = cursor.next()) {
      if (keys.length === limit) return { keys, more: true };
      keys.push(key);
    }
    return { keys, more: false };
  }

  /** A cursor on the first key that starts with `prefix` and sorts after `after` (as `page`). */
  cursor(prefix: string, after: string): SortedKeysCursor {
    const from = after > prefix ? after : prefix;
    const c = lowerBound(this.lasts, from);
    const chunk = this.chunks[c];
    const cursor = new SortedKeysCursor(this.chunks, c, chunk === undefined ? 0 : lowerBound(chunk, from));
    if (cursor.key() === after) cursor.next();
    return cursor;
  }

  *[Symbol.iterator](): IterableIterator<string> {
    for (const chunk of this.chunks) yield* chunk;
  }
}

/** A position in a SortedKeys; valid until the set changes (a LIST page is made in one synchronous step). */
export class SortedKeysCursor {
  constructor(
    private readonly chunks: readonly string[][],
    private c: number,
    private i: number,
  ) {}

  /** The key under the cursor; undefined past the end. */
  key(): string | undefined {
    return this.chunks[this.c]?.[this.i];
  }

  /** Moves to the next key and returns it. */
  next(): string | undefined {
    const chunk = this.chunks[this.c];
    if (chunk === undefined) return undefined;
    if (++this.i >= chunk.length) {
      this.c++;
      this.i = 0;
    }
    return this.key();
  }
}

/** First index whose key is ≥ `target`. */
function lowerBound(sorted: readonly string[], target: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
