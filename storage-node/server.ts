import { isUtf8 } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import {
  COPY_THRESHOLD,
  Flag,
  FrameDecoder,
  FrameWriter,
  HEADER_SIZE,
  MAX_KEY_BYTES,
  DEFAULT_WAIT_MS,
  DROP_MOVED,
  MAX_WAIT_MS,
  Op,
  encodeKeyList,
  SatchelError,
  Status,
  statusOf,
  verifyToken,
  type FrameView,
  type StatusCode,
  type TokenScope,
} from '../proto/index.ts';
import { Coordination, type ParkedOwner } from './coordination.ts';
import { JobLimits } from './job-limits.ts';
import { JobTable } from './job-table.ts';
import { RecentIncrements, type Increment } from './recent-increments.ts';
import type { DeleteOutcome, ListPage, MaybePromise, PutOutcome, StorageEngine, StoredEntry } from './engine.ts';
import { NodeMetrics, opKindOf, type DisconnectReason } from './metrics.ts';
import { ValuePool } from './value-pool.ts';

export interface StorageServerOptions {
  id: string;
  engine: StorageEngine;
  /** The cluster secret: tokens are checked against it on HELLO. */
  secret: Uint8Array;
  logger: Logger;
  /** Largest value one frame may carry (bigger values are split into blocks by the client). */
  maxValueBytes?: number;
  /** Stop reading from a connection while this many response bytes wait to be sent to it. */
  maxPendingResponseBytes?: number;
  maxConnections?: number;
  /**
   * Serve TLS only, with this certificate and key (PEM); clients are not asked for a certificate (their job
   * token says who they are). Without it, plain TCP.
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Connections one job may hold open to this node (default 1024); a HELLO past it gets FULL. */
  maxConnectionsPerJob?: number;
  /** This process's boot id (node.ts): announcements for another incarnation of the node id are refused. */
  bootId?: string;
  /**
   * Serve a job only once the controller announced it (ANNOUNCE): what every node with a controller does
   * (job-table.ts). False (the default for a bare server: unit tests, tools): any job with a valid token.
   */
  announcedJobsOnly?: boolean;
  /**
   * A connection that has not completed a HELLO this long after it opened is closed (default and at most
   * 10,000 ms). Before its HELLO a connection gets at most PRE_AUTH_MAX_FRAMES frames answered.
   */
  helloTimeoutMs?: number;
  /**
   * Connections at once that have not completed a HELLO (default 1,024). One more closes the oldest of them:
   * strangers holding sockets open cannot take every connection slot (`maxConnections`) for the HELLO deadline,
   * and a function, which sends its HELLO first thing, is a stranger for one round trip only.
   */
  maxPreAuthConnections?: number;
  /**
   * Output limits per connection, as Redis's client-output-buffer-limit for pub/sub: a connection whose unsent
   * events and woken WAITs (what the node pushes to it unasked) pass `maxOutputBytes` (default 8 MiB), or stay
   * above `softOutputBytes` (default 2 MiB) for `softOutputMs` (default 10 s), is closed when the node next
   * pushes to it. Answers to its own requests do not count: `maxPendingResponseBytes` holds them back already
   * (the node stops reading from it).
   */
  maxOutputBytes?: number;
  softOutputBytes?: number;
  softOutputMs?: number;
  /** WAITs and WATCHes one connection may have parked (default 1,000); past it they get FULL. */
  maxParkedPerConnection?: number;
  /** WAITs and WATCHes one job may have parked on this node (default 10,000); past it they get FULL. */
  maxParkedPerJob?: number;
  /**
   * Bytes of request bodies the node holds received but not yet stored (an async engine's writes in flight),
   * over every connection (default 128 MiB): past it the node stops reading job connections until half of it
   * is written. The DRAM engine stores a body as it arrives, so it never gets near.
   */
  maxInflightBodyBytes?: number;
  /**
   * Whether a job's data token (v2, what tickets carry) may write copies (Flag.COPY on PUT and INCR): the
   * client does, bringing a counter forward from an older placement generation and handing an increment to a
   * counter's other copies (client/job.ts `bringForward`, `tellIncrement`). Default true. False: only the
   * controller's own tokens (internal scope) may. LIST of internal keys and DELETE of a copy are theirs only,
   * whatever this says.
   */
  dataTokenCopies?: boolean;
}

export interface StorageCounters {
  ops: number;
  bytesIn: number;
  bytesOut: number;
  connections: number;
}

const DEFAULT_MAX_VALUE = 16 * 1024 * 1024;
/** How long a TLS client has to complete its handshake before the node drops the connection. */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How often the value pool lets go of buffers that sat unused (it keeps what the period drew on). */
const POOL_TRIM_MS = 5_000;
const DEFAULT_MAX_PENDING = 8 * 1024 * 1024;
/** The HELLO deadline's default, and the most it may be set to. */
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;
/**
 * Frames a connection may send before a successful HELLO (PINGs, a refused oversize frame, the HELLO itself);
 * the next one closes it. Each answer is a header and a short message, so a stranger makes the node write at
 * most ~2 KiB. The client sends its HELLO first and no PING before it.
 */
export const PRE_AUTH_MAX_FRAMES = 16;
const DEFAULT_MAX_PRE_AUTH_CONNECTIONS = 1_024;
const DEFAULT_MAX_OUTPUT = 8 * 1024 * 1024;
const DEFAULT_SOFT_OUTPUT = 2 * 1024 * 1024;
const DEFAULT_SOFT_OUTPUT_MS = 10_000;
const DEFAULT_MAX_INFLIGHT_BODIES = 128 * 1024 * 1024;
/** A connection the node ended (after a refusal) that its peer keeps open is destroyed after this long. */
const CLOSE_GRACE_MS = 5_000;
const MAX_LIST_PAGE = 1000;
const DEFAULT_LIST_PAGE = 100;

function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

/**
 * The data-plane server of one storage node: one Session per TCP connection, frames answered in the order
 * the engine finishes them (the DRAM engine finishes synchronously, so in arrival order).
 */
export class StorageServer {
  readonly counters: StorageCounters = { ops: 0, bytesIn: 0, bytesOut: 0, connections: 0 };
  private readonly server: net.Server;
  private readonly sessions = new Set<Session>();
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
  /** Every few seconds the pool lets go of what sat unused (value-pool.ts `trim`). */
  private readonly poolTrimmer = setInterval(() => this.pool.trim(), POOL_TRIM_MS).unref();
  /** Operations, value bytes and service times (metrics.ts): `/metrics` and the latency in the node's reports. */
  readonly metrics: NodeMetrics;
  /** INCRs applied lately, by their tokens: a retried increment is not added twice (recent-increments.ts). */
  readonly increments = new RecentIncrements();
  /** WAIT and WATCH requests parked until a key appears or changes, within their caps (coordination.ts). */
  readonly coordination: Coordination;

  /** Per-job limits: connections, and a stop on growth for a job over its byte quota (job-limits.ts). */
  readonly limits: JobLimits;

  readonly helloTimeoutMs: number;
  /** Connections without a successful HELLO yet, oldest first (`maxPreAuthConnections`). */
  private readonly strangers = new Set<Session>();
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
  private readonly heldSessions = new Set<Session>();

  /**
   * Writes refused FULL for want of room (the engine's capacity; not a job's quota), per job since the node
   * started: each report to the controller carries them (JobUsage.fullRefusals), and the controller grants a job
   * growth only once a node reported it FULL.
   */
  readonly fullRefusals = new Map<string, number>();
  /** Jobs refused FULL since the last report (`takeFullRefused`): the first of each asks for a report soon. */
  private fullSinceReport = new Set<string>();
  /** Called when a job is first refused FULL since the last report (the controller link reports soon). */
  onFullRefusal: (() => void) | null = null;

  constructor(readonly options: StorageServerOptions) {
    this.limits = new JobLimits(options.maxConnectionsPerJob ?? 1024);
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
    if (options.tls === undefined) {
      this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    } else {
      // A session starts once the handshake is done and reads decrypted 'data' chunks, as over plain TCP.
      const server = tls.createServer(
        { cert: options.tls.cert, key: options.tls.key, noDelay: true, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS },
        (socket) => this.accept(socket),
      );
      server.on('connection', (raw: net.Socket) => {
        this.rawSockets.add(raw);
        raw.once('close', () => this.rawSockets.delete(raw));
      });
      // A client speaking plain TCP, or one that refuses the certificate: the connection is dropped.
      server.on('tlsClientError', (error, socket) => options.logger.debug({ err: error, remote: socket.remoteAddress }, 'TLS handshake failed'));
      this.server = server;
    }
    this.server.maxConnections = options.maxConnections ?? 4096;
  }

  get engine(): StorageEngine {
    return this.options.engine;
  }

  listen(port = 0, host = '127.0.0.1'): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address() as net.AddressInfo;
        resolve(`${host}:${address.port}`);
      });
    });
  }

  /** Stops accepting, closes every connection, closes the engine. Idempotent. */
  async close(): Promise<void> {
    clearInterval(this.poolTrimmer);
    if (!this.server.listening && this.sessions.size === 0) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) session.socket.destroy();
    for (const raw of this.rawSockets) raw.destroy();
    await closed;
    await this.engine.close();
  }

  /**
   * Deletes a job's data. A deregistered job is refused from now on; a job that `moved` (migrated to other
   * nodes) keeps its epoch, so a client still holding the old placement gets STALE and looks it up again.
   */
  dropJob(jobId: string, moved = false, tokensExpireBy = Infinity): MaybePromise<number> {
    if (this.coordination.active > 0) this.coordination.dropped(jobId, moved, this.jobs.get(jobId)?.epoch ?? 0);
    if (moved) this.jobs.moved(jobId);
    else {
      this.jobs.drop(jobId, tokensExpireBy);
      this.fullRefusals.delete(jobId);
    }
    return this.engine.dropJob(jobId, this.retire);
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
    this.options.logger.warn({ since: new Date(this.leaseUntil).toISOString() }, 'lease lapsed (no report answered by the controller): refusing replicated jobs');
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
    else this.pool.release(entry.value);
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
      this.options.logger.warn({ inflightBodyBytes: this.inflightBodyBytes, limit: this.maxInflightBodyBytes }, 'request bodies in flight over budget: job connections not read until half is written');
    }
    const done = () => {
      this.inflightBodyBytes -= bytes;
      if (this.readsHeld && this.inflightBodyBytes <= this.maxInflightBodyBytes / 2) this.releaseReads();
    };
    result.then(done, done);
  }

  /** A session paused itself for the body budget (at its first read past it). */
  held(session: Session): void {
    this.heldSessions.add(session);
  }

  /** The session's HELLO succeeded: it is no stranger any more. */
  introduced(session: Session): void {
    this.strangers.delete(session);
  }

  private releaseReads(): void {
    this.readsHeld = false;
    const held = [...this.heldSessions];
    this.heldSessions.clear();
    for (const session of held) session.unhold();
  }

  private accept(socket: net.Socket): void {
    const session = new Session(this, socket);
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

/** One client connection: HELLO first, then any number of pipelined requests. */
class Session implements ParkedOwner {
  private readonly decoder: FrameDecoder;
  private readonly writer: FrameWriter;
  private jobId: string | null = null;
  /** The job this connection counts against (its limit of connections), once its HELLO was admitted. */
  private admitted: string | null = null;
  /** When the HELLO's token expires (ms since 1970; Infinity: never): from then on every request is refused. */
  private expiresAt = Infinity;
  private admin = false;
  /** What the HELLO's token opens (proto/token.ts); null before a HELLO succeeded. */
  private scope: TokenScope | null = null;
  private closing = false;
  /** The node ended the connection (after `closing`): it is destroyed if the peer does not close it in time. */
  private ended = false;
  /** Not read: its answers back up (`maxPendingResponseBytes`). */
  private paused = false;
  /** Not read: request bodies over the node's budget (`StorageServer.bodyInFlight`). */
  private held = false;
  private flushScheduled = false;
  /** Closes the connection unless a HELLO succeeds first; then, once the node ended it, unless the peer closes. */
  private timer: NodeJS.Timeout | null;
  /** Frames received before a HELLO succeeded (at most PRE_AUTH_MAX_FRAMES are answered). */
  private preAuthFrames = 0;
  /**
   * Output pushed unasked (events, woken WAITs) and not yet written, for the output limits. `written` counts every
   * byte handed to the writer; what the socket has written is `written` less what it and the writer still hold.
   * `pushEnds`/`pushBytes` (from `pushHead` on) are runs of pushed frames, each ending at a position of `written`
   * (consecutive pushes share a run), `pushQueued` their total; runs wholly written are dropped as they are
   * passed. Answers to the connection's own requests are not counted: they are bounded by no longer reading from
   * it (`flush`).
   */
  private written = 0;
  private readonly pushEnds: number[] = [];
  private readonly pushBytes: number[] = [];
  private pushHead = 0;
  private pushQueued = 0;
  /** Since when (ms since 1970) unsent output has been over the soft limit; 0: it is not. */
  private overSoftSince = 0;
  /**
   * The op being answered (metrics.ts OpKind; -1: none): `respond` records it, timed (or sampled) on the
   * metrics' clock (metrics.ts `NodeMetrics.clock`).
   */
  private opKind = -1;

  constructor(
    private readonly server: StorageServer,
    readonly socket: net.Socket,
  ) {
    this.writer = new FrameWriter(socket);
    this.decoder = new FrameDecoder({
      // Until a HELLO succeeds a frame carries at most a token: a stranger cannot make the node buffer a value.
      maxBody: MAX_KEY_BYTES,
      onFrame: (frame) => this.onFrame(frame),
      onOversize: (frame) => {
        if (this.closing || this.preAuthOver()) return;
        this.opKind = opKindOf(frame.code);
        this.fail(frame.id, frame.epoch, 'TOO_LARGE', `value of ${frame.bodyLength} bytes exceeds the node's limit of ${server.maxValueBytes}`);
        this.opKind = -1;
      },
      onError: (error) => this.protocolError(error),
      allocate: (size) => server.pool.allocate(size),
    });
    this.timer = setTimeout(this.helloDeadline, server.helloTimeoutMs);
    socket.on('data', (chunk: Buffer) => {
      server.counters.bytesIn += chunk.length;
      server.checkLease();
      server.metrics.markFree();
      this.decoder.push(chunk);
      this.scheduleFlush();
      // Over the node's budget for bodies in flight, a job connection stops being read after this chunk.
      if (server.readsHeld && !this.held && this.jobId !== null) {
        this.held = true;
        server.held(this);
        socket.pause();
      }
    });
    socket.on('drain', () => {
      if (this.paused) {
        this.paused = false;
        if (!this.held) socket.resume();
      }
    });
    socket.on('error', (error) => server.options.logger.debug({ err: error }, 'connection error'));
  }

  /** The body budget has room again (the server forgot this session when it called). */
  unhold(): void {
    this.held = false;
    if (!this.paused && !this.socket.destroyed) this.socket.resume();
  }

  private readonly helloDeadline = () => {
    this.timer = null;
    if (this.jobId !== null || this.admin) return;
    this.disconnect('hello_timeout', `no HELLO within ${this.server.helloTimeoutMs} ms`, 'debug');
  };

  /** Too many connections without a HELLO: this one, the oldest, makes room. */
  crowdedOut(limit: number): void {
    this.disconnect('pre_auth_crowded', `the oldest of more than ${limit} connections without a HELLO`, 'debug');
  }

  /** Before a successful HELLO: counts a frame, and closes the connection once past PRE_AUTH_MAX_FRAMES. */
  private preAuthOver(): boolean {
    if (this.jobId !== null || this.admin || ++this.preAuthFrames <= PRE_AUTH_MAX_FRAMES) return false;
    // The answers given so far go out, then the connection ends (`flush`); nothing more is read from it.
    this.closing = true;
    this.server.metrics.disconnected('pre_auth_output');
    this.server.options.logger.debug({ remote: this.socket.remoteAddress, reason: 'pre_auth_output' }, `closing connection: more than ${PRE_AUTH_MAX_FRAMES} frames before a HELLO`);
    this.flush();
    return true;
  }

  /**
   * Closes the connection now (what is queued for it is dropped), for `reason`: logged, and counted in the
   * node's metrics (`satchel_node_clients_disconnected_total`).
   */
  private disconnect(reason: DisconnectReason, why: string, level: 'debug' | 'warn', details: Record<string, unknown> = {}): void {
    if (this.socket.destroyed) return;
    this.closing = true;
    this.server.metrics.disconnected(reason);
    this.server.options.logger[level]({ remote: this.socket.remoteAddress, job: this.jobId, reason, ...details }, `closing connection: ${why}`);
    this.socket.destroy();
  }

  /** Bytes pushed unasked (events, woken WAITs) that the socket has not written yet. */
  private unsentPushed(): number {
    const sent = this.written - this.socket.writableLength - this.writer.pendingBytes;
    const ends = this.pushEnds;
    let head = this.pushHead;
    while (head < ends.length && ends[head]! <= sent) this.pushQueued -= this.pushBytes[head++]!;
    if (head === ends.length) {
      ends.length = 0;
      this.pushBytes.length = 0;
      head = 0;
    } else if (head > 1024 && head * 2 > ends.length) {
      ends.splice(0, head);
      this.pushBytes.splice(0, head);
      head = 0;
    }
    this.pushHead = head;
    if (head === ends.length) return 0;
    // The oldest run may be partly written.
    const partly = sent - (ends[head]! - this.pushBytes[head]!);
    return this.pushQueued - (partly > 0 ? partly : 0);
  }

  /**
   * After an answer nobody asked for just now (an event, a woken WAIT): a connection that does not read them
   * is closed once what was pushed to it and is still unsent passes the hard limit, or has stayed over the soft
   * one too long. Answers to its own requests are bounded by no longer reading from it (`flush`), but events
   * for it keep coming.
   */
  private checkOutput(): void {
    const unsent = this.unsentPushed();
    const server = this.server;
    if (unsent <= server.softOutputBytes) {
      this.overSoftSince = 0;
      return;
    }
    if (unsent > server.maxOutputBytes) {
      this.disconnect('output_buffer', `${unsent} bytes of events unread, over the limit of ${server.maxOutputBytes}`, 'warn', { unsent, limit: server.maxOutputBytes });
      return;
    }
    const now = Date.now();
    if (this.overSoftSince === 0) this.overSoftSince = now;
    else if (now - this.overSoftSince > server.softOutputMs) {
      this.disconnect('output_buffer', `events unread, over ${server.softOutputBytes} bytes for ${server.softOutputMs} ms`, 'warn', { unsent, limit: server.softOutputBytes });
    }
  }

  /**
   * Answers go out once per turn of the event loop (setImmediate runs after every read libuv had ready), not
   * once per read: a stream of 64 KiB PUTs arrives one per read, and a write per PUT cost the node a quarter
   * of its time in write syscalls. This batches like Redis's beforeSleep.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushNow);
  }

  private readonly flushNow = () => {
    this.flushScheduled = false;
    if (!this.socket.destroyed) this.flush();
  };

  private flush(): void {
    if (this.writer.pendingBytes > 0) this.writer.flush();
    // Even with nothing left to flush: the writer may have sent the closing answer by itself (it flushes once
    // 256 KiB are queued), and the connection must still end.
    if (this.closing) {
      if (this.ended) return;
      this.ended = true;
      this.socket.end();
      // Nothing more is read from it; a peer that keeps its side open (one that never reads, say) does not keep
      // the socket.
      this.socket.pause();
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
      this.timer.unref();
      return;
    }
    // Backpressure: a client that does not read its answers stops being read, so it cannot grow our memory.
    if (!this.paused && this.socket.writableLength > this.server.maxPendingResponseBytes) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private protocolError(error: SatchelError): void {
    if (this.closing) return; // already answered and ended: nothing more may be written
    this.server.options.logger.warn({ remote: this.socket.remoteAddress, reason: error.message }, 'closing connection: malformed frame');
    this.fail(0, 0, 'BAD_REQUEST', error.message);
    this.closing = true;
    this.flush();
  }

  /** GET/STAT of a key this node does not hold: NOT_FOUND, with the version of its delete when it remembers one. */
  private notFound(engine: StorageEngine, jobId: string, key: string, id: number, epoch: number): void {
    const deleted = engine.deletedAt(jobId, key);
    if (deleted === undefined) this.respond(Status.NOT_FOUND, 0, id, epoch, 0, null);
    else this.respond(Status.NOT_FOUND, Flag.DELETED, id, deleted.epoch, deleted.seq, null);
  }

  private respond(status: StatusCode, flags: number, id: number, epoch: number, arg: number, body: Uint8Array | null, sent?: () => void): void {
    // Counted here, not at flush: the writer also flushes by itself once enough is queued.
    this.server.counters.bytesOut += HEADER_SIZE + (body === null ? 0 : body.length);
    this.written += HEADER_SIZE + (body === null ? 0 : body.length);
    this.writer.frame(status, flags, id, epoch, arg, '', body, sent);
    if (this.opKind >= 0) {
      this.server.metrics.record(this.opKind, status);
      this.opKind = -1;
    }
  }

  /** The connection closed: it no longer counts against its job's connections. */
  released(): void {
    if (this.admitted !== null) this.server.limits.release(this.admitted);
    this.admitted = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** An answer to a parked WAIT or WATCH (coordination.ts), outside the request being handled. */
  push(status: StatusCode, flags: number, id: number, epoch: number, arg: number, key: string, body: Uint8Array | null): void {
    if (this.socket.destroyed || this.closing) return;
    const bytes = HEADER_SIZE + (key.length === 0 ? 0 : Buffer.byteLength(key)) + (body === null ? 0 : body.length);
    this.server.counters.bytesOut += bytes;
    // One run for pushes back to back (no answer written between them).
    const runs = this.pushEnds.length;
    if (runs > this.pushHead && this.pushEnds[runs - 1] === this.written) {
      this.pushEnds[runs - 1]! += bytes;
      this.pushBytes[runs - 1]! += bytes;
    } else {
      this.pushEnds.push(this.written + bytes);
      this.pushBytes.push(bytes);
    }
    this.written += bytes;
    this.pushQueued += bytes;
    this.writer.frame(status, flags, id, epoch, arg, key, body);
    this.scheduleFlush();
    this.checkOutput();
  }

  private fail(id: number, epoch: number, code: SatchelError['code'], message: string): void {
    this.respond(statusOf(code), 0, id, epoch, 0, Buffer.from(message));
  }

  /** The node's service time runs from here to the answer being queued (`respond`). */
  private onFrame(f: FrameView): void {
    if (this.closing || this.preAuthOver()) return;
    this.opKind = opKindOf(f.code);
    this.server.metrics.beginOp();
    this.handle(f);
    if (this.opKind >= 0) {
      // Left to an engine's promise (settle kept the kind and start): the session is free from now.
      this.opKind = -1;
      this.server.metrics.markFree();
    }
  }

  private handle(f: FrameView): void {
    this.server.counters.ops++;
    // `f` is reused for the next frame: an async engine's callbacks must use these copies, not `f`.
    const op = f.code;
    const id = f.id;
    const epoch = f.epoch;
    const key = f.keyLength === 0 ? '' : f.buf.toString('utf8', f.bodyStart, f.bodyStart + f.keyLength);
    if (op === Op.HELLO) return this.hello(id, key);
    if (op === Op.PING) return this.respond(Status.OK, 0, id, 0, 0, null);
    if (this.jobId === null && !this.admin) {
      this.fail(id, epoch, 'UNAUTHORIZED', 'HELLO with a token must come first');
      this.closing = true;
      return;
    }
    // Keys are UTF-8. Other bytes would decode to U+FFFD, 3 bytes each when the key goes back out (LIST, WATCH
    // events): longer than a frame's key may be, and different byte strings would land on one key.
    if (f.keyLength > 0 && key.includes('\ufffd') && !isUtf8(f.buf.subarray(f.bodyStart, f.bodyStart + f.keyLength))) {
      return this.fail(id, epoch, 'BAD_REQUEST', 'key is not valid UTF-8');
    }
    if (this.admin) return this.adminOp(f, key);
    // A job's token opens that job's data and nothing else (checked before the epoch: no STALE to learn from).
    if (op === Op.DROP_JOB || op === Op.ANNOUNCE || op === Op.LIMIT_JOB) return this.fail(id, epoch, 'UNAUTHORIZED', 'admin operations need the admin token');
    // Internal keys and copies are the controller's (its tokens are internal scope). A copy's version is taken as
    // it comes; a data token may write one only as the client does (PUT and INCR, `dataTokenCopies`).
    if ((f.flags & (Flag.COPY | Flag.INTERNAL_KEYS)) !== 0 && this.scope !== 'internal') {
      const clientCopy = (f.flags & Flag.INTERNAL_KEYS) === 0 && (op === Op.PUT || op === Op.INCR) && this.server.options.dataTokenCopies !== false;
      if (!clientCopy) return this.fail(id, epoch, 'UNAUTHORIZED', `${(f.flags & Flag.INTERNAL_KEYS) !== 0 ? 'internal keys' : 'copies'} need the controller's token, not a job's data token`);
    }
    // One clock read per request, only for tokens that expire (the controller's do).
    if (this.expiresAt !== Infinity && Date.now() >= this.expiresAt) return this.fail(id, epoch, 'UNAUTHORIZED', 'token expired');
    const jobId = this.jobId!;
    const jobs = this.server.jobs;
    if (jobs.dropped.has(jobId)) return this.fail(id, epoch, 'NO_SUCH_JOB', `job ${jobId} was deregistered`);
    // Ending a parked request is about this connection, not the placement: no epoch check.
    if (op === Op.CANCEL) return this.respond(Status.OK, 0, id, epoch, this.server.coordination.cancel(this, f.arg) ? 1 : 0, null);
    const job = jobs.get(jobId);
    // Never NOT_FOUND for a job this process was not given: it may have held the key before a restart.
    if (job === undefined) return this.fail(id, epoch, 'UNAVAILABLE', `node ${this.server.options.id} does not hold job ${jobId}: not placed on it, or the node restarted since`);
    // A copy's epoch is its version's, not a placement (Flag.COPY): the controller orders its own changes.
    if (job.moved || (epoch < job.epoch && (f.flags & Flag.COPY) === 0)) return this.respond(Status.STALE, 0, id, job.epoch, job.epoch, null);
    // Only the controller raises a job's epoch. A frame ahead of the announced one would store its write at that
    // epoch, and every write of the job at its real epoch would then be STALE on the key: refused, and the
    // client asks again (the controller announces an epoch to every node before any client learns of it). A
    // copy's version is never above the epoch the controller announced. The controller's own reads are served:
    // a restoration reads the keys of a node declared lost (never told the new epoch) at the new placement's.
    if (epoch > job.epoch && this.server.options.announcedJobsOnly === true && !(this.scope === 'internal' && (op === Op.GET || op === Op.STAT || op === Op.LIST))) {
      return this.fail(id, epoch, 'UNAVAILABLE', `node ${this.server.options.id} has not been told of placement epoch ${epoch} yet (job ${jobId} is at ${job.epoch} here)`);
    }
    // Copies (COPY, VERSION, INTERNAL_KEYS: the controller's restorations and migrations, a counter's replicas)
    // carry versions and land only over older ones: safe without the lease, and they must not wait for it.
    if (job.replicated && this.server.leaseLapsed && (f.flags & (Flag.COPY | Flag.VERSION | Flag.INTERNAL_KEYS)) === 0) {
      return this.fail(id, epoch, 'UNAVAILABLE', `node ${this.server.options.id} has not heard from the controller within its lease: its copies may be out of date`);
    }
    const engine = this.server.engine;
    const coordination = this.server.coordination;
    switch (op) {
      case Op.PUT: {
        if (this.server.limits.isOverQuota(jobId)) return this.overQuota(id, epoch, jobId);
        if (f.keyLength === 0) return this.fail(id, epoch, 'BAD_REQUEST', 'empty key');
        const start = f.bodyStart + f.keyLength;
        const end = f.bodyStart + f.bodyLength;
        // The decoder's limit leaves room for the key, so a value just over the maximum gets this far.
        if (end - start > this.server.maxValueBytes) {
          return this.fail(id, epoch, 'TOO_LARGE', `value of ${end - start} bytes exceeds the node's limit of ${this.server.maxValueBytes}`);
        }
        this.server.metrics.bytesIn(end - start);
        // Own the bytes: keep an assembled body as it is, copy a view of a shared read chunk. allocUnsafeSlow:
        // neither zero-filled (Buffer.copyBytesFrom zero-fills first: 1.3 s of the node's 16 s CPU in a 256×256
        // sort) nor cut from Node's shared 8 KiB pool, which one small stored value would keep alive whole.
        let value: Buffer;
        if (f.owned) value = f.buf.subarray(start, end);
        else {
          value = Buffer.allocUnsafeSlow(end - start);
          f.buf.copy(value, 0, start, end);
        }
        const flags = f.flags & Flag.MANIFEST;
        const copy = (f.flags & Flag.COPY) !== 0;
        // A replica or copy carries its version's seq (≥ 1); 0 asks this node to order the write.
        const seq = (f.flags & (Flag.REPLICA | Flag.COPY)) === 0 ? 0 : f.arg;
        if (seq === 0 && (f.flags & (Flag.REPLICA | Flag.COPY)) !== 0) return this.fail(id, epoch, 'BAD_REQUEST', 'a replica or copy carries its version (seq ≥ 1) in arg');
        const result = engine.put(jobId, key, value, flags, epoch, seq);
        // A body an async engine is still writing counts against the node's budget (`maxInflightBodyBytes`).
        if (isPromise(result)) this.server.bodyInFlight(result, value.length);
        return this.settle(result, id, epoch, (outcome: PutOutcome) => {
          if (!outcome.ok) return this.refused(id, epoch, jobId, outcome.reason, outcome.message);
          if (outcome.skipped === true) {
            this.server.pool.release(value);
            return this.respond(Status.OK, 0, id, epoch, 0, null);
          }
          // Before the replaced value goes back to the pool. A migration copy wakes waiters but is no change for
          // watches: the key was there before, on another node.
          if (coordination.active > 0) coordination.stored(jobId, key, value, flags, epoch, !copy);
          this.replaced(id, epoch, outcome.replaced, seq === 0 ? outcome.seq : 1, 0);
        });
      }
      case Op.GET: {
        const versioned = (f.flags & Flag.VERSION) !== 0;
        return this.settle(engine.get(jobId, key), id, epoch, (entry: StoredEntry | undefined) => {
          if (entry === undefined) return this.notFound(engine, jobId, key, id, epoch);
          this.server.metrics.bytesOut(entry.value.length);
          // A copy asks for the value's version (Flag.VERSION) in place of its size.
          const answerEpoch = versioned ? entry.epoch : epoch;
          const arg = versioned ? entry.seq : entry.value.length;
          if (entry.value.length <= COPY_THRESHOLD) return this.respond(Status.OK, entry.flags, id, answerEpoch, arg, entry.value);
          // The writer sends it by reference: lent until the socket is done with it.
          entry.lent = (entry.lent ?? 0) + 1;
          this.respond(Status.OK, entry.flags, id, answerEpoch, arg, entry.value, () => this.server.sentByReference(entry));
        });
      }
      case Op.STAT: {
        const versioned = (f.flags & Flag.VERSION) !== 0;
        return this.settle(engine.get(jobId, key), id, epoch, (entry: StoredEntry | undefined) => {
          if (entry === undefined) return this.notFound(engine, jobId, key, id, epoch);
          const manifest = (entry.flags & Flag.MANIFEST) !== 0;
          if (manifest && entry.value.length > COPY_THRESHOLD) entry.pinned = true; // sent by reference
          // A migration asks for the version (Flag.VERSION) in place of the size, as GET.
          this.respond(Status.OK, entry.flags, id, versioned ? entry.epoch : epoch, versioned ? entry.seq : entry.value.length, manifest ? entry.value : null);
        });
      }
      case Op.DELETE: {
        const seq = (f.flags & Flag.REPLICA) === 0 ? 0 : f.arg;
        if (seq === 0 && (f.flags & Flag.REPLICA) !== 0) return this.fail(id, epoch, 'BAD_REQUEST', 'a replica carries its version (seq ≥ 1) in arg');
        // Flag.COPY: the controller removing a copy no reader may see (migration.ts), which leaves no tombstone.
        const tombstone = jobs.keepsTombstones(job) && (f.flags & Flag.COPY) === 0;
        return this.settle(engine.delete(jobId, key, epoch, seq, tombstone), id, epoch, (outcome: DeleteOutcome) => {
          if (!outcome.ok) return this.refused(id, epoch, jobId, outcome.reason, outcome.message);
          if (outcome.skipped === true) return this.respond(Status.OK, 0, id, epoch, 0, null);
          const old = outcome.old;
          if (old !== undefined && coordination.active > 0) coordination.deleted(jobId, key, epoch);
          this.replaced(id, epoch, old, seq === 0 ? outcome.seq : 1, old === undefined ? 0 : Flag.EXISTED);
        });
      }
      case Op.WAIT: {
        if (f.keyLength === 0) return this.fail(id, epoch, 'BAD_REQUEST', 'empty key');
        const refusal = coordination.admit(this, id, jobId);
        if (refusal !== null) return this.fail(id, epoch, 'FULL', refusal);
        // Parked first, then looked up: a PUT that lands while a disk engine reads still wakes it.
        coordination.wait(this, id, jobId, key, epoch, f.arg === 0 ? DEFAULT_WAIT_MS : Math.min(f.arg, MAX_WAIT_MS));
        const lookup = engine.get(jobId, key);
        // An engine failure is the WAIT's answer (settle sends it): the parked waiter must not answer again.
        if (isPromise(lookup)) lookup.catch(() => coordination.abandon(this, id));
        return this.settle(lookup, id, epoch, (entry: StoredEntry | undefined) => {
          if (entry === undefined) return;
          if (entry.value.length > COPY_THRESHOLD) entry.pinned = true; // the writer sends it by reference
          this.server.metrics.bytesOut(entry.value.length);
          coordination.settleWait(this, id, entry.value, entry.flags);
        });
      }
      case Op.WATCH: {
        const refusal = coordination.admit(this, id, jobId);
        if (refusal !== null) return this.fail(id, epoch, 'FULL', refusal);
        return coordination.watch(this, id, jobId, key, epoch);
      }
      case Op.INCR:
        return this.incr(f, jobId, key);
      case Op.LIST: {
        const limit = f.arg === 0 ? DEFAULT_LIST_PAGE : Math.min(f.arg, MAX_LIST_PAGE);
        const after = f.buf.toString('utf8', f.bodyStart + f.keyLength, f.bodyStart + f.bodyLength);
        return this.settle(engine.list(jobId, key, after, limit, (f.flags & Flag.INTERNAL_KEYS) !== 0), id, epoch, (page: ListPage) => {
          this.respond(Status.OK, page.more ? Flag.MORE : 0, id, epoch, page.keys.length, encodeKeyList(page.keys));
        });
      }
      default:
        return this.fail(id, epoch, 'BAD_REQUEST', `unsupported operation 0x${op.toString(16)}`);
    }
  }

  /**
   * INCR: the value is the amount, a signed 64-bit integer, then optionally the increment's 8-byte token (the
   * same on every retry of it: recent-increments.ts); the key holds the total as decimal text (so GET reads it as
   * a string and PUT of "42" sets it), created at 0. Totals stay within ±(2^53 − 1). With Flag.REPLICA the value
   * is the total the primary made, then its token, and arg the version's seq: stored as a replica of a write.
   */
  private incr(f: FrameView, jobId: string, key: string): void {
    const { id, epoch } = f;
    if (this.server.limits.isOverQuota(jobId)) return this.overQuota(id, epoch, jobId);
    if (f.keyLength === 0) return this.fail(id, epoch, 'BAD_REQUEST', 'empty key');
    const length = f.bodyLength - f.keyLength;
    if (length !== 8 && length !== 16) return this.fail(id, epoch, 'BAD_REQUEST', 'INCR carries the amount as an 8-byte integer, and may carry an 8-byte token after it');
    const at = f.bodyStart + f.keyLength;
    const by = Number(f.buf.readBigInt64BE(at));
    if (!Number.isSafeInteger(by)) return this.fail(id, epoch, 'BAD_REQUEST', 'INCR amount beyond ±(2^53 − 1)');
    // Keyed by job too: one job's token never answers with another job's total.
    const token = length === 16 ? `${jobId}/${f.buf.toString('hex', at + 8, at + 16)}` : null;
    const increments = this.server.increments;
    if ((f.flags & Flag.REPLICA) !== 0) {
      if (token === null || f.arg === 0) return this.fail(id, epoch, 'BAD_REQUEST', "an INCR replica carries the primary's total, its token and its version (seq ≥ 1 in arg)");
      const value = Buffer.from(String(by));
      return this.settle(this.server.engine.put(jobId, key, value, 0, epoch, f.arg), id, epoch, (outcome: PutOutcome) => {
        if (!outcome.ok) return this.refused(id, epoch, jobId, outcome.reason, outcome.message);
        increments.record(token, { key, total: by, seq: f.arg });
        if (outcome.skipped !== true && this.server.coordination.active > 0) this.server.coordination.stored(jobId, key, value, 0, epoch, true);
        this.respond(Status.OK, 0, id, epoch, outcome.skipped === true ? 0 : 1, null);
      });
    }
    const answer = (made: Increment) => {
      const body = Buffer.allocUnsafe(8);
      body.writeBigInt64BE(BigInt(made.total));
      // The version's seq, so a replicated job's client can hand the new total to the other copies.
      this.respond(Status.OK, 0, id, epoch, made.seq, body);
    };
    const seen = token === null ? undefined : increments.get(token);
    if (seen !== undefined) {
      // A retry: what the increment made, not another increment.
      return this.settle<Increment | null>(seen, id, epoch, (made) => {
        if (made === null) return this.fail(id, epoch, 'UNAVAILABLE', 'the first attempt of this increment failed: try again');
        if (made.key !== key) return this.fail(id, epoch, 'BAD_REQUEST', 'an INCR token names one increment of one key');
        answer(made);
      });
    }
    const done = token === null ? null : increments.begin(token);
    const existing = (f.flags & Flag.EXISTING) !== 0;
    let total = 0;
    let stored: Buffer | null = null;
    let missing = false;
    const compute = (old: StoredEntry | undefined): Buffer | { refuse: string } => {
      if (old === undefined && existing) {
        missing = true;
        return { refuse: `${key} is not on this node` };
      }
      const current = old === undefined ? 0 : counterValue(old);
      if (current === null) return { refuse: `${key} holds a value that is not a counter` };
      total = current + by;
      if (!Number.isSafeInteger(total)) return { refuse: `counter ${key} would pass ±(2^53 − 1)` };
      return (stored = Buffer.from(String(total)));
    };
    const result = this.server.engine.update(jobId, key, compute, epoch);
    if (done !== null && isPromise(result)) result.catch(() => done(null));
    this.settle(result, id, epoch, (outcome: PutOutcome) => {
      if (!outcome.ok) {
        done?.(null);
        if (missing) return this.respond(Status.NOT_FOUND, 0, id, epoch, 0, null);
        return this.refused(id, epoch, jobId, outcome.reason, outcome.message);
      }
      const coordination = this.server.coordination;
      if (coordination.active > 0 && stored !== null) coordination.stored(jobId, key, stored, 0, epoch, true);
      const made = { key, total, seq: outcome.seq };
      done?.(made);
      answer(made);
    });
  }

  /** PUT and INCR of a job the controller found over its byte quota (LIMIT_JOB). */
  private overQuota(id: number, epoch: number, jobId: string): void {
    this.fail(id, epoch, 'FULL', `job ${jobId} is over its byte quota: delete data or ask for more`);
  }

  /**
   * An engine refused a write: STALE (the key holds a write of a later placement than the request's: the client
   * refreshes) with the node's epoch for the job, or the refusal's own code.
   */
  private refused(id: number, epoch: number, jobId: string, reason: 'FULL' | 'BAD_REQUEST' | 'STALE', message: string): void {
    // FULL here is the engine's: no room on the node (a job over its quota is refused before the engine).
    if (reason === 'FULL') this.server.fullRefused(jobId);
    if (reason !== 'STALE') return this.fail(id, epoch, reason, message);
    const known = Math.max(epoch, this.server.jobs.get(jobId)?.epoch ?? 0);
    this.respond(Status.STALE, 0, id, known, known, Buffer.from(message));
  }

  /**
   * PUT/DELETE answer (arg: the write's seq, or 1 for a replica or copy stored): when the entry replaced was a
   * block manifest, hand it back so the client frees its blocks.
   */
  private replaced(id: number, epoch: number, old: StoredEntry | undefined, arg: number, flags: number): void {
    if (old !== undefined && (old.flags & Flag.MANIFEST) !== 0) {
      this.respond(Status.OK, flags | Flag.REPLACED_MANIFEST, id, epoch, arg, old.value);
    } else {
      if (old !== undefined) this.server.retire(old);
      this.respond(Status.OK, flags, id, epoch, arg, null);
    }
  }

  /** Runs `then` now for a synchronous engine result, or when an engine's promise settles. */
  private settle<T>(result: MaybePromise<T>, id: number, epoch: number, then: (value: T) => void): void {
    if (!isPromise(result)) return then(result);
    const metrics = this.server.metrics;
    const kind = this.opKind;
    const started = metrics.clock[0]!;
    const timing = metrics.timing;
    result.then(
      (value) => {
        if (this.socket.destroyed || this.closing) return;
        this.opKind = kind;
        metrics.clock[0] = started;
        metrics.timing = timing;
        then(value);
        this.opKind = -1;
        this.scheduleFlush();
      },
      (error: unknown) => {
        // An engine's own typed refusal (a bad key, a closed engine) reaches the client with its code; anything
        // else is a fault of this node: logged, and UNAVAILABLE to the client.
        if (error instanceof SatchelError) {
          this.server.options.logger.warn({ code: error.code, reason: error.message }, 'engine refused a request');
        } else {
          this.server.options.logger.error({ err: error }, 'engine error');
        }
        if (this.socket.destroyed || this.closing) return;
        this.opKind = kind;
        metrics.clock[0] = started;
        metrics.timing = timing;
        if (error instanceof SatchelError) this.fail(id, epoch, error.code, error.message);
        else this.fail(id, epoch, 'UNAVAILABLE', 'storage engine error');
        this.opKind = -1;
        this.scheduleFlush();
      },
    );
  }

  private hello(id: number, token: string): void {
    const subject = verifyToken(this.server.options.secret, token);
    if (subject === null) {
      this.fail(id, 0, 'UNAUTHORIZED', 'invalid token');
      this.closing = true;
      return;
    }
    // The console's read-only token opens nothing on a node.
    if (subject.scope === 'viewer') {
      this.fail(id, 0, 'UNAUTHORIZED', 'a viewer token opens the console only');
      this.closing = true;
      return;
    }
    if (!subject.admin && this.server.jobs.dropped.has(subject.jobId)) {
      this.fail(id, 0, 'NO_SUCH_JOB', `job ${subject.jobId} was deregistered`);
      this.closing = true;
      return;
    }
    if (!subject.admin && this.admitted === null) {
      if (!this.server.limits.admit(subject.jobId)) {
        this.fail(id, 0, 'FULL', `job ${subject.jobId} has ${this.server.limits.maxConnectionsPerJob} connections to this node, its limit`);
        this.closing = true;
        return;
      }
      this.admitted = subject.jobId;
    }
    this.admin = subject.admin;
    this.scope = subject.scope;
    this.expiresAt = subject.expiresAt;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.server.introduced(this);
    this.decoder.limit(this.server.maxValueBytes + MAX_KEY_BYTES);
    this.jobId = subject.admin ? null : subject.jobId;
    const epoch = subject.admin ? 0 : (this.server.jobs.get(subject.jobId)?.epoch ?? 0);
    this.respond(Status.OK, 0, id, epoch, this.server.maxValueBytes, Buffer.from(this.server.options.id));
  }

  private adminOp(f: FrameView, jobId: string): void {
    switch (f.code) {
      case Op.DROP_JOB: {
        // Copies: `f` is reused for the next frame before an async engine's drop settles.
        const { id } = f;
        const moved = f.arg === DROP_MOVED;
        // The value, when there is one: when the last token of the job expires (ms since 1970, i64).
        const until = f.bodyLength - f.keyLength === 8 ? Number(f.buf.readBigInt64BE(f.bodyStart + f.keyLength)) : Infinity;
        return this.settle(this.server.dropJob(jobId, moved, until), id, 0, (freed: number) => {
          this.server.options.logger.info({ job: jobId, freed, moved }, 'job dropped');
          this.respond(Status.OK, 0, id, 0, Math.min(freed, 0xffffffff), null);
        });
      }
      case Op.LIMIT_JOB:
        this.server.limits.setOverQuota(jobId, f.arg === 1);
        return this.respond(Status.OK, 0, f.id, 0, f.arg, null);
      case Op.ANNOUNCE: {
        // The value, when there is one: the incarnation the controller means. Another one (this node restarted
        // since the controller heard from it) holds none of the job's data and must not serve it.
        const bootId = f.bodyLength > f.keyLength ? f.buf.toString('utf8', f.bodyStart + f.keyLength, f.bodyStart + f.bodyLength) : null;
        if (bootId !== null && bootId !== this.server.options.bootId) {
          return this.fail(f.id, 0, 'UNAVAILABLE', `announcement for incarnation ${bootId}; this is ${this.server.options.bootId ?? 'none'}`);
        }
        if (this.server.jobs.announce(jobId, f.arg, f.flags) && this.server.coordination.active > 0) this.server.coordination.epochChanged(jobId, f.arg);
        return this.respond(Status.OK, 0, f.id, this.server.jobs.get(jobId)?.epoch ?? 0, 0, null);
      }
      default:
        return this.fail(f.id, 0, 'BAD_REQUEST', 'an admin connection carries admin operations only');
    }
  }
}

/** A counter's total: decimal text of a safe integer (at most 16 digits and a sign); null for anything else. */
function counterValue(entry: StoredEntry): number | null {
  const { value } = entry;
  if ((entry.flags & Flag.MANIFEST) !== 0 || value.length === 0 || value.length > 17) return null;
  const text = value.toString('latin1');
  if (!/^-?\d+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}
