/**
 * INCRs this node applied recently, by the token the client gives each increment (the same on every retry of
 * it): a retry after a lost answer, a node that died between the primary's INCR and its replicas, or a
 * placement change gets the total the increment made instead of adding again. A replicated counter's replicas
 * learn the token with the new total (server.ts), so a replica that becomes the primary knows it too.
 *
 * Kept `INCREMENT_TTL_MS`, longer than a client retries one increment (its timeout, then as long again waiting
 * for a new placement); swept at most once per TTL, so a node holds about two TTLs' worth of increments.
 */
export const INCREMENT_TTL_MS = 30_000;

/** What an increment made: the counter's new total and its version's seq (the epoch is the request's). */
export interface Increment {
  key: string;
  total: number;
  seq: number;
}

interface Entry {
  /** Settled: what it made. Pending: the first attempt is still being applied (a disk engine). */
  result: Increment | Promise<Increment | null>;
  expiresAt: number;
}

export class RecentIncrements {
  private readonly byToken = new Map<string, Entry>();
  private nextSweep = 0;

  get size(): number {
    return this.byToken.size;
  }

  /** What the increment with this token made, or its attempt in progress; undefined for one not seen. */
  get(token: string, now = Date.now()): Increment | Promise<Increment | null> | undefined {
    const entry = this.byToken.get(token);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > now) return entry.result;
    this.byToken.delete(token);
    return undefined;
  }

  /**
   * Marks the increment as being applied; `settle` with what it made (null: it was refused, and a retry may try
   * again) ends it.
   */
  begin(token: string): (made: Increment | null) => void {
    let resolve!: (made: Increment | null) => void;
    const entry: Entry = { result: new Promise((r) => (resolve = r)), expiresAt: Date.now() + INCREMENT_TTL_MS };
    this.put(token, entry);
    return (made) => {
      if (made === null) {
        if (this.byToken.get(token) === entry) this.byToken.delete(token);
      } else entry.result = made;
      resolve(made);
    };
  }

  /** Records an increment applied elsewhere (a replica's copy of the primary's). */
  record(token: string, made: Increment): void {
    this.put(token, { result: made, expiresAt: Date.now() + INCREMENT_TTL_MS });
  }

  private put(token: string, entry: Entry): void {
    const now = Date.now();
    if (now >= this.nextSweep) {
      this.nextSweep = now + INCREMENT_TTL_MS;
      for (const [t, e] of this.byToken) if (e.expiresAt <= now) this.byToken.delete(t);
    }
    this.byToken.delete(token);
    this.byToken.set(token, entry);
  }
}
