// Per-key write locks: writes to one key (PUT, UPDATE, DELETE, compaction moving its record) run one at a time in
// the order they were queued, writes to different keys concurrently. Queuing happens in the caller's own turn,
// so a GET issued right after a write can find that write (`pending`) and wait for it.

/**
 * A place in a key's queue: `previous` is what to await before the lock is held (undefined: it is held at once);
 * calling it releases the lock once held. A place given up before it was reached goes through `abandon`.
 */
export type KeyLock = (() => void) & { previous?: Promise<void> };

export class KeyLocks {
  /** Each key's last queued write, resolved when it releases; removed once the queue empties. */
  private readonly tails = new Map<string, Promise<void>>();

  /** Queues for `key`'s lock now, behind every write queued before. */
  lock(key: string): KeyLock {
    const previous = this.tails.get(key);
    let resolve!: () => void;
    const mine = new Promise<void>((r) => (resolve = r));
    this.tails.set(key, mine);
    const release = (() => {
      if (this.tails.get(key) === mine) this.tails.delete(key);
      resolve();
    }) as KeyLock;
    release.previous = previous;
    return release;
  }

  /**
   * Gives up a place not reached yet (its write was refused before it got there): it releases when its turn
   * comes. Releasing it at once would let the next write in while the one ahead still holds the key.
   */
  abandon(lock: KeyLock): void {
    if (lock.previous === undefined) lock();
    else void lock.previous.then(lock);
  }

  /** Resolves when every write queued on `key` so far has released; undefined when none is queued. */
  pending(key: string): Promise<void> | undefined {
    return this.tails.get(key);
  }

  /** Keys with a write queued or running. */
  get size(): number {
    return this.tails.size;
  }
}
