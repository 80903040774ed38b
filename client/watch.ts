/**
 * `job.watch(prefix)`: puts and deletes under a prefix, from every node of the job, as an async iterator. One
 * WATCH request parked on each node (proto/README.md); the nodes push an EVENT frame per change. When the job's
 * placement changes a node says so (PLACEMENT), and the watch joins the nodes it does not cover yet; on a node
 * it joins late it lists the prefix, so a key written there in between is reported (as a put) rather than lost.
 */

import type { NodeConnection, Reply } from '../proto/index.ts';
import { WatchEvent as Event, errorCodeOf, Op, type PlacementNode, SatchelError, Status } from '../proto/index.ts';
import { CLIENT_DEFAULTS, WATCH_RETRY } from './defaults.ts';
import type { WatchHost } from './routing.ts';

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
}

export interface WatchOptions {
  /** Events held for a reader that is behind; past this the watch fails with FULL (default 100,000). */
  maxBuffered?: number;
}

interface Subscription {
  readonly node: PlacementNode;
  readonly connection: NodeConnection;
  id: number;
}

export class Watch implements AsyncIterableIterator<WatchEvent> {
  /** Registered on every node of the job's placement as it was when the watch started. */
  readonly ready: Promise<void>;
  private readonly subscriptions = new Map<string, Subscription>();
  private queue: WatchEvent[] = [];
  private head = 0;
  private wake: (() => void) | null = null;
  private failure: SatchelError | null = null;
  private closed = false;
  private syncing: Promise<void> | null = null;
  private resyncAgain = false;
  /** Attempts to subscribe again that failed in a row (the backoff grows with them). */
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Why the last subscription ended, for a watch that cannot start. */
  private lastError: SatchelError | null = null;
  private readonly maxBuffered: number;

  /** @internal Use `job.watch(prefix)`. */
  constructor(
    private readonly host: WatchHost,
    readonly prefix: string,
    options: WatchOptions,
    private readonly onClose: () => void,
  ) {
    this.maxBuffered = options.maxBuffered ?? CLIENT_DEFAULTS.watchMaxBuffered;
    this.ready = this.sync(false);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<WatchEvent, undefined>> {
    for (;;) {
      if (this.head < this.queue.length) {
        const value = this.queue[this.head++]!;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        return { value, done: false };
      }
      if (this.failure !== null) throw this.failure;
      if (this.closed) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Leaving a for-await loop closes the watch. */
  async return(): Promise<IteratorResult<WatchEvent, undefined>> {
    await this.close();
    return { value: undefined, done: true };
  }

  /** Cancels the watch on every node. Events not read yet are dropped. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    for (const sub of this.subscriptions.values()) sub.connection.cancel(sub.id);
    this.subscriptions.clear();
    this.queue = [];
    this.head = 0;
    this.onClose();
    this.notify();
  }

  /** Events read from the nodes and not yet taken by the reader. */
  get buffered(): number {
    return this.queue.length - this.head;
  }

  private push(event: WatchEvent): void {
    if (this.closed || this.failure !== null) return;
    if (this.buffered >= this.maxBuffered) {
      return this.fail(new SatchelError('FULL', `watch on ${JSON.stringify(this.prefix)} fell behind: ${this.maxBuffered} events unread`));
    }
    this.queue.push(event);
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** The watch ends with `error`, after the events before it are read. */
  private fail(error: SatchelError): void {
    if (this.failure !== null || this.closed) return;
    this.failure = error;
    for (const sub of this.subscriptions.values()) sub.connection.cancel(sub.id);
    this.subscriptions.clear();
    this.onClose();
    this.notify();
  }

  /**
   * Subscribes to every node of the current placement not covered yet (with `catchUp`, listing the prefix
   * there), and cancels on nodes that left it. Runs one at a time; a request while running runs it again after.
   */
  private sync(catchUp: boolean): Promise<void> {
    if (this.syncing !== null) {
      this.resyncAgain = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.resyncAgain = false;
          const nodes = this.host.everyNode();
          const wanted = new Set(nodes.map((node) => node.id));
          for (const [id, sub] of this.subscriptions) {
            if (wanted.has(id)) continue;
            this.subscriptions.delete(id);
            sub.connection.cancel(sub.id);
          }
          await Promise.all(nodes.filter((node) => !this.subscriptions.has(node.id)).map((node) => this.subscribe(node, catchUp)));
          catchUp = true;
        } while (this.resyncAgain && !this.closed);
      } finally {
        this.syncing = null;
      }
    })();
    return this.syncing;
  }

  /**
   * Refreshes the placement (to `epoch` at least: a node's PLACEMENT says which, and the metadata servers may not
   * have it yet), then syncs; retried with backoff (WATCH_RETRY) unless the job is gone or the handle closed.
   */
  private resync(epoch = 0): void {
    if (this.closed || this.failure !== null) return;
    void (async () => {
      try {
        await this.host.refreshPlacement(epoch);
        await this.sync(true);
        this.failures = 0;
      } catch (error) {
        if (error instanceof SatchelError && !WATCH_RETRY.retries(error)) this.fail(error);
        else this.retryLater();
      }
    })();
  }

  private retryLater(): void {
    if (this.closed || this.failure !== null || this.retryTimer !== null) return;
    const delay = WATCH_RETRY.delay(++this.failures);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.resync();
    }, delay);
  }

  private async subscribe(node: PlacementNode, catchUp: boolean): Promise<void> {
    if (this.closed) return;
    const connection = this.host.connectionTo(node);
    let started!: () => void;
    const registered = new Promise<void>((resolve) => (started = resolve));
    const sub: Subscription = { node, connection, id: 0 };
    const parked = connection.park(
      { op: Op.WATCH, epoch: this.host.epoch, key: this.prefix },
      {
        onEvent: (kind, key, epoch) => {
          if (this.subscriptions.get(node.id) !== sub) return;
          if (kind === Event.STARTED) started();
          else if (kind === Event.PUT) {
            if (this.host.isPrimary(node.id, key)) this.push({ type: 'put', key });
          } else if (kind === Event.DELETE) {
            if (this.host.isPrimary(node.id, key)) this.push({ type: 'delete', key });
          } else if (kind === Event.PLACEMENT) this.resync(epoch);
        },
      },
    );
    sub.id = parked.id;
    this.subscriptions.set(node.id, sub);
    const ended = parked.reply.then(
      (reply) => this.ended(sub, reply),
      (error: unknown) => this.lost(sub, error),
    );
    // Registered, or ended before it was (the node refused it, or could not be reached).
    await Promise.race([registered, ended]);
    if (this.subscriptions.get(node.id) !== sub) {
      if (!catchUp && this.failure === null && !this.closed)
        throw this.lastError ?? new SatchelError('UNAVAILABLE', `could not watch on node ${node.id}`);
      return;
    }
    if (catchUp) await this.catchUp(node);
  }

  /** Keys already on a node the watch joins late: reported as puts, since they may have landed unseen. */
  private async catchUp(node: PlacementNode): Promise<void> {
    let after = '';
    for (;;) {
      const page = await this.host.listPage(node, this.prefix, after, CLIENT_DEFAULTS.maxListPageSize);
      for (const key of page.keys) if (this.host.isPrimary(node.id, key)) this.push({ type: 'put', key });
      if (!page.more || page.keys.length === 0 || this.closed) return;
      after = page.keys[page.keys.length - 1]!;
    }
  }

  /** The node ended a subscription: cancelled (ours), the job moved off it, or the job is gone. */
  private ended(sub: Subscription, reply: Reply): void {
    if (this.subscriptions.get(sub.node.id) !== sub) return;
    this.subscriptions.delete(sub.node.id);
    if (reply.status === Status.OK) return;
    if (reply.status === Status.STALE) return this.resync();
    const error = new SatchelError(
      errorCodeOf(reply.status),
      reply.message || `watch on node ${sub.node.id} ended with status ${reply.status}`,
    );
    this.lastError = error;
    if (!WATCH_RETRY.retries(error)) return this.fail(error);
    this.retryLater();
  }

  /** The connection to a node was lost: try again once the placement says where to look. */
  private lost(sub: Subscription, error: unknown): void {
    if (this.subscriptions.get(sub.node.id) !== sub) return;
    this.subscriptions.delete(sub.node.id);
    this.lastError = error instanceof SatchelError ? error : new SatchelError('UNAVAILABLE', String(error));
    if (this.closed) return;
    this.retryLater();
  }
}
