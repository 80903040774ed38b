// Group commit of the index's writes: every put and delete asked for in one event-loop turn goes to LevelDB as
// one batch, and while a batch is being written the next ones gather behind it. Concurrent writers to different
// keys then cost one LevelDB write between them, not one each.

export type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/** What batches are written to (LevelDB's `batch`). */
export interface BatchTarget {
  batch(ops: BatchOp[]): Promise<void>;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class GroupCommit {
  private ops: BatchOp[] = [];
  private waiters: Waiter[] = [];
  private scheduled = false;
  private running = false;

  constructor(private readonly target: BatchTarget) {}

  /** Resolves once the batch holding `op` is written; rejects with that batch's failure (every op of it does). */
  write(op: BatchOp): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ops.push(op);
      this.waiters.push({ resolve, reject });
      if (!this.running && !this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = async (): Promise<void> => {
    this.scheduled = false;
    this.running = true;
    while (this.ops.length > 0) {
      const ops = this.ops;
      const waiters = this.waiters;
      this.ops = [];
      this.waiters = [];
      try {
        await this.target.batch(ops);
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        for (const waiter of waiters) waiter.reject(error);
      }
    }
    this.running = false;
  };
}
