import {
  ADMIN_SUBJECT,
  type AnnouncedPlacement,
  type ClientTls,
  DROP_MOVED,
  DropFlag,
  encodeAnnounceBody,
  errorCodeOf,
  NodeConnection,
  Op,
  SatchelError,
  Status,
  signToken,
} from '../proto/index.ts';

/** An admin connection unused this long is closed (the next call opens another). */
const IDLE_MS = 30_000;

/**
 * The controller's admin connections to storage nodes, over the data plane (the node has no other port). The
 * controller speaks to a node when a job is placed on it, moved or ended, so a connection is closed once idle:
 * held open to every node, they were a socket per node (10,000 at 10,000 nodes, bench scale), and one per
 * address ever seen (nodes the autoscaler removed kept theirs in the map).
 */
export class NodeAdmin {
  private readonly connections = new Map<string, { connection: NodeConnection; usedAt: number }>();
  private readonly token: string;
  private sweeper: NodeJS.Timeout | null = null;

  /** `tls`: the nodes serve TLS, their certificates checked against its CA. Each call fails after `timeoutMs`. */
  constructor(
    secret: Uint8Array,
    private readonly tls?: ClientTls,
    private readonly timeoutMs = 10_000,
  ) {
    this.token = signToken(secret, ADMIN_SUBJECT);
  }

  /**
   * Deletes every byte of `jobId` on the node. An ended job is refused from now on; a `moved` one (migrated
   * away) keeps answering STALE to old epochs, so clients look its placement up again. Returns bytes freed.
   */
  async dropJob(address: string, jobId: string, moved = false, tokensExpireBy?: number, keep = false): Promise<number> {
    let until: Buffer | null = null;
    if (tokensExpireBy !== undefined && Number.isFinite(tokensExpireBy)) {
      until = Buffer.alloc(8);
      until.writeBigInt64BE(BigInt(Math.ceil(tokensExpireBy)));
    }
    const flags = moved && keep ? DropFlag.KEEP : 0;
    const reply = await this.connection(address).request({ op: Op.DROP_JOB, flags, arg: moved ? DROP_MOVED : 0, key: jobId, value: until });
    if (reply.status !== Status.OK) throw new SatchelError(errorCodeOf(reply.status), reply.message);
    return reply.arg;
  }

  /**
   * Tells the node it serves the job from `epoch` on (frames with older epochs get STALE), with what it must know
   * about it (AnnounceFlag). Only the incarnation `bootId` takes it: a node that restarted under the same id
   * refuses (UNAVAILABLE), so a job is never announced to a process that does not hold its data. `placement` is
   * what the node's RESP front door answers CLUSTER SLOTS and MOVED from (proto/announce.ts).
   */
  async announce(
    address: string,
    jobId: string,
    epoch: number,
    flags: number,
    bootId: string,
    placement: AnnouncedPlacement | null = null,
  ): Promise<void> {
    const reply = await this.connection(address).request({
      op: Op.ANNOUNCE,
      flags,
      arg: epoch,
      key: jobId,
      value: encodeAnnounceBody(bootId, placement),
    });
    if (reply.status !== Status.OK) throw new SatchelError(errorCodeOf(reply.status), reply.message);
  }

  /** Tells the node whether the job is over its byte quota (its PUTs and INCRs refused with FULL) or not. */
  async limitJob(address: string, jobId: string, overQuota: boolean): Promise<void> {
    const reply = await this.connection(address).request({ op: Op.LIMIT_JOB, arg: overQuota ? 1 : 0, key: jobId });
    if (reply.status !== Status.OK) throw new SatchelError(errorCodeOf(reply.status), reply.message);
  }

  /** Connections open now (idle ones not yet closed included). */
  get size(): number {
    return this.connections.size;
  }

  close(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const { connection } of this.connections.values()) connection.destroy();
    this.connections.clear();
  }

  /** Closes the connections idle for `idleMs` (nothing in flight): the sweep's work, exposed for tests. */
  closeIdle(idleMs = IDLE_MS, now = performance.now()): void {
    for (const [address, entry] of this.connections) {
      if (now - entry.usedAt < idleMs || entry.connection.inflight > 0) continue;
      this.connections.delete(address);
      entry.connection.retire();
    }
    if (this.connections.size === 0 && this.sweeper !== null) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  private connection(address: string): NodeConnection {
    let entry = this.connections.get(address);
    if (entry === undefined) {
      entry = { connection: new NodeConnection(address, this.token, { timeoutMs: this.timeoutMs, tls: this.tls }), usedAt: 0 };
      this.connections.set(address, entry);
      if (this.sweeper === null) {
        this.sweeper = setInterval(() => this.closeIdle(), IDLE_MS / 2);
        this.sweeper.unref();
      }
    }
    entry.usedAt = performance.now();
    return entry.connection;
  }
}
