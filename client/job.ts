import { constants } from 'node:buffer';
import { randomBytes, randomFillSync } from 'node:crypto';
import {
  DEFAULT_WAIT_MS,
  Flag,
  MAX_WAIT_MS,
  MAX_USER_KEY_BYTES,
  Op,
  SatchelError,
  Status,
  blockKey,
  decodeKeyList,
  decodeManifest,
  decodeTicket,
  encodeManifest,
  tokenExpiry,
  errorCodeOf,
  hashKey,
  newerVersion,
  pickNode,
  pickNodes,
  type ClientTls,
  type ControllerMethods,
  type Manifest,
  type MetadataMethods,
  type Placement,
  type PlacementNode,
  type Ticket,
  type WirePlacement,
} from '../proto/index.ts';
import { LightControlClient, NodeConnection, type Reply } from '../proto/index.ts';
import { checkJobOptions, isPositiveInteger, optionsObject } from './options.ts';
import { Watch, type WatchHost, type WatchOptions } from './watch.ts';

export interface JobOptions {
  /** Every operation fails with TIMEOUT after this long (default 10 s). */
  timeoutMs?: number;
  /** Block GET/PUTs of one large value in flight at once (default 8). */
  blockParallelism?: number;
}

export interface Stat {
  key: string;
  size: number;
  /** Blocks the value is split into (1 for a value stored whole). */
  blocks: number;
}

export interface WaitOptions {
  /** Fail with TIMEOUT when the key has not appeared after this long (default 60 s, at most one hour). */
  timeoutMs?: number;
}

export interface BatchOptions {
  /** Operations in flight at once (default 1024); every connection sends what is queued for it as one write. */
  window?: number;
}

export interface ListOptions {
  /** Keys fetched per round trip from each node (default 100, at most 1000). */
  pageSize?: number;
}

type JobClass<T> = new (
  ticket: string,
  parsed: Ticket,
  placement: Placement,
  options: JobOptions,
  metadata: LightControlClient<MetadataMethods>,
) => T;

/** How many times an operation is retried after STALE (placement changed) or a block vanishing mid-read. */
const MAX_ATTEMPTS = 4;
/** How long past its own deadline a WAIT may take to come back before the client stops waiting for the node. */
const WAIT_GRACE_MS = 5_000;
const DEFAULT_BATCH_WINDOW = 1024;
/** The largest Buffer this Node can allocate. */
const MAX_BUFFER_BYTES = constants.MAX_LENGTH;
/** How often a replicated job's client asks for a new placement while a replica is unreachable. */
const REPLACEMENT_POLL_MS = 200;

/**
 * A job as a function sees it: put/get/stat/delete/list against the job's storage nodes, one round trip
 * each (the placement is fetched once from a metadata server and cached; a STALE answer refreshes it).
 */
export class Job implements WatchHost {
  private placement: Placement;
  private currentTicket: string;
  private readonly watches = new Set<Watch>();
  private readonly connections = new Map<string, NodeConnection>();
  private closed = false;
  private refreshing: Promise<void> | null = null;
  private growing: Promise<void> | null = null;
  private growthClient: LightControlClient<ControllerMethods> | null = null;

  /** @internal Use Satchel.attach(ticket) or Satchel#registerJob. */
  constructor(
    ticket: string,
    private parsed: Ticket,
    placement: Placement,
    private readonly options: JobOptions,
    private readonly metadata: LightControlClient<MetadataMethods>,
  ) {
    this.placement = placement;
    this.currentTicket = ticket;
  }

  /** @internal Decodes the ticket and fetches the placement unless given; `this` picks the handle class. */
  static async open<T extends Job>(this: JobClass<T>, ticket: string, given?: JobOptions, known?: WirePlacement): Promise<T> {
    const options = checkJobOptions(given);
    const parsed = decodeTicket(ticket);
    const metadata = new LightControlClient<MetadataMethods>('satchel.v1.Metadata', parsed.metadata[0]!, options.timeoutMs ?? 10_000, tlsOf(parsed));
    try {
      // The placement from registerJob (a driver) or from the ticket (a function) saves a metadata round trip,
      // which for a new process includes opening a gRPC channel (~18 ms measured here). A job with no nodes
      // yet in that snapshot asks the metadata server.
      const snapshot = known ?? parsed.placement;
      const usable = snapshot !== undefined && snapshot.generations.some((g) => g.nodes.length > 0);
      const placement = usable ? fromWirePlacement(snapshot) : await fetchPlacement(metadata, parsed);
      return new this(ticket, parsed, placement, options, metadata);
    } catch (error) {
      metadata.close();
      throw error;
    }
  }

  get id(): string {
    return this.parsed.job;
  }

  /** What a function needs to open this job (`Satchel.attach`): the freshest this handle has. */
  get ticket(): string {
    return this.currentTicket;
  }

  /**
   * @internal A fresh ticket for the same job (a lease renewal brings one): later connections open with its
   * token; the old connections close once their calls are answered.
   */
  protected replaceTicket(ticket: string): void {
    const parsed = decodeTicket(ticket);
    if (parsed.job !== this.parsed.job || ticket === this.currentTicket) return;
    // Kept until half its life is gone: renewals come every few seconds, and each change of token means new
    // connections to every node.
    const now = Date.now();
    if (tokenExpiry(this.parsed.token) - now > (tokenExpiry(parsed.token) - now) / 2) return;
    this.currentTicket = ticket;
    this.parsed = parsed;
  }

  /** The placement epoch this client is using. */
  get epoch(): number {
    return this.placement.epoch;
  }

  /** Stores `value` under `key`, replacing any value there. */
  put(key: string, value: Uint8Array | string): Promise<void> {
    let bytes: Uint8Array;
    try {
      checkKey(key);
      bytes = toBytes(value);
      this.checkOpen();
      if (bytes.length > this.placement.maxValueBytes) {
        throw new SatchelError('TOO_LARGE', `value of ${bytes.length} bytes exceeds the job's limit of ${this.placement.maxValueBytes}`);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    if (bytes.length > this.placement.blockSize) return this.putBlocks(key, bytes);
    // Hot path: no async frames of our own, one promise beyond the request's (see perf/RESULTS.md).
    const epoch = this.placement.epoch;
    return this.route(Op.PUT, 0, key, bytes).then(
      (reply) => (reply.status === Status.OK && reply.flags === 0 ? undefined : this.finishPut(key, bytes, reply)),
      (error: unknown) => this.afterUnreachable(error, epoch).then(() => this.finishPut(key, bytes, null)),
    );
  }

  /** The value under `key`, or null when there is none. */
  get(key: string): Promise<Buffer | null> {
    try {
      checkKey(key);
      this.checkOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    const epoch = this.placement.epoch;
    return this.route(Op.GET, 0, key, null).then(
      (reply) => {
        if (reply.status === Status.OK && (reply.flags & Flag.MANIFEST) === 0) return reply.body;
        // Absent, by the only generation of the placement the request went out with.
        if (reply.status === Status.NOT_FOUND && this.placement.epoch === epoch && this.placement.generations.length === 1) return null;
        return this.finishGet(key, reply);
      },
      (error: unknown) => this.afterUnreachable(error, epoch).then(() => this.finishGet(key, null)),
    );
  }

  /** PUT's uncommon endings: placement changed (STALE), an error, or a large value replaced. */
  private async finishPut(key: string, bytes: Uint8Array, reply: Reply | null): Promise<void> {
    if (reply === null || reply.status === Status.STALE || reply.status === Status.FULL) reply = await this.call(Op.PUT, 0, key, bytes);
    return this.afterReplace(key, reply);
  }

  /** GET's uncommon endings: STALE, an error, or a manifest whose blocks must be fetched. */
  private async finishGet(key: string, reply: Reply | null): Promise<Buffer | null> {
    for (let attempt = 1; ; attempt++) {
      // No answer yet, the placement changed, or the key may sit in an older generation: `call` handles all.
      if (reply === null || reply.status === Status.STALE || reply.status === Status.NOT_FOUND) reply = await this.call(Op.GET, 0, key, null);
      if (reply.status === Status.NOT_FOUND) return null;
      expectOk(reply);
      if ((reply.flags & Flag.MANIFEST) === 0) return reply.body;
      const value = await this.readBlocks(key, decodeManifest(reply.body));
      if (value !== null) return value;
      // A block vanished: the value was overwritten while we read it. Read the new one.
      if (attempt >= MAX_ATTEMPTS) throw new SatchelError('UNAVAILABLE', `value of ${key} kept changing while being read`);
      reply = await this.call(Op.GET, 0, key, null);
    }
  }

  /** A value larger than the block size: blocks first, then the manifest, so a reader sees the old value or the whole new one. */
  private async putBlocks(key: string, bytes: Uint8Array): Promise<void> {
    const blockSize = this.placement.blockSize;
    const manifest: Manifest = {
      size: bytes.length,
      blockSize,
      blockCount: Math.ceil(bytes.length / blockSize),
      version: randomBytes(6).toString('base64url'),
    };
    try {
      await this.forEachBlock(manifest, async (index) => {
        const start = index * blockSize;
        const reply = await this.call(Op.PUT, 0, blockKey(key, manifest.version, index), bytes.subarray(start, start + blockSize));
        expectOk(reply);
      });
    } catch (error) {
      void this.deleteBlocks(key, manifest).catch(() => {});
      throw error;
    }
    const reply = await this.call(Op.PUT, Flag.MANIFEST, key, encodeManifest(manifest));
    if (reply.status !== Status.OK) void this.deleteBlocks(key, manifest).catch(() => {});
    return this.afterReplace(key, reply);
  }

  /** Size of the value under `key`, or null when there is none; does not move the value. */
  async stat(key: string): Promise<Stat | null> {
    checkKey(key);
    this.checkOpen();
    const reply = await this.call(Op.STAT, 0, key, null);
    if (reply.status === Status.NOT_FOUND) return null;
    expectOk(reply);
    if ((reply.flags & Flag.MANIFEST) === 0) return { key, size: reply.arg, blocks: 1 };
    const manifest = decodeManifest(reply.body);
    return { key, size: manifest.size, blocks: manifest.blockCount };
  }

  /** Removes `key`; true when there was a value to remove. */
  async delete(key: string): Promise<boolean> {
    checkKey(key);
    this.checkOpen();
    return this.deleteAtOwners(key);
  }

  /**
   * DELETE at the key's holders in every generation (frees a replaced manifest's blocks); true if one had it.
   * Each generation's holders delete as they write: the first orders it, the others take it as its replicas.
   */
  private async deleteAtOwners(key: string): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      let deleted = false;
      const epoch = this.placement.epoch;
      try {
        // Every generation's holders (every replica): a copy left anywhere would otherwise come back through GET.
        const done = new Set<string>();
        /** The epoch a node answered STALE with, or false. */
        let stale: number | false = false;
        for (const holders of this.holders(key)) {
          const fresh = holders.filter((node) => !done.has(node.id));
          if (fresh.length === 0) continue;
          const reply = await this.writeReplicas(fresh, Op.DELETE, 0, key, null);
          if (reply.status === Status.STALE && attempt < MAX_ATTEMPTS) {
            stale = reply.arg;
            break;
          }
          await this.afterReplace(key, reply);
          deleted ||= (reply.flags & Flag.EXISTED) !== 0;
          for (const node of fresh) done.add(node.id);
        }
        if (stale === false) return deleted;
        await this.refreshPast(stale);
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS) throw error;
        await this.afterUnreachable(error, epoch); // a node down: with replicas, the placement that replaces it
      }
    }
  }

  /**
   * Every key starting with `prefix`, in sorted order, fetched a page at a time from each node and merged.
   * Breaking out of the loop stops the paging.
   */
  async *list(prefix = '', options?: ListOptions): AsyncGenerator<string, void, undefined> {
    if (typeof prefix !== 'string' || prefix.includes('\u0000')) throw new SatchelError('BAD_REQUEST', 'prefix must be a string without NUL');
    const { pageSize: asked = 100 } = optionsObject(options);
    if (!Number.isSafeInteger(asked)) throw new SatchelError('BAD_REQUEST', 'pageSize must be a whole number (1 to 1000)');
    // Checked here: a prefix over the frame's key limit would be a malformed frame, and the node would close the
    // connection under every other call in flight on it.
    if (prefix.length * 3 > MAX_USER_KEY_BYTES && Buffer.byteLength(prefix) > MAX_USER_KEY_BYTES) {
      throw new SatchelError('BAD_REQUEST', `prefix longer than ${MAX_USER_KEY_BYTES} bytes`);
    }
    this.checkOpen();
    const pageSize = Math.max(1, Math.min(asked, 1000));
    // Every node of every generation, once: keys written before a placement change stay where they were.
    const nodes = new Map(this.placement.generations.flat().map((node) => [node.id, node]));
    const cursors = [...nodes.values()].map((node) => new ListCursor(this, node, prefix, pageSize));
    await Promise.all(cursors.map((c) => c.fill()));
    for (;;) {
      let best: string | undefined;
      for (const cursor of cursors) {
        const head = cursor.head;
        if (head !== undefined && (best === undefined || head < best)) best = head;
      }
      if (best === undefined) return;
      // The same key on two nodes (an old copy and its overwrite) is listed once.
      for (const cursor of cursors) {
        if (cursor.head !== best) continue;
        cursor.shift();
        if (cursor.head === undefined) await cursor.fill();
      }
      yield best;
    }
  }

  /**
   * The value under `key` as soon as it exists: at once if it does, else when a PUT (or INCR) stores it. One
   * request parked at the node that owns the key, no polling. TIMEOUT when `timeoutMs` passes first,
   * NO_SUCH_JOB when the job is deregistered meanwhile.
   */
  async waitFor(key: string, options?: WaitOptions): Promise<Buffer> {
    checkKey(key);
    this.checkOpen();
    const timeoutMs = waitTimeout(options);
    const deadline = Date.now() + timeoutMs;
    let stale = 0;
    let unreachable = 0;
    for (;;) {
      // With older generations (the job grew, or is moving) the key may be in one of them: read as GET does,
      // newest first, so an older generation's copy never answers for a newer one. Then wait where new writes go.
      if (this.placement.generations.length > 1) {
        const now = await this.get(key);
        if (now !== null) return now;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new SatchelError('TIMEOUT', `${key} did not appear within ${timeoutMs} ms`);
      let reply: Reply;
      const epoch = this.placement.epoch;
      try {
        reply = await this.waitOnce(key, remaining);
      } catch (error) {
        if (++unreachable >= MAX_ATTEMPTS) throw error;
        await this.afterUnreachable(error, epoch);
        continue;
      }
      if (reply.status === Status.OK) {
        if ((reply.flags & Flag.MANIFEST) === 0) return reply.body;
        const value = await this.readBlocks(key, decodeManifest(reply.body));
        if (value !== null) return value;
        // Overwritten while its blocks were read: the key exists, so the current value is the answer.
        const current = await this.get(key);
        if (current !== null) return current;
      } else if (reply.status === Status.STALE) {
        if (++stale >= MAX_ATTEMPTS * 4) throw new SatchelError('STALE', `placement of job ${this.id} kept changing while waiting for ${key}`);
        await this.refreshPast(reply.arg);
      } else if (reply.status === Status.TIMEOUT) {
        throw new SatchelError('TIMEOUT', `${key} did not appear within ${timeoutMs} ms`);
      } else {
        expectOk(reply);
      }
    }
  }

  /** One WAIT at the key's newest owner (its primary with replicas): answered at once if the key is there. */
  private waitOnce(key: string, remaining: number): Promise<Reply> {
    const node = this.holders(key)[0]![0]!;
    return this.connectionTo(node).park({ op: Op.WAIT, epoch: this.placement.epoch, arg: remaining, key }, { backstopMs: remaining + WAIT_GRACE_MS }).reply;
  }

  /**
   * Adds `by` (default 1; a safe integer, may be negative) to the counter under `key`, created at 0, and
   * returns the new total, atomically: concurrent increments from any number of processes all count. The
   * counter is stored as decimal text (`get` returns it, `put(key, '10')` sets it); a key holding anything
   * else is BAD_REQUEST.
   */
  async incr(key: string, by = 1): Promise<number> {
    checkKey(key);
    this.checkOpen();
    if (!Number.isSafeInteger(by)) throw new SatchelError('BAD_REQUEST', 'by must be a safe integer');
    // The amount, then this increment's token: a retry (a lost answer, a node replaced) is recognised by the
    // node that applied it, or by the replica it told, and answered with the total it made, not added again.
    const amount = Buffer.allocUnsafe(16);
    amount.writeBigInt64BE(BigInt(by));
    randomFillSync(amount, 8, 8);
    for (let attempt = 1; ; attempt++) {
      let reply: Reply;
      let nodes: PlacementNode[];
      const epoch = this.placement.epoch;
      try {
        // Always on the newest generation, as every write: a counter incremented in two generations would count
        // twice over. One that lives in an older one (the job grew, or is moving) is brought forward first.
        const holders = this.holders(key);
        nodes = holders[0]!;
        reply = await this.incrOnce(nodes, holders.length > 1 ? Flag.EXISTING : 0, key, amount);
        if (reply.status === Status.NOT_FOUND) {
          await this.bringForward(key, holders);
          reply = await this.incrOnce(nodes, 0, key, amount);
        }
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS) throw error;
        await this.afterUnreachable(error, epoch);
        continue;
      }
      if (reply.status === Status.OK) return Number(reply.body.readBigInt64BE(0));
      if (attempt >= MAX_ATTEMPTS) expectOk(reply);
      if (reply.status === Status.STALE) await this.refreshPast(reply.arg);
      else if (reply.status === Status.FULL) await this.grow(nodes[0]!.id);
      else expectOk(reply);
    }
  }

  /**
   * Copies the newest value `key` has in an older generation (with its version, as the controller's copies:
   * it lands only where nothing newer is) to its holders in the newest one. Nothing when no generation has it.
   */
  private async bringForward(key: string, holders: PlacementNode[][]): Promise<void> {
    for (const older of holders.slice(1)) {
      const reply = await this.readReplicas(older, Op.GET, key, Flag.VERSION);
      if (reply.status !== Status.OK) continue;
      for (const node of holders[0]!) {
        const copied = await this.connectionTo(node).request({ op: Op.PUT, flags: Flag.COPY | (reply.flags & Flag.MANIFEST), epoch: reply.epoch, arg: reply.arg, key, value: reply.body });
        expectOk(copied);
      }
      return;
    }
  }

  /**
   * Waits until `parties` callers have reached the barrier `name` (across any number of processes), built on
   * `incr` and `waitFor`: keys `name/arrived` (the count) and `name/open` (written by the last to arrive). A
   * barrier is used once; a caller past `parties` gets BAD_REQUEST.
   */
  async barrier(name: string, parties: number, options?: WaitOptions): Promise<void> {
    if (typeof name !== 'string') throw new SatchelError('BAD_REQUEST', 'barrier name must be a string');
    checkKey(`${name}/arrived`);
    waitTimeout(options); // checked before arriving: a caller counted and then refused would hold the others up
    if (!Number.isSafeInteger(parties) || parties < 1) throw new SatchelError('BAD_REQUEST', 'parties must be a positive integer');
    const arrived = await this.incr(`${name}/arrived`);
    if (arrived > parties) throw new SatchelError('BAD_REQUEST', `barrier ${name} already had its ${parties} parties`);
    if (arrived === parties) await this.put(`${name}/open`, String(parties));
    else await this.waitFor(`${name}/open`, options);
  }

  /**
   * Stores every entry. Requests go straight to each key's node, at most `window` at once; all those bound for
   * one node leave in one write. Keys and values are checked before anything is sent. On a failure the rest
   * still finish, then the first error is thrown (its message names the key); entries stored stay stored.
   */
  async putMany(entries: Iterable<readonly [string, Uint8Array | string]> | Record<string, Uint8Array | string>, options?: BatchOptions): Promise<void> {
    if (typeof entries !== 'object' || entries === null) {
      throw new SatchelError('BAD_REQUEST', 'entries must be an iterable of [key, value] pairs, or an object of values by key');
    }
    const list = Symbol.iterator in entries ? [...(entries as Iterable<readonly [string, Uint8Array | string]>)] : Object.entries(entries);
    const window = batchWindow(options);
    for (const entry of list) {
      if (!Array.isArray(entry)) throw new SatchelError('BAD_REQUEST', 'each entry must be a [key, value] pair');
      const [key, value] = entry as [unknown, unknown];
      checkKey(key);
      // Checked, not converted: put converts each value when it sends it.
      if (!(value instanceof Uint8Array) && typeof value !== 'string') throw new SatchelError('BAD_REQUEST', 'value must be a Uint8Array, Buffer or string');
    }
    this.checkOpen();
    await inWindow(list.length, window, (i) => {
      const [key, value] = list[i]!;
      return this.put(key, value).catch((error: unknown) => Promise.reject(aboutKey(error, key)));
    });
  }

  /** The value under each key (null where there is none), in order; batched as `putMany`. */
  async getMany(keys: Iterable<string>, options?: BatchOptions): Promise<(Buffer | null)[]> {
    // A string is iterable too: getMany('abc') would read the keys a, b and c.
    if (typeof keys !== 'object' || keys === null || !(Symbol.iterator in keys)) throw new SatchelError('BAD_REQUEST', 'keys must be an iterable of keys (an array, say)');
    const list = [...keys];
    const window = batchWindow(options);
    for (const key of list) checkKey(key);
    this.checkOpen();
    const values = new Array<Buffer | null>(list.length).fill(null);
    await inWindow(list.length, window, (i) =>
      this.get(list[i]!).then(
        (value) => {
          values[i] = value;
        },
        (error: unknown) => Promise.reject(aboutKey(error, list[i]!)),
      ),
    );
    return values;
  }

  /**
   * Puts and deletes of keys starting with `prefix`, from every node of the job, as an async iterator. Resolves
   * once the watch is registered everywhere: every change after that is reported. It follows the job onto new
   * nodes (keys already on a node it joins are reported as puts, so a key may be reported again); `close()`
   * (or leaving a for-await loop) frees it on every node.
   */
  async watch(prefix = '', options?: WatchOptions): Promise<Watch> {
    if (typeof prefix !== 'string' || prefix.includes('\u0000')) throw new SatchelError('BAD_REQUEST', 'prefix must be a string without NUL');
    options = optionsObject(options);
    if (options.maxBuffered !== undefined && !isPositiveInteger(options.maxBuffered)) throw new SatchelError('BAD_REQUEST', 'maxBuffered must be a positive integer');
    if (prefix.length * 3 > MAX_USER_KEY_BYTES && Buffer.byteLength(prefix) > MAX_USER_KEY_BYTES) {
      throw new SatchelError('BAD_REQUEST', `prefix longer than ${MAX_USER_KEY_BYTES} bytes`);
    }
    this.checkOpen();
    const watch = new Watch(this, prefix, options, () => this.watches.delete(watch));
    this.watches.add(watch);
    try {
      await watch.ready;
    } catch (error) {
      await watch.close();
      throw error;
    }
    return watch;
  }

  /** @internal WatchHost: every node of every generation, once each. */
  watchNodes(): PlacementNode[] {
    return [...new Map(this.placement.generations.flat().map((node) => [node.id, node])).values()];
  }

  /** @internal WatchHost */
  refreshPlacement(): Promise<void> {
    this.checkOpen();
    return this.refresh();
  }

  /** Waits for calls in flight, then closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.watches].map((watch) => watch.close()));
    await Promise.all([...this.connections.values()].map((c) => c.close()));
    this.connections.clear();
    this.metadata.close();
    this.growthClient?.close();
  }

  /** @internal One LIST page from one node. */
  async listPage(node: PlacementNode, prefix: string, after: string, pageSize: number): Promise<{ keys: string[]; more: boolean }> {
    const reply = await this.callNode(node, Op.LIST, 0, pageSize, prefix, after.length > 0 ? Buffer.from(after) : null);
    expectOk(reply);
    return { keys: decodeKeyList(reply.body), more: (reply.flags & Flag.MORE) !== 0 };
  }

  /**
   * One request to the node that owns `key` in the newest generation, and what it takes to get an answer:
   * a new placement on STALE, more room on FULL (PUT), the older generations on NOT_FOUND (GET, STAT) — the last
   * also on the last attempt: a NOT_FOUND from the newest generation alone never answers "absent".
   */
  private async call(op: number, flags: number, key: string, value: Uint8Array | null): Promise<Reply> {
    for (let attempt = 1; ; attempt++) {
      let reply: Reply;
      const epoch = this.placement.epoch;
      try {
        reply = await this.route(op, flags, key, value);
        if (reply.status === Status.NOT_FOUND && (op === Op.GET || op === Op.STAT) && this.placement.generations.length > 1) {
          reply = await this.olderGenerations(op, key, reply);
        }
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS) throw error;
        await this.afterUnreachable(error, epoch);
        continue;
      }
      // (An older generation's node may answer STALE too: the job moved off it since.)
      if (attempt >= MAX_ATTEMPTS) return reply;
      if (reply.status === Status.STALE) {
        await this.refreshPast(reply.arg);
      } else if (reply.status === Status.FULL && op === Op.PUT) {
        await this.grow(this.owners(key)[0]!.id);
      } else {
        return reply;
      }
    }
  }

  /**
   * A node could not be reached by a request sent under placement `epoch`. Maybe the placement moved on (the node
   * was drained and removed, and this handle started from an old ticket) or the job is gone: ask the metadata
   * server. Resolves when there is a newer placement than `epoch` to retry with (at once when another call of
   * this handle already fetched one); rejects with NO_SUCH_JOB for a job that is gone, else with the error itself.
   */
  private async afterUnreachable(error: unknown, epoch: number): Promise<void> {
    const replicated = this.placement.replicas > 1;
    // A frozen node times out rather than refusing: with replicas, that too is a node to be replaced.
    if (!(error instanceof SatchelError) || !(error.code === 'UNAVAILABLE' || (replicated && error.code === 'TIMEOUT'))) throw error;
    if (this.placement.epoch !== epoch) return;
    // With replicas the controller replaces a dead node (it notices within seconds): wait for that placement,
    // within the operation's timeout, rather than fail a write the surviving replicas can take.
    const deadline = Date.now() + (replicated ? (this.options.timeoutMs ?? 10_000) : 0);
    for (;;) {
      try {
        await this.refresh();
      } catch (refreshError) {
        if (refreshError instanceof SatchelError && refreshError.code === 'NO_SUCH_JOB') throw refreshError;
        throw error;
      }
      if (this.placement.epoch !== epoch) return;
      if (Date.now() + REPLACEMENT_POLL_MS > deadline || this.closed) throw error;
      await new Promise((resolve) => setTimeout(resolve, REPLACEMENT_POLL_MS));
    }
  }

  /**
   * Asks the owners of `key` in older generations, newest first, until one has it. Past a node that remembers
   * deleting the key (Flag.DELETED, with the delete's version) a copy counts only when it is newer than that
   * delete: a DELETE reaches the generations newest first, and a read between its steps found the older
   * generation's copy of a value overwritten since (a stale read in the 10-minute nemesis, during a drain).
   */
  private async olderGenerations<T extends Reply | null>(op: number, key: string, notFound: T): Promise<Reply | T> {
    let deleted = notFound === null ? undefined : deletedVersion(notFound);
    for (const node of this.owners(key).slice(1)) {
      if (deleted === undefined) {
        const reply = await this.callNode(node, op, 0, 0, key, null);
        if (reply.status !== Status.NOT_FOUND) return reply;
        deleted = deletedVersion(reply);
        continue;
      }
      const versioned = await this.callNode(node, op, Flag.VERSION, 0, key, null);
      if (versioned.status === Status.NOT_FOUND) {
        const also = deletedVersion(versioned);
        if (also !== undefined && newerVersion(also.epoch, also.seq, deleted.epoch, deleted.seq)) deleted = also;
      } else if (versioned.status !== Status.OK) {
        return versioned;
      } else if (newerVersion(versioned.epoch, versioned.arg, deleted.epoch, deleted.seq)) {
        // Written again after the delete, and not yet copied forward: the plain answer (STAT's arg is the size).
        return this.callNode(node, op, 0, 0, key, null);
      }
    }
    return notFound;
  }

  /** The nodes holding `key` in each generation (its replicas, primary first), newest generation first. */
  private holders(key: string): PlacementNode[][] {
    const hash = hashKey(key);
    const replicas = this.placement.replicas;
    return this.placement.generations.map((nodes) => (replicas === 1 ? [pickNode(nodes, hash)] : pickNodes(nodes, hash, replicas)).map((i) => nodes[i]!));
  }

  /** The nodes holding `key` in each generation (its replicas, primary first), newest first, each node once. */
  private owners(key: string): PlacementNode[] {
    const hash = hashKey(key);
    const owners: PlacementNode[] = [];
    const replicas = this.placement.replicas;
    for (const nodes of this.placement.generations) {
      const picked = replicas === 1 ? [pickNode(nodes, hash)] : pickNodes(nodes, hash, replicas);
      for (const index of picked) {
        const node = nodes[index];
        if (node !== undefined && !owners.some((o) => o.id === node.id)) owners.push(node);
      }
    }
    return owners;
  }

  /** @internal WatchHost: whether `nodeId` is the first holder of `key` in some generation (its events count). */
  isPrimary(nodeId: string, key: string): boolean {
    if (this.placement.replicas === 1) return true;
    const hash = hashKey(key);
    return this.placement.generations.some((nodes) => nodes[pickNode(nodes, hash)]?.id === nodeId);
  }

  /** A node answered FULL: ask the controller for room (a new generation), then use the new placement. */
  private grow(fullNodeId: string): Promise<void> {
    this.growthClient ??= this.controllerClient();
    const client = this.growthClient;
    this.growing ??= client
      .call('GrowJob', { jobId: this.id, token: this.parsed.token, fullNodeId, epoch: this.placement.epoch })
      .then((wire) => {
        this.placement = fromWirePlacement(wire);
      })
      .finally(() => {
        this.growing = null;
      });
    return this.growing;
  }

  /** One request to the node that owns `key` in the newest generation (its replicas: below), whatever the answer. */
  private route(op: number, flags: number, key: string, value: Uint8Array | null): Promise<Reply> {
    const nodes = this.placement.generations[0]!;
    if (this.placement.replicas === 1) return this.callNode(nodes[pickNode(nodes, hashKey(key))]!, op, flags, 0, key, value);
    const replicas = pickNodes(nodes, hashKey(key), this.placement.replicas).map((i) => nodes[i]!);
    return op === Op.GET || op === Op.STAT ? this.readReplicas(replicas, op, key) : this.writeReplicas(replicas, op, flags, key, value);
  }

  /**
   * A read from the primary, or when it cannot be reached, from a replica that has the key. The primary has
   * every acknowledged write; a replica may not yet (the controller may be copying the key to it after a loss),
   * so its NOT_FOUND is no answer: with no replica holding the key, the primary's failure is thrown, and the
   * caller waits for a placement without it (`afterUnreachable`).
   */
  private async readReplicas(replicas: readonly PlacementNode[], op: number, key: string, flags = 0): Promise<Reply> {
    let failure: unknown;
    for (const node of replicas) {
      try {
        const reply = await this.callNode(node, op, flags, 0, key, null);
        if (failure === undefined || reply.status !== Status.NOT_FOUND) return reply;
      } catch (error) {
        if (!(error instanceof SatchelError) || (error.code !== 'UNAVAILABLE' && error.code !== 'TIMEOUT')) throw error;
        failure ??= error;
      }
    }
    throw failure;
  }

  /**
   * A write to a key's copies, acknowledged only when all have it. The primary (the first) orders it: it stores
   * the write under a version it chooses (the placement's epoch, and a seq after every earlier write of the key);
   * the others then take that version as a replica (Flag.REPLICA), each keeping whichever version is newest. So
   * concurrent writers leave every copy with the same value, and a replica never holds a write its primary
   * does not. An INCR's replicas take the primary's new total (and the increment's token). The answer is the primary's, unless a
   * replica's is not OK (STALE, FULL: the caller refreshes or grows, and writes again). A replica that cannot be
   * reached fails the write with UNAVAILABLE: `afterUnreachable` then waits for the controller to replace it.
   */
  private async writeReplicas(replicas: readonly PlacementNode[], op: number, flags: number, key: string, value: Uint8Array | null): Promise<Reply> {
    const primary = await this.callNode(replicas[0]!, op, flags, 0, key, value);
    if (replicas.length === 1 || primary.status !== Status.OK) return primary;
    const replies = await Promise.all(replicas.slice(1).map((node) => this.callNode(node, op, flags | Flag.REPLICA, primary.arg, key, value)));
    return replies.find((reply) => reply.status !== Status.OK) ?? primary;
  }

  /**
   * One INCR (`amount`: the amount, then the increment's token) at the counter's primary, then its new total,
   * with the token, to the other holders of the same set. Unlike a PUT, an increment the primary applied is not
   * written again when a replica's answer is STALE or lost: that would add it twice (the retry lands in the new
   * placement, whose copy of the counter already counts it). So the other holders of the set the primary ordered
   * it for each get it, as a copy (Flag.COPY: no placement check, still only over older versions), whatever the
   * placement became meanwhile; a holder that cannot be reached is left to the controller, which restores the
   * copies from the primary once it has placed the job without it.
   */
  private async incrOnce(holders: readonly PlacementNode[], flags: number, key: string, amount: Buffer): Promise<Reply> {
    const epoch = this.placement.epoch;
    const primary = await this.connectionTo(holders[0]!).request({ op: Op.INCR, flags, epoch, key, value: amount });
    // The total is 8 bytes: a shorter answer would be a RangeError where it is read.
    if (primary.status === Status.OK && primary.body.length < 8) throw new SatchelError('UNAVAILABLE', `node ${holders[0]!.id} answered INCR without a total`);
    if (holders.length === 1 || primary.status !== Status.OK) return primary;
    const told = Buffer.concat([primary.body.subarray(0, 8), amount.subarray(8, 16)]);
    await Promise.all(holders.slice(1).map((node) => this.tellIncrement(node, holders[0]!, epoch, primary.arg, key, told)));
    return primary;
  }

  /**
   * A replica of an increment (its total and token at version (epoch, seq)) to one holder; see `incrOnce`. A
   * holder that is down and then leaves the placement is let go while the primary stays in it (the controller
   * restores the copies from the primary's side); if the primary left too, nobody may hold the increment: the
   * error goes to `incr`, which asks the new placement's primary (the token tells it whether it has the increment).
   */
  private async tellIncrement(node: PlacementNode, primary: PlacementNode, epoch: number, seq: number, key: string, told: Buffer): Promise<void> {
    const placed = (id: string) => this.placement.generations.some((nodes) => nodes.some((n) => n.id === id));
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await this.connectionTo(node).request({ op: Op.INCR, flags: Flag.REPLICA | Flag.COPY, epoch, arg: seq, key, value: told });
        // STALE: the job moved off that node (drained); the copies it made came from the primary's side too.
        if (reply.status !== Status.STALE) expectOk(reply);
        return;
      } catch (error) {
        if (!(error instanceof SatchelError) || (error.code !== 'UNAVAILABLE' && error.code !== 'TIMEOUT') || attempt >= MAX_ATTEMPTS) throw error;
        await this.afterUnreachable(error, this.placement.epoch);
        if (!placed(node.id)) {
          if (placed(primary.id)) return;
          throw error;
        }
      }
    }
  }

  private callNode(node: PlacementNode, op: number, flags: number, arg: number, key: string, value: Uint8Array | null): Promise<Reply> {
    return this.connectionTo(node).request({ op, flags, epoch: this.placement.epoch, arg, key, value });
  }

  /** @internal The connection to `node` (opened on first use; WatchHost). */
  connectionTo(node: PlacementNode): NodeConnection {
    let connection = this.connections.get(node.id);
    if (connection !== undefined && connection.address === node.address && connection.token !== this.parsed.token) {
      // A fresh token: new calls go on a connection opened with it; the old one finishes what it carries.
      connection.retire();
      connection = undefined;
    }
    if (connection === undefined || connection.address !== node.address) {
      connection?.destroy();
      connection = new NodeConnection(node.address, this.parsed.token, { timeoutMs: this.options.timeoutMs, tls: tlsOf(this.parsed) });
      this.connections.set(node.id, connection);
    }
    return connection;
  }

  /**
   * After STALE from a node that knows epoch `nodeEpoch`: a fresh placement, waiting a little for the metadata
   * servers while they still hold an older one than the node (the controller tells nodes first).
   */
  private async refreshPast(nodeEpoch: number): Promise<void> {
    await this.refresh();
    // Usually a few ms; up to the operation's timeout when the controller died between telling the nodes and
    // telling the metadata servers (its successor republishes what it had recorded).
    const deadline = Date.now() + (this.options.timeoutMs ?? 10_000);
    for (let wait = 5; this.placement.epoch < nodeEpoch && Date.now() < deadline && !this.closed; wait = Math.min(wait * 2, 200)) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      await this.refresh();
    }
  }

  private refresh(): Promise<void> {
    this.refreshing ??= fetchPlacement(this.metadata, this.parsed).then(
      (placement) => {
        this.placement = placement;
        this.refreshing = null;
      },
      (error: unknown) => {
        this.refreshing = null;
        throw error;
      },
    );
    return this.refreshing;
  }

  /** After a PUT or DELETE: surface an error, and free the blocks of a large value that was replaced. */
  private async afterReplace(key: string, reply: Reply): Promise<void> {
    expectOk(reply);
    if ((reply.flags & Flag.REPLACED_MANIFEST) !== 0) {
      await this.deleteBlocks(key, decodeManifest(reply.body)).catch(() => {
        // Orphaned blocks cost space until the job ends; they are never visible. Nothing to tell the caller.
      });
    }
  }

  private async deleteBlocks(key: string, manifest: Manifest): Promise<void> {
    // Every generation's owner: a block written before the placement changed (a GrowJob racing the write)
    // sits with its owner then, and would otherwise stay until the job ends.
    await this.forEachBlock(manifest, async (index) => {
      await this.deleteAtOwners(blockKey(key, manifest.version, index));
    });
  }

  /** Assembles a large value; null when a block is missing (the value changed under us). */
  private async readBlocks(key: string, manifest: Manifest): Promise<Buffer | null> {
    // Checked, as decodeManifest checks its header: a size no Buffer can have would be a RangeError here.
    const { size, blockSize, blockCount } = manifest;
    if (!(Number.isSafeInteger(size) && size >= 0 && size <= MAX_BUFFER_BYTES && blockSize > 0 && blockCount === Math.ceil(size / blockSize))) {
      throw new SatchelError('BAD_REQUEST', `corrupt block manifest under ${key}`);
    }
    const out = Buffer.allocUnsafe(manifest.size);
    let missing = false;
    await this.forEachBlock(manifest, async (index) => {
      if (missing) return;
      const reply = await this.call(Op.GET, 0, blockKey(key, manifest.version, index), null);
      if (reply.status === Status.NOT_FOUND) {
        missing = true;
        return;
      }
      expectOk(reply);
      reply.body.copy(out, index * manifest.blockSize);
    });
    return missing ? null : out;
  }

  /**
   * Runs `task` for every block index with bounded parallelism. After the first failure no lane starts another
   * block, and the call rejects only once the tasks already running have finished: a caller that cleans up
   * after a failed write (deleteBlocks) must not race block PUTs still on their way, or they outlive it.
   */
  private async forEachBlock(manifest: Manifest, task: (index: number) => Promise<void>): Promise<void> {
    let next = 0;
    const errors: unknown[] = [];
    const lanes = Math.min(this.options.blockParallelism ?? 8, manifest.blockCount);
    const lane = async () => {
      while (errors.length === 0 && next < manifest.blockCount) {
        try {
          await task(next++);
        } catch (error) {
          errors.push(error);
        }
      }
    };
    await Promise.all(Array.from({ length: lanes }, lane));
    if (errors.length > 0) throw errors[0];
  }

  protected checkOpen(): void {
    if (this.closed) throw new SatchelError('CLOSED', `job ${this.id} handle is closed`);
  }

  /** @internal For the controller-facing handle. */
  protected controllerClient(): LightControlClient<ControllerMethods> {
    return new LightControlClient<ControllerMethods>('satchel.v1.Controller', this.parsed.controller, this.options.timeoutMs ?? 10_000, tlsOf(this.parsed));
  }

  /** @internal */
  protected get token(): string {
    return this.parsed.token;
  }
}

/** Pages through one node's keys for `Job.list`. */
class ListCursor {
  private keys: string[] = [];
  private index = 0;
  private more = true;
  private after = '';

  constructor(
    private readonly job: Job,
    private readonly node: PlacementNode,
    private readonly prefix: string,
    private readonly pageSize: number,
  ) {}

  get head(): string | undefined {
    return this.keys[this.index];
  }

  shift(): string {
    const key = this.keys[this.index++]!;
    this.after = key;
    return key;
  }

  async fill(): Promise<void> {
    if (!this.more) return;
    const page = await this.job.listPage(this.node, this.prefix, this.after, this.pageSize);
    this.keys = page.keys;
    this.index = 0;
    this.more = page.more;
  }
}

/** A cluster running with TLS puts its CA in the ticket: every connection of the job is TLS, checked against it. */
function tlsOf(ticket: Ticket): ClientTls | undefined {
  return ticket.tls === undefined ? undefined : { ca: ticket.tls.ca };
}

async function fetchPlacement(metadata: LightControlClient<MetadataMethods>, ticket: Ticket): Promise<Placement> {
  return fromWirePlacement(await metadata.call('GetPlacement', { jobId: ticket.job, token: ticket.token }));
}

export function fromWirePlacement(wire: WirePlacement): Placement {
  const generations = wire.generations.map((g) => g.nodes).filter((nodes) => nodes.length > 0);
  if (generations.length === 0) throw new SatchelError('UNAVAILABLE', `job ${wire.jobId} has no storage nodes yet`);
  return {
    jobId: wire.jobId,
    epoch: wire.epoch,
    generations,
    blockSize: wire.blockSize,
    maxValueBytes: wire.maxValueBytes,
    replicas: Math.max(1, wire.replicas ?? 1),
  };
}

/**
 * Runs `task(0 … count-1)` with at most `window` running. After a failure no new task starts; the first error is
 * thrown once those running have finished.
 */
async function inWindow(count: number, window: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const lane = async () => {
    while (failure === null && next < count) {
      try {
        await task(next++);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/** WaitOptions.timeoutMs, checked, or its default. */
function waitTimeout(options: WaitOptions | undefined): number {
  const { timeoutMs = DEFAULT_WAIT_MS } = optionsObject(options);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_WAIT_MS) {
    throw new SatchelError('BAD_REQUEST', `timeoutMs must be a whole number of ms from 1 to ${MAX_WAIT_MS}`);
  }
  return timeoutMs;
}

/** BatchOptions.window, checked. */
function batchWindow(options: BatchOptions | undefined): number {
  const { window = DEFAULT_BATCH_WINDOW } = optionsObject(options);
  if (!isPositiveInteger(window)) throw new SatchelError('BAD_REQUEST', 'window must be a positive integer');
  return window;
}

/** The same error, its message naming the key of a batch entry. */
function aboutKey(error: unknown, key: string): unknown {
  if (!(error instanceof SatchelError)) return error;
  return new SatchelError(error.code, `${JSON.stringify(key)}: ${error.message}`, { cause: error });
}

function expectOk(reply: Reply): void {
  if (reply.status === Status.OK) return;
  if (reply.status === Status.NOT_FOUND) throw new SatchelError('UNAVAILABLE', 'block of a large value is missing');
  throw new SatchelError(errorCodeOf(reply.status), reply.message || `node answered status ${reply.status}`);
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw new SatchelError('BAD_REQUEST', 'key must be a non-empty string');
  // UTF-8 takes at most 3 bytes per UTF-16 unit: only long keys need their bytes counted.
  if (key.length * 3 > MAX_USER_KEY_BYTES && Buffer.byteLength(key) > MAX_USER_KEY_BYTES) {
    throw new SatchelError('BAD_REQUEST', `key longer than ${MAX_USER_KEY_BYTES} bytes`);
  }
  if (key.includes('\u0000')) throw new SatchelError('BAD_REQUEST', 'key may not contain NUL');
}

function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  throw new SatchelError('BAD_REQUEST', 'value must be a Uint8Array, Buffer or string');
}

/** The version of the delete a NOT_FOUND reports (Flag.DELETED), if it does. */
function deletedVersion(reply: Reply): { epoch: number; seq: number } | undefined {
  return reply.status === Status.NOT_FOUND && (reply.flags & Flag.DELETED) !== 0 ? { epoch: reply.epoch, seq: reply.arg } : undefined;
}
