// The data-plane server of one storage node: accepts connections (TCP or TLS) and makes each a Session
// (session.ts, on connection.ts), and holds what they share: the engine, the jobs and their limits, the lease, the
// value pool, the body budget, metrics and the FULL refusals the controller link reports. Options and their
// defaults: server-options.ts.
import net from 'node:net';
import tls from 'node:tls';
import { SatchelError, TokenVerifier } from '../proto/index.ts';
import type { ClientConnection, SessionHost } from './client-connection.ts';
import { Coordination } from './coordination.ts';
import type { MaybePromise, StorageEngine, StoredEntry } from './engine.ts';
import { JobLimits } from './job-limits.ts';
import { JobTable } from './job-table.ts';
import { NodeMetrics } from './metrics.ts';
import { PeerLinks } from './peer-links.ts';
import type { PlacementLookup } from './placement-lookup.ts';
import { RecentIncrements } from './recent-increments.ts';
import { RespSession } from './resp/resp-session.ts';
import {
  DEFAULT_HELLO_TIMEOUT_MS,
  DEFAULT_MAX_INFLIGHT_BODIES,
  DEFAULT_MAX_OUTPUT,
  DEFAULT_MAX_PENDING,
  DEFAULT_MAX_PRE_AUTH_CONNECTIONS,
  DEFAULT_MAX_VALUE,
  DEFAULT_SOFT_OUTPUT,
  DEFAULT_SOFT_OUTPUT_MS,
  type StorageCounters,
  type StorageServerOptions,
} from './server-options.ts';
import { Session } from './session.ts';
import { ValuePool } from './value-pool.ts';

export { DEFAULT_HELLO_TIMEOUT_MS, PRE_AUTH_MAX_FRAMES, type StorageCounters, type StorageServerOptions } from './server-options.ts';

/** How long a TLS client has to complete its handshake before the node drops the connection. */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How often the value pool lets go of buffers that sat unused (it keeps what the period drew on). */
const POOL_TRIM_MS = 5_000;
/**
 * How long a job moved off is kept aside for its resync (`dropJob`). The controller tops the job up as soon as
 * the node reports again (controller/nodes.ts `topUpShortJobs`), within a second or two; a write that needs
 * the room takes it first (dram-engine.ts).
 */
export const KEPT_MS = 60_000;

/**
 * The data-plane server of one storage node: one Session per TCP connection, frames answered in the order
 * the engine finishes them (the DRAM engine finishes synchronously, so in arrival order).
 */
export class StorageServer implements SessionHost {
  readonly counters: StorageCounters = { ops: 0, bytesIn: 0, bytesOut: 0, connections: 0 };
  private readonly server: net.Server;
  /** The RESP front door (`listenResp`), when it was opened. */
  private respServer: net.Server | null = null;
  /** Where clients reach the RESP front door (what CLUSTER SLOTS names for this node without a placement). */
  respAddress: string | null = null;
  private readonly sessions = new Set<ClientConnection>();
  /** With TLS: every accepted TCP connection, its handshake done or not (close() ends them all). */
  private readonly rawSockets = new Set<net.Socket>();
  /** The jobs this node serves, their epochs, and those deregistered (job-table.ts). */
  readonly jobs: JobTable;
  /**
   * Until when (ms since 1970) the controller vouches for this node: replicated jobs are served only until then
   * (storage-node/README.md, "Leases"). Infinity without a controller. `fenced` is refreshed once per read.
   */
  private leaseUntil = Infinity;
  /** The lease had lapsed at the last read from a socket (`checkLease`): what requests are refused by. */
  leaseLapsed = false;
  readonly maxValueBytes: number;
  readonly maxPendingResponseBytes: number;
  /** Memory of large values let go of, reused for the next large PUT bodies. */
  readonly pool = new ValuePool();
  /** HELLO and AUTH tokens, checked against the cluster secret once each. */
  readonly tokens: TokenVerifier;
  /** Every few seconds the pool lets go of what sat unused (value-pool.ts `trim`). */
  private readonly poolTrimmer = setInterval(() => this.pool.trim(), POOL_TRIM_MS).unref();
  /** Operations, value bytes and service times (metrics.ts): `/metrics` and the latency in the node's reports. */
  readonly metrics: NodeMetrics;
  /** INCRs applied lately, by their tokens: a retried increment is not added twice (recent-increments.ts). */
  readonly increments = new RecentIncrements();
  /** WAIT and WATCH requests parked until a key appears or changes, within their caps (coordination.ts). */
  readonly coordination: Coordination;
  /** Connections to other nodes: a replicated job's RESP writes reach the key's other copies (peer-links.ts). */
  readonly peers: PeerLinks;
  /** Placements of jobs this node does not serve, for RESP clients that reach it (node.ts sets it with a controller). */
  lookup: PlacementLookup | null = null;

  /** Per-job limits: connections, and a stop on growth for a job over its byte quota (job-limits.ts). */
  readonly limits: JobLimits;

  readonly helloTimeoutMs: number;
  /** Connections without a successful HELLO yet, oldest first (`maxPreAuthConnections`). */
  private readonly strangers = new Set<ClientConnection>();
  private readonly maxPreAuthConnections: number;
  readonly maxOutputBytes: number;
  readonly softOutputBytes: number;
  readonly softOutputMs: number;
  readonly maxInflightBodyBytes: number;
  /** Request bodies received and not yet stored (async engines): past the budget, job connections are not read. */
  inflightBodyBytes = 0;
  /** Over the body budget: job connections pause at their next read, until half of it is written. */
  readsHeld = false;
  /** Sessions paused for the body budget, resumed when it drops. */
  private readonly heldSessions = new Set<ClientConnection>();

  /**
   * Writes refused FULL for want of room (the engine's capacity; not a job's quota), per job since the node
   * started: each report to the controller carries them (JobUsage.fullRefusals), and the controller grants a job
   * growth only once a node reported it FULL.
   */
  readonly fullRefusals = new Map<string, number>();
  /** Jobs refused FULL since the last report (`takeFullRefused`): the first of each asks for a report soon. */
  private fullSinceReport = new Set<string>();
  /** Jobs moved off whose entries are kept aside (`dropJob`), each until its timer gives them up. */
  private readonly keptTimers = new Map<string, NodeJS.Timeout>();
  /** Called when a job is first refused FULL since the last report (the controller link reports soon). */
  onFullRefusal: (() => void) | null = null;

  constructor(readonly options: StorageServerOptions) {
    this.limits = new JobLimits(options.maxConnectionsPerJob ?? 1024);
    this.tokens = new TokenVerifier(options.secret);
    this.coordination = new Coordination({ perConnection: options.maxParkedPerConnection, perJob: options.maxParkedPerJob });
    this.helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
    this.maxPreAuthConnections = options.maxPreAuthConnections ?? DEFAULT_MAX_PRE_AUTH_CONNECTIONS;
    if (!(this.helloTimeoutMs > 0 && this.helloTimeoutMs <= DEFAULT_HELLO_TIMEOUT_MS)) {
      throw new SatchelError('BAD_REQUEST', `helloTimeoutMs must be more than 0 and at most ${DEFAULT_HELLO_TIMEOUT_MS} ms`);
    }
    this.maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    this.softOutputBytes = options.softOutputBytes ?? DEFAULT_SOFT_OUTPUT;
    this.softOutputMs = options.softOutputMs ?? DEFAULT_SOFT_OUTPUT_MS;
    this.maxInflightBodyBytes = options.maxInflightBodyBytes ?? DEFAULT_MAX_INFLIGHT_BODIES;
    this.jobs = new JobTable(options.announcedJobsOnly !== true);
    this.peers = new PeerLinks({ secret: options.secret, tls: options.peerTls });
    this.metrics = new NodeMetrics({
      node: options.id,
      tier: options.engine.tier,
      gauges: {
        capacity: () => this.engine.capacity,
        used: () => this.engine.used,
        jobs: () => {
          let jobs = 0;
          for (const bytes of this.engine.usageByJob().values()) if (bytes > 0) jobs++;
          return jobs;
        },
        connections: () => this.counters.connections,
        waiters: () => this.coordination.waiters,
        watches: () => this.coordination.watches,
        inflightBodyBytes: () => this.inflightBodyBytes,
      },
    });
    this.maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE;
    this.maxPendingResponseBytes = options.maxPendingResponseBytes ?? DEFAULT_MAX_PENDING;
    this.server = this.createListener((socket) => new Session(this, socket));
  }

  /**
   * A TCP or TLS listener making each connection a session of one protocol. With TLS a session starts once the
   * handshake is done and reads decrypted 'data' chunks, as over plain TCP.
   */
  private createListener(make: (socket: net.Socket) => ClientConnection): net.Server {
    const options = this.options;
    let server: net.Server;
    if (options.tls === undefined) {
      server = net.createServer({ noDelay: true }, (socket) => this.accept(make(socket)));
    } else {
      const secure = tls.createServer(
        { cert: options.tls.cert, key: options.tls.key, noDelay: true, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS },
        (socket) => this.accept(make(socket)),
      );
      secure.on('connection', (raw: net.Socket) => {
        this.rawSockets.add(raw);
        raw.once('close', () => this.rawSockets.delete(raw));
      });
      // A client speaking plain TCP, or one that refuses the certificate: the connection is dropped.
      secure.on('tlsClientError', (error, socket) =>
        options.logger.debug({ err: error, remote: socket.remoteAddress }, 'TLS handshake failed'),
      );
      server = secure;
    }
    server.maxConnections = options.maxConnections ?? 4096;
    return server;
  }

  get engine(): StorageEngine {
    return this.options.engine;
  }

  listen(port = 0, host = '127.0.0.1'): Promise<string> {
    return bind(this.server, port, host);
  }

  /**
   * Opens the RESP front door (resp/): Redis clients of the node's jobs, over TLS when the node has it. Its
   * connections share everything with the frame protocol's: the jobs, limits, budgets and counts.
   */
  listenResp(port = 0, host = '127.0.0.1'): Promise<string> {
    if (this.respServer !== null) throw new SatchelError('BAD_REQUEST', 'the RESP front door is open already');
    this.respServer = this.createListener((socket) => new RespSession(this, socket));
    return bind(this.respServer, port, host);
  }

  /** Stops accepting, closes every connection, closes the engine. Idempotent. */
  async close(): Promise<void> {
    clearInterval(this.poolTrimmer);
    for (const timer of this.keptTimers.values()) clearTimeout(timer);
    this.keptTimers.clear();
    this.peers.close();
    this.lookup?.close();
    if (!this.server.listening && this.respServer?.listening !== true && this.sessions.size === 0) return;
    const closed = Promise.all(
      [this.server, this.respServer].map((server) =>
        server === null ? undefined : new Promise<void>((resolve) => server.close(() => resolve())),
      ),
    );
    for (const session of this.sessions) session.socket.destroy();
    for (const raw of this.rawSockets) raw.destroy();
    await closed;
    await this.engine.close();
  }

  /**
   * Deletes a job's data. A deregistered job is refused from now on; a job that `moved` (migrated to other
   * nodes) keeps its epoch, so a client still holding the old placement gets STALE and looks it up again.
   */
  dropJob(jobId: string, moved = false, tokensExpireBy = Infinity, keep = false): MaybePromise<number> {
    if (this.coordination.active > 0) this.coordination.dropped(jobId, moved, this.jobs.get(jobId)?.epoch ?? 0);
    this.peers.forget(jobId);
    this.forgetKept(jobId);
    if (moved) this.jobs.moved(jobId);
    else {
      this.jobs.drop(jobId, tokensExpireBy);
      this.fullRefusals.delete(jobId);
    }
    // A replicated job restored without this node (declared lost: frozen, cut off) is kept a while, out of reads,
    // when the controller asks (DropFlag.KEEP): placed here again, its unchanged keys come back without their
    // bytes travelling (engine.ts "Kept copies").
    // Before, the top-up copied every key again, and the survivor alone held the job for that long: an
    // outsider's kill -9 of it 2 s after the thaw (3,000 keys of 100 KB) left 2,173 keys UNAVAILABLE.
    if (moved && keep && this.engine.setAside !== undefined) {
      const kept = this.engine.setAside(jobId, this.retire);
      if (kept > 0) {
        this.keptTimers.set(jobId, setTimeout(() => this.forgetKept(jobId), KEPT_MS).unref());
        this.options.logger.info({ job: jobId, bytes: kept, forMs: KEPT_MS }, 'moved job kept aside for a resync');
      }
      return 0;
    }
    return this.engine.dropJob(jobId, this.retire);
  }

  /** Gives up what is kept of a job moved off (`dropJob`), if anything. */
  private forgetKept(jobId: string): void {
    const timer = this.keptTimers.get(jobId);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.keptTimers.delete(jobId);
    this.engine.dropKept?.(jobId);
  }

  /**
   * The controller answered a report (or the registration) this node sent at `sentAt`: replicated jobs may be
   * served until `sentAt + leaseMs`. The controller declares a node lost only after a longer silence, so a node
   * cut off from it (or frozen) stops serving them before their copies are restored elsewhere, and a client
   * holding an old placement cannot read from it what other nodes have since overwritten.
   */
  renewLease(sentAt: number, leaseMs: number): void {
    const until = sentAt + leaseMs;
    if (until <= this.leaseUntil && this.leaseUntil !== Infinity) return;
    this.leaseUntil = until;
    if (this.leaseLapsed && until > Date.now()) {
      this.leaseLapsed = false;
      this.options.logger.info('lease renewed: serving replicated jobs again');
    }
  }

  /** Once per read from a socket: one clock read, only once a controller has granted a lease. */
  checkLease(): void {
    if (this.leaseUntil === Infinity || this.leaseLapsed || Date.now() < this.leaseUntil) return;
    this.leaseLapsed = true;
    this.options.logger.warn(
      { since: new Date(this.leaseUntil).toISOString() },
      'lease lapsed (no report answered by the controller): refusing replicated jobs',
    );
  }

  /** Whether the lease has lapsed now (for reports and tests; requests go by `leaseLapsed`). */
  get fenced(): boolean {
    return this.leaseUntil !== Infinity && Date.now() >= this.leaseUntil;
  }

  /**
   * An entry left the engine (replaced, deleted, its job dropped): its buffer goes back to the pool now, or
   * when the last send of it by reference finishes. Without this every large value read once became garbage
   * for V8 to find — 40 MB/s of it in `bench soak` — and the node's RSS rose to whatever peak of garbage the
   * collector let build up (glibc keeps freed heap: STORAGE_NODE_ENV).
   */
  readonly retire = (entry: StoredEntry): void => {
    if (entry.pinned === true) return;
    if ((entry.lent ?? 0) > 0) entry.retired = true;
    // A small value of the memory tier is nobody's once it left the engine (ValuePool.keepSmall); a disk engine's
    // values are its own to recycle.
    else if (!(this.engine.tier === 'dram' && this.pool.keepSmall(entry.value))) this.pool.release(entry.value);
  };

  /** A send of `entry`'s value by reference finished (written or the connection gone). */
  sentByReference(entry: StoredEntry): void {
    entry.lent = (entry.lent ?? 1) - 1;
    if (entry.lent === 0 && entry.retired === true) {
      entry.retired = undefined;
      this.pool.release(entry.value);
    }
  }

  /** An engine refused a write of `jobId` FULL for want of room. */
  fullRefused(jobId: string): void {
    this.fullRefusals.set(jobId, (this.fullRefusals.get(jobId) ?? 0) + 1);
    if (this.fullSinceReport.has(jobId)) return;
    this.fullSinceReport.add(jobId);
    this.onFullRefusal?.();
  }

  /** A report is being made: the next FULL of each job asks for another one soon. */
  takeFullRefused(): ReadonlySet<string> {
    const since = this.fullSinceReport;
    this.fullSinceReport = new Set();
    return since;
  }

  /** `bytes` of a request body wait for an async engine's write (`result`): counted against the body budget. */
  bodyInFlight(result: Promise<unknown>, bytes: number): void {
    this.inflightBodyBytes += bytes;
    if (!this.readsHeld && this.inflightBodyBytes > this.maxInflightBodyBytes) {
      this.readsHeld = true;
      this.options.logger.warn(
        { inflightBodyBytes: this.inflightBodyBytes, limit: this.maxInflightBodyBytes },
        'request bodies in flight over budget: job connections not read until half is written',
      );
    }
    const done = () => {
      this.inflightBodyBytes -= bytes;
      if (this.readsHeld && this.inflightBodyBytes <= this.maxInflightBodyBytes / 2) this.releaseReads();
    };
    result.then(done, done);
  }

  /** A session paused itself for the body budget (at its first read past it). */
  held(session: ClientConnection): void {
    this.heldSessions.add(session);
  }

  /** The session's HELLO succeeded: it is no stranger any more. */
  introduced(session: ClientConnection): void {
    this.strangers.delete(session);
  }

  private releaseReads(): void {
    this.readsHeld = false;
    const held = [...this.heldSessions];
    this.heldSessions.clear();
    for (const session of held) session.unhold();
  }

  private accept(session: ClientConnection): void {
    const socket = session.socket;
    this.sessions.add(session);
    this.counters.connections++;
    this.strangers.add(session);
    if (this.strangers.size > this.maxPreAuthConnections) {
      const oldest = this.strangers.values().next().value!;
      this.strangers.delete(oldest);
      oldest.crowdedOut(this.maxPreAuthConnections);
    }
    socket.on('close', () => {
      this.strangers.delete(session);
      this.sessions.delete(session);
      this.heldSessions.delete(session);
      if (this.coordination.active > 0) this.coordination.ownerClosed(session);
      session.released();
      this.counters.connections--;
    });
  }
}

/** Listens on `host:port` (0: any free port); resolves with the address bound. */
function bind(server: net.Server, port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as net.AddressInfo;
      resolve(`${host}:${address.port}`);
    });
  });
}
