import { TOMBSTONE_TTL_MS } from './engine.ts';

/** A deleted key's last version, remembered until `expiresAt` (ms since 1970). */
export interface Tombstone {
  epoch: number;
  seq: number;
  expiresAt: number;
}

/**
 * One job's tombstones on one node (engine.ts "Tombstones"): deleted keys' versions, so a replica or copy of an
 * older write arriving after the delete is left alone. Each is kept `TOMBSTONE_TTL_MS`; expired ones are swept
 * at most once per TTL, on the next `set`, so a job that deletes much holds at most about two TTLs' worth.
 */
export class Tombstones {
  private readonly byKey = new Map<string, Tombstone>();
  private nextSweep = 0;

  get size(): number {
    return this.byKey.size;
  }

  /** The version `key` held when deleted, unless that was longer ago than the TTL. */
  get(key: string, now = Date.now()): Tombstone | undefined {
    const tombstone = this.byKey.get(key);
    if (tombstone === undefined) return undefined;
    if (tombstone.expiresAt > now) return tombstone;
    this.byKey.delete(key);
    return undefined;
  }

  set(key: string, epoch: number, seq: number, now = Date.now()): void {
    if (now >= this.nextSweep) {
      this.nextSweep = now + TOMBSTONE_TTL_MS;
      for (const [k, t] of this.byKey) if (t.expiresAt <= now) this.byKey.delete(k);
    }
    // Re-inserted, so the map stays in expiry order for the sweep's early keys.
    this.byKey.delete(key);
    this.byKey.set(key, { epoch, seq, expiresAt: now + TOMBSTONE_TTL_MS });
  }

  /** A write stored a value under `key`: its version supersedes the tombstone. */
  delete(key: string): void {
    this.byKey.delete(key);
  }
}
