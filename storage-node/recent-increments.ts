import { type CopiedIncrement, MAX_COPIED_INCREMENTS } from '../proto/index.ts';
import { ExpiringMap } from './expiring-map.ts';

/**
 * INCRs this node applied recently, by the token the client gives each increment (the same on every retry of
 * it): a retry after a lost answer, a node that died between the primary's INCR and its replicas, or a
 * placement change gets the total the increment made instead of adding again. A replicated counter's replicas
 * learn the token with the new total (session.ts), so a replica that becomes the primary knows it too; a copy
 * of the counter (a restoration, a drain, a client bringing it forward) carries the key's tokens with it
 * (Flag.INCREMENTS), so the node it lands on does as well.
 *
 * Kept `INCREMENT_TTL_MS`, longer than a client retries one increment (its timeout, then as long again waiting
 * for a new placement).
 */
export const INCREMENT_TTL_MS = 30_000;

/** What an increment made: the counter's new total and its version. */
export interface Increment {
  key: string;
  total: number;
  epoch: number;
  seq: number;
}

/** Settled: what it made. Pending: the first attempt is still being applied (a disk engine). */
type Entry = Increment | Promise<Increment | null>;

export class RecentIncrements {
  /** By `job/token in hex`: one job's token never answers with another job's total. */
  private readonly byToken = new ExpiringMap<Entry>(INCREMENT_TTL_MS);
  /** Each key's tokens, oldest first, by `job NUL key`: what a copy of the key carries. */
  private readonly byKey = new ExpiringMap<string[]>(INCREMENT_TTL_MS);

  get size(): number {
    return this.byToken.size;
  }

  /** What the increment with this token made, or its attempt in progress; undefined for one not seen. */
  get(jobId: string, token: string): Entry | undefined {
    return this.byToken.get(`${jobId}/${token}`);
  }

  /**
   * Marks the increment as being applied; the function returned ends it with what it made (null: it was refused,
   * and a retry may try again).
   */
  begin(jobId: string, token: string, key: string): (made: Increment | null) => void {
    const id = `${jobId}/${token}`;
    let resolve!: (made: Increment | null) => void;
    const pending: Entry = new Promise((r) => (resolve = r));
    this.byToken.set(id, pending);
    this.index(jobId, key, id);
    return (made) => {
      if (this.byToken.get(id) === pending) {
        if (made === null) this.byToken.delete(id);
        else this.byToken.set(id, made);
      }
      resolve(made);
    };
  }

  /** Records an increment applied elsewhere (a replica's copy of the primary's). */
  record(jobId: string, token: string, made: Increment): void {
    const id = `${jobId}/${token}`;
    const known = this.byToken.get(id) !== undefined;
    this.byToken.set(id, made);
    if (!known) this.index(jobId, made.key, id);
  }

  /** Records the increments a copy of `key` carried, but for those this node knows already (its own are exact). */
  recordCopied(jobId: string, key: string, increments: readonly CopiedIncrement[]): void {
    for (const { token, total, epoch, seq } of increments) {
      if (this.get(jobId, token) === undefined) this.record(jobId, token, { key, total, epoch, seq });
    }
  }

  /** The settled increments of `key`, oldest first, for a copy of it to carry. */
  forKey(jobId: string, key: string): CopiedIncrement[] {
    const tokens = this.byKey.get(`${jobId}\0${key}`);
    if (tokens === undefined) return [];
    const copied: CopiedIncrement[] = [];
    for (const id of tokens) {
      const made = this.byToken.get(id);
      if (made === undefined || made instanceof Promise || made.key !== key) continue;
      copied.push({ token: id.slice(jobId.length + 1), total: made.total, epoch: made.epoch, seq: made.seq });
    }
    return copied;
  }

  private index(jobId: string, key: string, id: string): void {
    const at = `${jobId}\0${key}`;
    const tokens = this.byKey.get(at) ?? [];
    // The oldest go once expired, or past what one copy carries.
    while (tokens.length > 0 && (tokens.length >= MAX_COPIED_INCREMENTS || this.byToken.get(tokens[0]!) === undefined)) tokens.shift();
    tokens.push(id);
    this.byKey.set(at, tokens);
  }
}
