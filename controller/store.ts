import { setTimeout as sleep } from 'node:timers/promises';
import { Level } from 'level';
import { Journal, type JournalEntry } from './journal.ts';
import type { JobRecord, NodeRecord } from './registry.ts';
import type { TenantRecord } from './tenants.ts';

/**
 * The controller's durable state: tenants (their keys' hashes and limits), jobs (with tokens derivable from the
 * secret, reservations and placements), nodes and metadata servers, in LevelDB under the controller's state
 * folder. Written through on every change, read once at start, so a restarted controller knows everything it knew.
 *
 * Job records, written on every registration, deregistration and placement change, go through a journal
 * (journal.ts): durable when `putJob` or `deleteJob` returns, then applied to LevelDB in order, in batches, one
 * at a time (LevelDB's own puts run on libuv's thread pool in no set order). At open, what the journal holds is
 * applied again: LevelDB holds some prefix of it, and replaying the whole gives every key its last write.
 */
/**
 * Job writes wait this long in the journal before LevelDB gets them, as one batch: LevelDB's work (a thread-pool
 * thread, then the event loop woken) no longer lands on the registration's reply. Register p50 0.05–0.15 ms lower
 * on a busy 2-core machine (three runs of each); the journal makes them durable meanwhile.
 */
const APPLY_AFTER_MS = 20;

export class ControllerStore {
  /** Journaled job writes not yet handed to LevelDB. */
  private queue: JournalEntry[] = [];
  private writing: Promise<void> | null = null;
  private closing = false;

  private constructor(
    private readonly db: Level<string, string>,
    private readonly journal: Journal,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** `onError`: a batch LevelDB refused (tried again every second; the journal keeps the writes meanwhile). */
  static async open(path: string, onError: (error: unknown) => void = () => {}): Promise<ControllerStore> {
    // A few MB of records, read once at start: LevelDB's 4 MiB write buffer and 8 MiB block cache are sized
    // for far more. With them the controller's RSS rose ~0.8 MB a minute under job churn (the memtable
    // filling, in the arenas of libuv's threads) until a flush minutes later.
    const db = new Level<string, string>(path, { valueEncoding: 'utf8', writeBufferSize: 256 * 1024, cacheSize: 1024 * 1024 });
    await db.open();
    const journal = Journal.open(`${path}.journal`);
    try {
      const replay = journal.entries();
      if (replay.length > 0) await db.batch(replay.map(batchOp));
      journal.clear();
    } catch (error) {
      journal.close();
      await db.close();
      throw error;
    }
    return new ControllerStore(db, journal, onError);
  }

  async load(): Promise<{ jobs: JobRecord[]; nodes: NodeRecord[]; metadata: string[]; tenants: TenantRecord[] }> {
    const tenants: TenantRecord[] = [];
    const jobs: JobRecord[] = [];
    const nodes: NodeRecord[] = [];
    const metadata: string[] = [];
    for await (const [key, value] of this.db.iterator()) {
      if (key.startsWith('job/')) jobs.push(JSON.parse(value) as JobRecord);
      else if (key.startsWith('node/')) nodes.push(JSON.parse(value) as NodeRecord);
      else if (key.startsWith('metadata/')) metadata.push(key.slice('metadata/'.length));
      else if (key.startsWith('tenant/')) tenants.push(JSON.parse(value) as TenantRecord);
    }
    return { jobs, nodes, metadata, tenants };
  }

  /** Durable when it returns (resolved at once); rejects when the journal could not be written. */
  putJob(job: JobRecord): Promise<void> {
    return this.journaled({ key: `job/${job.id}`, value: JSON.stringify(job) });
  }

  deleteJob(id: string): Promise<void> {
    return this.journaled({ key: `job/${id}`, value: null });
  }

  putNode(node: NodeRecord): Promise<void> {
    return this.db.put(`node/${node.id}`, JSON.stringify(node));
  }

  deleteNode(id: string): Promise<void> {
    return this.db.del(`node/${id}`);
  }

  putTenant(tenant: TenantRecord): Promise<void> {
    return this.db.put(`tenant/${tenant.name}`, JSON.stringify(tenant));
  }

  deleteTenant(name: string): Promise<void> {
    return this.db.del(`tenant/${name}`);
  }

  putMetadata(address: string): Promise<void> {
    return this.db.put(`metadata/${address}`, '1');
  }

  /** Waits for the journal's writes to reach LevelDB (what is left is replayed at the next open), then closes. */
  async close(): Promise<void> {
    this.closing = true;
    await this.writing;
    this.journal.close();
    await this.db.close();
  }

  private journaled(entry: JournalEntry): Promise<void> {
    if (this.closing) return Promise.reject(new Error('the controller store is closed'));
    try {
      this.journal.append(entry);
    } catch (error) {
      return Promise.reject(error);
    }
    this.queue.push(entry);
    this.writing ??= this.apply();
    return Promise.resolve();
  }

  /**
   * Hands the queue to LevelDB a batch at a time, in order, until it is empty. After each batch LevelDB has every
   * write journaled but those queued since (in this same turn: nothing is appended in between), so the journal
   * may be emptied, or cut down to them.
   */
  private async apply(): Promise<void> {
    await sleep(APPLY_AFTER_MS);
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.db.batch(batch.map(batchOp));
      } catch (error) {
        this.queue = batch.concat(this.queue);
        if (this.closing) return; // left in the journal
        this.onError(error);
        await sleep(1_000);
        continue;
      }
      if (this.closing) continue;
      try {
        this.journal.applied(this.queue);
      } catch (error) {
        this.onError(error); // it keeps growing, and is replayed whole: nothing lost
      }
    }
    this.writing = null;
  }
}

function batchOp(entry: JournalEntry): { type: 'put'; key: string; value: string } | { type: 'del'; key: string } {
  return entry.value === null ? { type: 'del', key: entry.key } : { type: 'put', key: entry.key, value: entry.value };
}
