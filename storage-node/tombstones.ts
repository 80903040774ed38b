import { TOMBSTONE_TTL_MS } from './engine.ts';
import { ExpiringMap } from './expiring-map.ts';

/** A deleted key's last version. */
export interface Tombstone {
  epoch: number;
  seq: number;
}

/**
 * One job's tombstones on one node (engine.ts "Tombstones"): deleted keys' versions, so a replica or copy of an
 * older write arriving after the delete is left alone. Each is kept `TOMBSTONE_TTL_MS`.
 */
export class Tombstones extends ExpiringMap<Tombstone> {
  constructor() {
    super(TOMBSTONE_TTL_MS);
  }
}
