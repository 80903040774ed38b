/**
 * `Job`, the handle a function holds: the public API, over one module per concern — routing.ts (placement,
 * connections, STALE/FULL/NOT_FOUND), replicas.ts (copies), blocks.ts (large values), coordination.ts (waitFor,
 * incr, barrier, watch), batches.ts (putMany/getMany), list.ts (list). PUT and GET stay here: their common case is
 * one request and one promise, with nothing between the caller and the router.
 */
import { decodeManifest, Flag, Op, type Reply, SatchelError, Status, type WirePlacement } from '../proto/index.ts';
import { Batches } from './batches.ts';
import { Blocks } from './blocks.ts';
import { Coordination } from './coordination.ts';
import { MAX_ATTEMPTS } from './defaults.ts';
import { listKeys } from './list.ts';
import { type BatchOptions, checkKey, type JobOptions, type ListOptions, toBytes, type WaitOptions } from './options.ts';
import { expectOk } from './replies.ts';
import { openRouter, Router } from './routing.ts';
import type { Watch, WatchOptions } from './watch.ts';

export type { BatchOptions, JobOptions, ListOptions, WaitOptions } from './options.ts';

export interface Stat {
  key: string;
  size: number;
  /** Blocks the value is split into (1 for a value stored whole). */
  blocks: number;
}

/**
 * A job as a function sees it: put/get/stat/delete/list against the job's storage nodes, one round trip
 * each (the placement is fetched once from a metadata server and cached; a STALE answer refreshes it).
 */
export class Job {
  /** @internal The job's placement and connections; RegisteredJob's renewals and deregistration use it too. */
  protected readonly router: Router;
  private readonly blocks: Blocks;
  private readonly coordination: Coordination;
  private readonly batches: Batches;

  /** @internal Use Satchel.attach(ticket) or Satchel#registerJob. */
  constructor(router: Router) {
    // The published typings do not show this constructor (stripInternal), so plain JavaScript may still call it.
    if (!(router instanceof Router))
      throw new SatchelError('BAD_REQUEST', 'a Job comes from Satchel.attach(ticket) or Satchel#registerJob');
    this.router = router;
    this.blocks = new Blocks(router);
    this.coordination = new Coordination(router, this.blocks, this);
    this.batches = new Batches(router, this);
  }

  /** @internal Decodes the ticket and fetches the placement unless given; `this` picks the handle class. */
  static async open<T extends Job>(
    this: new (
      router: Router,
    ) => T,
    ticket: string,
    options?: JobOptions,
    known?: WirePlacement,
  ): Promise<T> {
    return new this(await openRouter(ticket, options, known));
  }

  get id(): string {
    return this.router.jobId;
  }

  /** What a function needs to open this job (`Satchel.attach`): the freshest this handle has. */
  get ticket(): string {
    return this.router.ticket;
  }

  /**
   * The job as a Redis Cluster: `redis://<job id>:<token>@host:port` (`rediss://` under TLS) of one of its
   * nodes' RESP front doors, for redis-cli, redis-py, ioredis, go-redis… Its token is the ticket's, and expires
   * with it. Null when the job's nodes have no RESP front door.
   */
  get redisUrl(): string | null {
    return this.router.redisUrl;
  }

  /** The placement epoch this client is using. */
  get epoch(): number {
    return this.router.placement.epoch;
  }

  /** Stores `value` under `key`, replacing any value there. */
  put(key: string, value: Uint8Array | string): Promise<void> {
    const router = this.router;
    let bytes: Uint8Array;
    try {
      checkKey(key);
      bytes = toBytes(value);
      router.checkOpen();
      if (bytes.length > router.placement.maxValueBytes) {
        throw new SatchelError('TOO_LARGE', `value of ${bytes.length} bytes exceeds the job's limit of ${router.placement.maxValueBytes}`);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (bytes.length > router.placement.blockSize) return this.blocks.put(key, bytes);
    // Hot path: no async frames of our own, one promise beyond the request's (see perf/RESULTS.md).
    const epoch = router.placement.epoch;
    const deadline = Date.now() + router.timeoutMs; // the whole call's (deadline.ts)
    return router.route(Op.PUT, 0, key, bytes, null, deadline).then(
      (reply) => (reply.status === Status.OK && reply.flags === 0 ? undefined : this.finishPut(key, bytes, reply, deadline)),
      (error: unknown) => router.afterUnreachable(error, epoch, deadline).then(() => this.finishPut(key, bytes, null, deadline)),
    );
  }

  /** The value under `key`, or null when there is none. */
  get(key: string): Promise<Buffer | null> {
    const router = this.router;
    try {
      checkKey(key);
      router.checkOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    const epoch = router.placement.epoch;
    const deadline = Date.now() + router.timeoutMs; // the whole call's (deadline.ts)
    return router.route(Op.GET, 0, key, null, null, deadline).then(
      (reply) => {
        if (reply.status === Status.OK && (reply.flags & Flag.MANIFEST) === 0) return reply.body;
        // Absent, by the only generation of the placement the request went out with.
        if (reply.status === Status.NOT_FOUND && router.placement.epoch === epoch && router.placement.generations.length === 1) return null;
        return this.finishGet(key, reply, deadline);
      },
      (error: unknown) => router.afterUnreachable(error, epoch, deadline).then(() => this.finishGet(key, null, deadline)),
    );
  }

  /** PUT's uncommon endings: placement changed (STALE), more room needed (FULL), an error, or a large value replaced. */
  private async finishPut(key: string, bytes: Uint8Array, reply: Reply | null, deadline: number): Promise<void> {
    if (reply === null || reply.status === Status.STALE || reply.status === Status.FULL)
      reply = await this.router.call(Op.PUT, 0, key, bytes, null, deadline);
    return this.blocks.afterReplace(key, reply);
  }

  /** GET's uncommon endings: STALE, an error, or a manifest whose blocks must be fetched. */
  private async finishGet(key: string, reply: Reply | null, deadline: number): Promise<Buffer | null> {
    for (let attempt = 1; ; attempt++) {
      // No answer yet, the placement changed, or the key may sit in an older generation: `call` handles all.
      // (A large value's blocks are calls of their own, each with its own time.)
      if (reply === null || reply.status === Status.STALE || reply.status === Status.NOT_FOUND)
        reply = await this.router.call(Op.GET, 0, key, null, null, attempt === 1 ? deadline : undefined);
      if (reply.status === Status.NOT_FOUND) return null;
      expectOk(reply);
      if ((reply.flags & Flag.MANIFEST) === 0) return reply.body;
      const value = await this.blocks.read(key, reply);
      if (value !== null) return value;
      // A block vanished: the value was overwritten while we read it. Read the new one.
      if (attempt >= MAX_ATTEMPTS) throw new SatchelError('UNAVAILABLE', `value of ${key} kept changing while being read`);
      reply = await this.router.call(Op.GET, 0, key, null);
    }
  }

  /** Size of the value under `key`, or null when there is none; does not move the value. */
  async stat(key: string): Promise<Stat | null> {
    checkKey(key);
    this.router.checkOpen();
    const reply = await this.router.call(Op.STAT, 0, key, null);
    if (reply.status === Status.NOT_FOUND) return null;
    expectOk(reply);
    if ((reply.flags & Flag.MANIFEST) === 0) return { key, size: reply.arg, blocks: 1 };
    const manifest = decodeManifest(reply.body);
    return { key, size: manifest.size, blocks: manifest.blockCount };
  }

  /** Removes `key`; true when there was a value to remove. */
  async delete(key: string): Promise<boolean> {
    checkKey(key);
    this.router.checkOpen();
    return this.router.deleteAtOwners(key, this.blocks);
  }

  /**
   * Every key starting with `prefix`, in sorted order, fetched a page at a time from each node and merged.
   * Breaking out of the loop stops the paging.
   */
  list(prefix = '', options?: ListOptions): AsyncGenerator<string, void, undefined> {
    return listKeys(this.router, prefix, options);
  }

  /**
   * The value under `key` as soon as it exists: at once if it does, else when a PUT (or INCR) stores it. One
   * request parked at the node that owns the key, no polling. TIMEOUT when `timeoutMs` passes first,
   * NO_SUCH_JOB when the job is deregistered meanwhile.
   */
  waitFor(key: string, options?: WaitOptions): Promise<Buffer> {
    return this.coordination.waitFor(key, options);
  }

  /**
   * Adds `by` (default 1; a safe integer, may be negative) to the counter under `key`, created at 0, and
   * returns the new total, atomically: concurrent increments from any number of processes all count. The
   * counter is stored as decimal text (`get` returns it, `put(key, '10')` sets it); a key holding anything
   * else is BAD_REQUEST.
   */
  incr(key: string, by = 1): Promise<number> {
    return this.coordination.incr(key, by);
  }

  /**
   * Waits until `parties` callers have reached the barrier `name` (across any number of processes), built on
   * `incr` and `waitFor`: keys `name/arrived` (the count) and `name/open` (written by the last to arrive). A
   * barrier is used once; a caller past `parties` gets BAD_REQUEST.
   */
  barrier(name: string, parties: number, options?: WaitOptions): Promise<void> {
    return this.coordination.barrier(name, parties, options);
  }

  /**
   * Stores every entry. Requests go straight to each key's node, at most `window` at once; all those bound for
   * one node leave in one write. Keys and values are checked before anything is sent. On a failure the rest
   * still finish, then the first error is thrown (its message names the key); entries stored stay stored.
   */
  putMany(
    entries: Iterable<readonly [string, Uint8Array | string]> | Record<string, Uint8Array | string>,
    options?: BatchOptions,
  ): Promise<void> {
    return this.batches.putMany(entries, options);
  }

  /** The value under each key (null where there is none), in order; batched as `putMany`. */
  getMany(keys: Iterable<string>, options?: BatchOptions): Promise<(Buffer | null)[]> {
    return this.batches.getMany(keys, options);
  }

  /**
   * Puts and deletes of keys starting with `prefix`, from every node of the job, as an async iterator. Resolves
   * once the watch is registered everywhere: every change after that is reported. It follows the job onto new
   * nodes (keys already on a node it joins are reported as puts, so a key may be reported again); `close()`
   * (or leaving a for-await loop) frees it on every node.
   */
  watch(prefix = '', options?: WatchOptions): Promise<Watch> {
    return this.coordination.watch(prefix, options);
  }

  /**
   * Waits for calls in flight, then closes the handle. Idempotent. Its idle connections stay open a few seconds
   * for the next handle of the same ticket in this process (a function's next invocation), without keeping the
   * process alive.
   */
  close(): Promise<void> {
    return this.closeHandle(false);
  }

  /** @internal `jobGone`: the job was deregistered, so no connection of it is kept for a next handle. */
  protected async closeHandle(jobGone: boolean): Promise<void> {
    if (this.router.closed) return;
    this.router.closed = true;
    await this.coordination.close();
    await this.router.close(jobGone);
  }
}
