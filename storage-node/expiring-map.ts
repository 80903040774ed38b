/**
 * A map whose entries expire `ttlMs` after they were set: tombstones and recent increments keep what they need
 * for a bounded time without a timer per entry. Expired entries are swept at most once per TTL, on a `set`, so
 * the map holds about two TTLs' worth of entries at most; a `get` of an expired one forgets it at once.
 */
export class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private nextSweep = 0;

  constructor(readonly ttlMs: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string, now = Date.now()): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > now) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  set(key: string, value: V, now = Date.now()): void {
    if (now >= this.nextSweep) {
      this.nextSweep = now + this.ttlMs;
      for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    }
    // Re-inserted, so the map stays in expiry order.
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: now + this.ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}
