import { ExpiringMap } from './expiring-map.ts';

/**
 * INCRs this node applied recently, by the token the client gives each increment (the same on every retry of
 * it): a retry after a lost answer, a node that died between the primary's INCR and its replicas, or a
 * placement change gets the total the increment made instead of adding again. A replicated counter's replicas
 * learn the token with the new total (session.ts), so a replica that becomes the primary knows it too.
 *
 * Kept `INCREMENT_TTL_MS`, longer than a client retries one increment (its timeout, then as long again waiting
 * for a new placement).
 */
export const INCREMENT_TTL_MS = 30_000;

/** What an increment made: the counter's new total and its version's seq (the epoch is the request's). */
export interface Increment {
  key: string;
  total: number;
  seq: number;
}

/** Settled: what it made. Pending: the first attempt is still being applied (a disk engine). */
type Entry = Increment | Promise<Increment | null>;

export class RecentIncrements {
  private readonly byToken = new ExpiringMap<Entry>(INCREMENT_TTL_MS);

  get size(): number {
    return this.byToken.size;
  }

  /** What the increment with this token made, or its attempt in progress; undefined for one not seen. */
  get(token: string): Entry | undefined {
    return this.byToken.get(token);
  }

  /**
   * Marks the increment as being applied; the function returned ends it with what it made (null: it was refused,
   * and a retry may try again).
   */
  begin(token: string): (made: Increment | null) => void {
    let resolve!: (made: Increment | null) => void;
    const pending: Entry = new Promise((r) => (resolve = r));
    this.byToken.set(token, pending);
    return (made) => {
      if (this.byToken.get(token) === pending) {
        if (made === null) this.byToken.delete(token);
        else this.byToken.set(token, made);
      }
      resolve(made);
    };
  }

  /** Records an increment applied elsewhere (a replica's copy of the primary's). */
  record(token: string, made: Increment): void {
    this.byToken.set(token, made);
  }
}
