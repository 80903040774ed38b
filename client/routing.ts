/**
 * Where each key of a job goes, and what it takes to get an answer when the client's view is out of date: the
 * job's placement (its generations, newest first), one NodeConnection per node, a fresh placement after STALE or
 * an unreachable node, a new generation after FULL, the older generations after NOT_FOUND. Every other module of
 * the client reaches the nodes through the Router; a Job has one, made by `openRouter`.
 */
import {
  type ClientTls,
  type ControllerMethods,
  decodeKeyList,
  decodeTicket,
  Flag,
  keySlot,
  LightControlClient,
  NodeConnection,
  newerVersion,
  Op,
  type Placement,
  type PlacementNode,
  pickNode,
  pickNodes,
  type Reply,
  refusedByNode,
  SatchelError,
  Status,
  someSlotLost,
  type Ticket,
  tokenExpiry,
  type WirePlacement,
  writtenGenerations,
} from '../proto/index.ts';
import { pastDeadline, settleBy } from './deadline.ts';
import { MAX_ATTEMPTS, METADATA_CATCH_UP, REFUSAL_PAUSE_MS, REPLACEMENT_POLL, sleep } from './defaults.ts';
import { closeIdleOf, closeOrKeep, takeIdle } from './idle-connections.ts';
import { isKeyLost, keyLostError, lostNodeError } from './lost-keys.ts';
import { MetadataLookup } from './metadata-lookup.ts';
import { type JobOptions, type ResolvedJobOptions, resolveJobOptions } from './options.ts';
import { type ReplicaHost, readReplicas, refusedBy, writeReplicas } from './replicas.ts';
import { deletedVersion, expectOk } from './replies.ts';

/** What a watch needs from its job (watch.ts; the Router is its host). */
export interface WatchHost {
  readonly epoch: number;
  /** Every node of every generation but the remnants, once each. */
  everyNode(): PlacementNode[];
  /** With replicas each holder of a key reports it: only the first holder's events are passed on. */
  isPrimary(nodeId: string, key: string): boolean;
  connectionTo(node: PlacementNode): NodeConnection;
  /** The placement from the metadata servers, waiting (within the timeout) for one of epoch `atLeast` or later. */
  refreshPlacement(atLeast?: number): Promise<void>;
  listPage(node: PlacementNode, prefix: string, after: string, pageSize: number): Promise<{ keys: string[]; more: boolean }>;
}

/** What happens after a PUT or DELETE replaced a value (blocks.ts frees a large value's blocks). */
export interface ReplacedValues {
  afterReplace(key: string, reply: Reply): Promise<void>;
}

/**
 * Decodes the ticket and makes the job's Router, with the placement from `known` (registerJob's answer), else
 * from the ticket, else from a metadata server.
 */
export async function openRouter(ticket: string, given: JobOptions | undefined, known: WirePlacement | undefined): Promise<Router> {
  const options = resolveJobOptions(given);
  const parsed = decodeTicket(ticket);
  const metadata = new MetadataLookup(parsed, options.timeoutMs, tlsOf(parsed));
  try {
    // The placement from registerJob (a driver) or from the ticket (a function) saves a metadata round trip,
    // which for a new process includes opening a gRPC channel (~18 ms measured here). A job with no nodes
    // yet in that snapshot asks the metadata server.
    const snapshot = known ?? parsed.placement;
    // biome-ignore lint/complexity/useOptionalChain: the explicit check narrows `snapshot` for the line below
    const usable = snapshot !== undefined && snapshot.generations.some((g) => g.nodes.length > 0);
    const placement = fromWirePlacement(usable ? snapshot : await metadata.placement());
    return new Router(ticket, parsed, placement, options, metadata);
  } catch (error) {
    metadata.close();
    throw error;
  }
}

export class Router implements ReplicaHost, WatchHost {
  placement: Placement;
  /** Set by Job.close: loops that wait for a placement stop, and calls fail with CLOSED. */
  closed = false;
  private currentTicket: string;
  private readonly connections = new Map<string, NodeConnection>();
  private refreshing: Promise<void> | null = null;
  private growing: Promise<void> | null = null;
  private growthClient: LightControlClient<ControllerMethods> | null = null;

  constructor(
    ticket: string,
    private parsed: Ticket,
    placement: Placement,
    readonly options: ResolvedJobOptions,
    private readonly metadata: MetadataLookup,
  ) {
    this.placement = placement;
    this.currentTicket = ticket;
  }

  get jobId(): string {
    return this.parsed.job;
  }

  /**
   * `redis://<job>:<token>@host:port` (`rediss://` under TLS) of a RESP front door of the job's newest generation,
   * for Redis clients; null when its nodes have none.
   */
  get redisUrl(): string | null {
    const node = this.placement.generations[0]?.find((n) => n.respAddress);
    if (node === undefined) return null;
    const scheme = this.parsed.tls === undefined ? 'redis' : 'rediss';
    return `${scheme}://${encodeURIComponent(this.jobId)}:${encodeURIComponent(this.parsed.token)}@${node.respAddress}`;
  }

  get ticket(): string {
    return this.currentTicket;
  }

  get epoch(): number {
    return this.placement.epoch;
  }

  /**
   * A fresh ticket for the same job (a lease renewal brings one): later connections open with its token; the old
   * connections close once their calls are answered.
   */
  replaceTicket(ticket: string): void {
    const parsed = decodeTicket(ticket);
    if (parsed.job !== this.parsed.job || ticket === this.currentTicket) return;
    // Kept until half its life is gone: renewals come every few seconds, and each change of token means new
    // connections to every node.
    const now = Date.now();
    if (tokenExpiry(this.parsed.token) - now > (tokenExpiry(parsed.token) - now) / 2) return;
    this.currentTicket = ticket;
    this.parsed = parsed;
  }

  /** Every call's time (a call's deadline: deadline.ts). */
  get timeoutMs(): number {
    return this.options.timeoutMs;
  }

  checkOpen(): void {
    if (this.closed) throw new SatchelError('CLOSED', `job ${this.jobId} handle is closed`);
  }

  /**
   * One request to the node that owns `key` in the newest generation (its replicas: replicas.ts), whatever the
   * answer. `into`: where a GET's value may be read to (NodeConnection's `RequestFrame.into`); `deadline`: the
   * call's (deadline.ts), of which a replicated job's requests each take half of what is left (replicas.ts).
   */
  route(op: number, flags: number, key: string, value: Uint8Array | null, into: Buffer | null = null, deadline = Infinity): Promise<Reply> {
    const nodes = this.placement.generations[0]!;
    if (this.placement.replicas === 1) return this.callNode(nodes[pickNode(nodes, keySlot(key))]!, op, flags, 0, key, value, into);
    const replicas = pickNodes(nodes, keySlot(key), this.placement.replicas).map((i) => nodes[i]!);
    return op === Op.GET || op === Op.STAT
      ? readReplicas(this, replicas, op, key, 0, into, deadline)
      : writeReplicas(this, replicas, op, flags, key, value, deadline);
  }

  callNode(
    node: PlacementNode,
    op: number,
    flags: number,
    arg: number,
    key: string,
    value: Uint8Array | null,
    into: Buffer | null = null,
  ): Promise<Reply> {
    return this.connectionTo(node).request({ op, flags, epoch: this.placement.epoch, arg, key, value, into });
  }

  /** ReplicaHost: answers still to come may not be read into `into` (a call gave up on them: deadline.ts). */
  releaseInto(into: Buffer): void {
    for (const connection of this.connections.values()) connection.releaseInto(into);
  }

  /** The connection to `node`, opened on first use. */
  connectionTo(node: PlacementNode): NodeConnection {
    let connection = this.connections.get(node.id);
    if (connection !== undefined && connection.address === node.address && connection.token !== this.parsed.token) {
      // A fresh token: new calls go on a connection opened with it; the old one finishes what it carries.
      connection.retire();
      connection = undefined;
    }
    if (connection === undefined || connection.address !== node.address) {
      connection?.destroy();
      connection =
        takeIdle(node.address, this.parsed.token, this.options.timeoutMs) ??
        new NodeConnection(node.address, this.parsed.token, { timeoutMs: this.options.timeoutMs, tls: tlsOf(this.parsed) });
      this.connections.set(node.id, connection);
    }
    return connection;
  }

  /**
   * One request to the node that owns `key` in the newest generation, and what it takes to get an answer:
   * a new placement on STALE, more room on FULL (PUT), the older generations on NOT_FOUND (GET, STAT) — the last
   * also on the last attempt: a NOT_FOUND from the newest generation alone never answers "absent". All within
   * `deadline` (deadline.ts: `timeoutMs` from the call's start), past which the last error or answer is the call's.
   */
  async call(
    op: number,
    flags: number,
    key: string,
    value: Uint8Array | null,
    into: Buffer | null = null,
    deadline = Date.now() + this.options.timeoutMs,
  ): Promise<Reply> {
    const timeoutMs = this.options.timeoutMs;
    for (let attempt = 1; ; attempt++) {
      let reply: Reply;
      const epoch = this.placement.epoch;
      try {
        const givenUp = into === null ? undefined : () => this.releaseInto(into);
        reply = await settleBy(this.route(op, flags, key, value, into, deadline), deadline, timeoutMs, givenUp);
        if (reply.status === Status.NOT_FOUND && (op === Op.GET || op === Op.STAT) && this.placement.generations.length > 1) {
          reply = await settleBy(this.olderGenerations(op, key, reply), deadline, timeoutMs);
        }
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS || isKeyLost(error) || pastDeadline(deadline)) throw error;
        await this.afterUnreachable(error, epoch, deadline);
        continue;
      }
      // (An older generation's node may answer STALE too: the job moved off it since.)
      if (attempt >= MAX_ATTEMPTS || pastDeadline(deadline)) return reply;
      if (reply.status === Status.STALE) {
        await this.refreshPast(reply.arg, deadline);
      } else if (reply.status === Status.FULL && op === Op.PUT) {
        await this.grow((refusedBy(reply) ?? this.owners(key)[0]!).id, epoch);
      } else {
        return reply;
      }
    }
  }

  /**
   * DELETE at the key's holders in every generation (frees a replaced manifest's blocks); true if one had it.
   * Each generation's holders delete as they write: the first orders it, the others take it as its replicas.
   */
  async deleteAtOwners(key: string, replaced: ReplacedValues): Promise<boolean> {
    const deadline = Date.now() + this.options.timeoutMs;
    for (let attempt = 1; ; attempt++) {
      let deleted = false;
      const epoch = this.placement.epoch;
      try {
        // Every generation's holders (every replica): a copy left anywhere would otherwise come back through GET.
        const done = new Set<string>();
        /** The epoch a node answered STALE with, or false. */
        let stale: number | false = false;
        // Not the remnants: what they hold is older than the delete's tombstone in the newer generations, which
        // reads see first, and which a restored copy does not overwrite (a dead holder there cannot block it).
        for (const holders of this.holders(key).slice(0, writtenGenerations(this.placement).length)) {
          const fresh = holders.filter((node) => !done.has(node.id));
          if (fresh.length === 0) continue;
          const reply = await writeReplicas(this, fresh, Op.DELETE, 0, key, null, deadline);
          if (reply.status === Status.STALE && attempt < MAX_ATTEMPTS && !pastDeadline(deadline)) {
            stale = reply.arg;
            break;
          }
          await replaced.afterReplace(key, reply);
          deleted ||= (reply.flags & Flag.EXISTED) !== 0;
          for (const node of fresh) done.add(node.id);
        }
        if (stale === false) return deleted;
        await this.refreshPast(stale, deadline);
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS || pastDeadline(deadline)) throw error;
        await this.afterUnreachable(error, epoch, deadline); // a node down: with replicas, the placement that replaces it
      }
    }
  }

  /** One LIST page from one node (list.ts, and a watch catching up). */
  async listPage(node: PlacementNode, prefix: string, after: string, pageSize: number): Promise<{ keys: string[]; more: boolean }> {
    const page = await this.listPageOrStale(node, prefix, after, pageSize);
    if ('stale' in page)
      throw new SatchelError('UNAVAILABLE', `the job's placement moved on (a node is at epoch ${page.stale}): try again`);
    return page;
  }

  /** One page of a node's keys; STALE (the job moved on from this placement) is `{ stale: the node's epoch }`. */
  async listPageOrStale(
    node: PlacementNode,
    prefix: string,
    after: string,
    pageSize: number,
  ): Promise<{ keys: string[]; more: boolean } | { stale: number }> {
    const reply = await this.callNode(node, Op.LIST, 0, pageSize, prefix, after.length > 0 ? Buffer.from(after) : null);
    if (reply.status === Status.STALE) return { stale: reply.arg };
    expectOk(reply);
    return { keys: decodeKeyList(reply.body), more: (reply.flags & Flag.MORE) !== 0 };
  }

  /**
   * A node could not be reached by a request sent under placement `epoch`. Maybe the placement moved on (the node
   * was drained and removed, and this handle started from an old ticket) or the job is gone: ask the metadata
   * server. Resolves when there is a newer placement than `epoch` to retry with (at once when another call of
   * this handle already fetched one); rejects with NO_SUCH_JOB for a job that is gone, else with the error itself —
   * or, when a single-copy job's placement marks the node that refused lost (it restarted since the job was placed
   * on it: control.proto PlacementNode.lost), with UNAVAILABLE saying its keys are gone. Never past the call's
   * `callDeadline` (deadline.ts).
   */
  async afterUnreachable(error: unknown, epoch: number, callDeadline = Infinity): Promise<void> {
    const replicated = this.placement.replicas > 1;
    // A frozen node times out rather than refusing: with replicas, that too is a node to be replaced.
    const retried = replicated ? REPLACEMENT_POLL.retries(error) : error instanceof SatchelError && error.code === 'UNAVAILABLE';
    if (!retried) throw error;
    if (this.placement.epoch !== epoch) return;
    // With replicas the controller replaces a dead node (it notices within seconds): wait for that placement,
    // within the operation's timeout, rather than fail a write the surviving replicas can take. A node that
    // answered it cannot serve the job now (refusedByNode: most often its lease lapsed while the controller was
    // slow to answer its reports, which a node killed mid-shuffle on a loaded machine caused in CI) stored
    // nothing and is likely to serve again shortly: after REFUSAL_PAUSE_MS without a new placement the caller asks
    // it again, each of its attempts.
    const refused = replicated && refusedByNode(error);
    const deadline = Math.min(
      callDeadline,
      Date.now() + (replicated ? (refused ? Math.min(REFUSAL_PAUSE_MS, this.options.timeoutMs) : this.options.timeoutMs) : 0),
    );
    for (let polls = 1; ; polls++) {
      try {
        await this.refresh();
      } catch (refreshError) {
        if (refreshError instanceof SatchelError && refreshError.code === 'NO_SUCH_JOB') throw refreshError;
        throw error;
      }
      if (this.placement.epoch !== epoch) return;
      if (!replicated) {
        const lost = lostNodeError(this.placement, error);
        if (lost !== undefined) throw lost;
      }
      const delay = REPLACEMENT_POLL.delay(polls);
      if (this.closed) throw error;
      if (Date.now() + delay > deadline) {
        if (refused && Date.now() + delay <= callDeadline) return;
        throw error;
      }
      await sleep(delay);
    }
  }

  /**
   * Asks the owners of `key` in older generations, newest first, until one has it. Past a node that remembers
   * deleting the key (Flag.DELETED, with the delete's version) a copy counts only when it is newer than that
   * delete: a DELETE reaches the generations newest first, and a read between its steps found the older
   * generation's copy of a value overwritten since (a stale read in the 10-minute nemesis, during a drain).
   * Then the remnants (a job with copies that lost a node: control.proto Generation.remnant), oldest: each asks
   * the key's live holders there at once; none live, and no newer delete, is `keyLostError`.
   */
  private async olderGenerations(op: number, key: string, notFound: Reply): Promise<Reply> {
    const seen: { deleted?: DeletedVersion } = { deleted: deletedVersion(notFound) };
    const remnants = this.placement.remnants ?? 0;
    const owners = this.owners(key, writtenGenerations(this.placement).length);
    for (const node of owners.slice(1)) {
      const reply = await this.askOlder(node, op, key, seen);
      if (reply !== null) return reply;
    }
    if (remnants === 0) return notFound;
    const asked = new Set(owners.map((node) => node.id));
    for (const holders of this.holders(key).slice(-remnants)) {
      // A node asked already answered for its whole store: nothing there, whichever generation asks — unless
      // the remnant marks it lost: that entry is an incarnation that died, and the id's new process placed
      // on the job again (controller/members.ts `rejoined`) never held what it did.
      if (holders.some((node) => node.lost !== true && asked.has(node.id))) continue;
      const live = holders.filter((node) => node.lost !== true);
      if (live.length === 0) {
        // Every copy died before it was restored: unknown, not absent (unless deleted since: a delete is newer).
        if (seen.deleted === undefined) throw keyLostError(this.placement, key, holders);
        continue;
      }
      // Every holder of a remnant had every acknowledged write: the first to answer does, a dead one costs nothing.
      const reply = await firstAnswer(live.map((node) => this.askOlder(node, op, key, seen)));
      if (reply !== null) return reply;
      for (const node of live) asked.add(node.id);
    }
    return notFound;
  }

  /**
   * One older generation's node asked for `key`: its answer, or null when it holds nothing newer than
   * `seen.deleted`, the newest delete seen so far (which its own newer delete replaces).
   */
  private async askOlder(node: PlacementNode, op: number, key: string, seen: { deleted?: DeletedVersion }): Promise<Reply | null> {
    const deleted = seen.deleted;
    if (deleted === undefined) {
      const reply = await this.callNode(node, op, 0, 0, key, null);
      if (reply.status !== Status.NOT_FOUND) return reply;
      seen.deleted = deletedVersion(reply);
      return null;
    }
    const versioned = await this.callNode(node, op, Flag.VERSION, 0, key, null);
    if (versioned.status === Status.NOT_FOUND) {
      const also = deletedVersion(versioned);
      if (also !== undefined && newerVersion(also.epoch, also.seq, deleted.epoch, deleted.seq)) seen.deleted = also;
      return null;
    }
    if (versioned.status !== Status.OK) return versioned;
    // Written again after the delete, and not yet copied forward: the plain answer (STAT's arg is the size).
    if (newerVersion(versioned.epoch, versioned.arg, deleted.epoch, deleted.seq)) return this.callNode(node, op, 0, 0, key, null);
    return null;
  }

  /** The nodes holding `key` in each generation (its replicas, primary first), newest generation first. */
  holders(key: string): PlacementNode[][] {
    const slot = keySlot(key);
    const replicas = this.placement.replicas;
    return this.placement.generations.map((nodes) =>
      (replicas === 1 ? [pickNode(nodes, slot)] : pickNodes(nodes, slot, replicas)).map((i) => nodes[i]!),
    );
  }

  /**
   * The nodes holding `key` in each generation (its replicas, primary first), newest first, each node once; only
   * the first `generations` when given.
   */
  owners(key: string, generations = this.placement.generations.length): PlacementNode[] {
    const slot = keySlot(key);
    const owners: PlacementNode[] = [];
    const replicas = this.placement.replicas;
    for (const nodes of this.placement.generations.slice(0, generations)) {
      const picked = replicas === 1 ? [pickNode(nodes, slot)] : pickNodes(nodes, slot, replicas);
      for (const index of picked) {
        const node = nodes[index];
        if (node !== undefined && !owners.some((o) => o.id === node.id)) owners.push(node);
      }
    }
    return owners;
  }

  /**
   * Every node of every generation but the remnants, once each: what list and watch cover. A remnant's live
   * holders are in the newer generations too (or their keys are in no listing: `listCoverage`), and it takes no writes.
   */
  everyNode(): PlacementNode[] {
    return [
      ...new Map(
        writtenGenerations(this.placement)
          .flat()
          .map((node) => [node.id, node]),
      ).values(),
    ];
  }

  /**
   * Throws UNAVAILABLE when a listing of `everyNode` would miss keys: a remnant slot none of whose holders is among
   * them (its copies died, or are on nodes lost or cut off before they were restored). By the entry's mark, not
   * only its id: a lost id placed on the job again (controller/members.ts `rejoined`) is listed, but its new
   * process never held what the marked entry did (a listing of a job whose two nodes both restarted went on
   * without the lost keys).
   */
  listCoverage(): void {
    const remnants = this.placement.remnants ?? 0;
    if (remnants === 0) return;
    const listed = new Set(this.everyNode().map((node) => node.id));
    const missed = (node: { id: string; lost?: boolean }) => node.lost === true || !listed.has(node.id);
    for (const nodes of this.placement.generations.slice(-remnants)) {
      if (!someSlotLost(nodes, this.placement.replicas, missed)) continue;
      const missing = nodes.filter(missed).map((node) => node.id);
      throw new SatchelError(
        'UNAVAILABLE',
        this.placement.replicas === 1
          ? `node ${missing.join(', ')} restarted since job ${this.jobId} was placed on it, and the job keeps one copy: a listing would miss the keys it held`
          : `job ${this.jobId} lost nodes ${missing.join(', ')} before the copies of some keys were restored: a listing would miss those keys`,
      );
    }
  }

  /** Whether `nodeId` is the first holder of `key` in some generation (with replicas, only its watch events count). */
  isPrimary(nodeId: string, key: string): boolean {
    if (this.placement.replicas === 1) return true;
    const slot = keySlot(key);
    return this.placement.generations.some((nodes) => nodes[pickNode(nodes, slot)]?.id === nodeId);
  }

  /**
   * A node answered FULL to a request routed under placement `seenEpoch`: ask the controller for room (a new
   * generation), then use the new placement. Calls that met FULL together share one GrowJob; one whose FULL comes
   * from an epoch already left behind (the job grew meanwhile) only retries with the newer placement.
   */
  grow(fullNodeId: string, seenEpoch: number): Promise<void> {
    if (this.placement.epoch > seenEpoch) return Promise.resolve();
    this.growthClient ??= this.controllerClient();
    const client = this.growthClient;
    this.growing ??= client
      .call('GrowJob', { jobId: this.jobId, token: this.parsed.token, fullNodeId, epoch: this.placement.epoch })
      .then((wire) => {
        this.placement = fromWirePlacement(wire);
      })
      .finally(() => {
        this.growing = null;
      });
    return this.growing;
  }

  /**
   * After STALE from a node that knows epoch `nodeEpoch`: a fresh placement, waiting a little for the metadata
   * servers while they still hold an older one than the node (the controller tells nodes first).
   */
  async refreshPast(nodeEpoch: number, callDeadline = Infinity): Promise<void> {
    await this.refresh();
    // Usually a few ms; up to the operation's timeout when the controller died between telling the nodes and
    // telling the metadata servers (its successor republishes what it had recorded).
    const deadline = Math.min(callDeadline, Date.now() + this.options.timeoutMs);
    for (let polls = 1; this.placement.epoch < nodeEpoch && Date.now() < deadline && !this.closed; polls++) {
      await sleep(METADATA_CATCH_UP.delay(polls));
      await this.refresh();
    }
  }

  /** The placement from a metadata server; calls made meanwhile share the one lookup. */
  refresh(): Promise<void> {
    this.refreshing ??= this.metadata.placement().then(
      (placement) => {
        this.placement = fromWirePlacement(placement);
        this.refreshing = null;
      },
      (error: unknown) => {
        this.refreshing = null;
        throw error;
      },
    );
    return this.refreshing;
  }

  /**
   * WatchHost: a watch following the job onto other nodes. A node announces a new epoch before the metadata
   * servers have it (controller/placement-publisher.ts): a lookup made at once may still get the old placement.
   */
  refreshPlacement(atLeast = 0): Promise<void> {
    this.checkOpen();
    return atLeast > this.placement.epoch ? this.refreshPast(atLeast) : this.refresh();
  }

  /** A client of the controller with this job's TLS and timeout (growth here; renewals and deregistration in satchel.ts). */
  controllerClient(): LightControlClient<ControllerMethods> {
    return new LightControlClient<ControllerMethods>(
      'satchel.v1.Controller',
      this.parsed.controller,
      this.options.timeoutMs,
      tlsOf(this.parsed),
    );
  }

  /**
   * Closes every connection once what it carries is answered, and the control-plane clients (after `closed` is
   * set); a connection left open and idle is kept a few seconds for the next handle of this token in the process
   * (idle-connections.ts), unless the job is gone (`jobGone`).
   */
  async close(jobGone = false): Promise<void> {
    const timeoutMs = this.options.timeoutMs;
    await Promise.all([...this.connections.values()].map((c) => (jobGone ? c.close() : closeOrKeep(c, timeoutMs))));
    if (jobGone) closeIdleOf(this.parsed.token);
    this.connections.clear();
    this.metadata.close();
    this.growthClient?.close();
  }
}

type DeletedVersion = { epoch: number; seq: number };

/**
 * The first of `answers` to resolve; rejects with the first rejection only when all reject (a dead or frozen
 * node among a remnant's holders costs nothing while another answers).
 */
function firstAnswer<T>(answers: Promise<T>[]): Promise<T> {
  if (answers.length === 1) return answers[0]!;
  return Promise.any(answers).catch((error: unknown) => {
    throw error instanceof AggregateError ? error.errors[0] : error;
  });
}

/** A cluster running with TLS puts its CA in the ticket: every connection of the job is TLS, checked against it. */
function tlsOf(ticket: Ticket): ClientTls | undefined {
  return ticket.tls === undefined ? undefined : { ca: ticket.tls.ca };
}

export function fromWirePlacement(wire: WirePlacement): Placement {
  const kept = wire.generations.filter((g) => g.nodes.length > 0);
  const generations = kept.map((g) => g.nodes);
  if (generations.length === 0) throw new SatchelError('UNAVAILABLE', `job ${wire.jobId} has no storage nodes yet`);
  // Remnants are the oldest generations (controller/replication.ts): counted, not flagged one by one.
  const remnants = kept.filter((g) => g.remnant === true).length;
  return {
    jobId: wire.jobId,
    epoch: wire.epoch,
    generations,
    blockSize: wire.blockSize,
    maxValueBytes: wire.maxValueBytes,
    replicas: Math.max(1, wire.replicas ?? 1),
    ...(remnants > 0 ? { remnants } : {}),
  };
}
