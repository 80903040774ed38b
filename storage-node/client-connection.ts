// One client connection of a storage node below its protocol: the socket, answers flushed once per event-loop
// turn, backpressure and the node's body budget, the authentication deadline and the crowding out of strangers,
// the output limits on what the node pushes unasked (events, woken WAITs, pub/sub messages), the op's metrics and
// the job's counts, and engine results answered when they settle. Two protocols build on it: the node's frames
// (connection.ts, session.ts) and RESP (resp/).
import type net from 'node:net';
import { SatchelError, type StatusCode, type TokenVerifier } from '../proto/index.ts';
import type { Coordination, ParkedOwner } from './coordination.ts';
import type { MaybePromise, StorageEngine, StoredEntry } from './engine.ts';
import type { JobLimits } from './job-limits.ts';
import type { JobTable } from './job-table.ts';
import { type DisconnectReason, type NodeMetrics, TRAFFIC_OPS, TRAFFIC_OUT } from './metrics.ts';
import type { PeerLinks } from './peer-links.ts';
import type { PlacementLookup } from './placement-lookup.ts';
import { readIntoSharedBuffer } from './read-buffer.ts';
import type { RecentIncrements } from './recent-increments.ts';
import type { StorageCounters, StorageServerOptions } from './server-options.ts';
import type { ValuePool } from './value-pool.ts';

/** A connection the node ended (after a refusal) that its peer keeps open is destroyed after this long. */
const CLOSE_GRACE_MS = 5_000;
/**
 * What an ended connection's peer may still send (requests it had in flight), read and dropped so that its close
 * is seen and the descriptor freed at once; past this it is no longer read, and goes at the grace (its answers
 * may still be leaving: destroying it now would drop them).
 */
const ENDED_READ_BYTES = 64 * 1024;
/** libuv reads a socket into buffers of this size, again while a read fills one (uv__read). */
const READ_BUFFER_BYTES = 64 * 1024;

export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

/**
 * What a connection needs of its node: StorageServer implements it. An interface so the connections do not
 * import the server that makes them (no import cycle).
 */
export interface SessionHost {
  readonly options: StorageServerOptions;
  readonly counters: StorageCounters;
  readonly metrics: NodeMetrics;
  readonly pool: ValuePool;
  readonly tokens: TokenVerifier;
  readonly engine: StorageEngine;
  readonly jobs: JobTable;
  readonly limits: JobLimits;
  readonly coordination: Coordination;
  readonly increments: RecentIncrements;
  readonly peers: PeerLinks;
  /** Looks up placements of jobs this node does not serve (null without a controller). */
  readonly lookup: PlacementLookup | null;
  readonly maxValueBytes: number;
  readonly maxPendingResponseBytes: number;
  /** host:port clients reach the RESP front door at, once it is open (null: closed). */
  readonly respAddress: string | null;
  readonly helloTimeoutMs: number;
  readonly maxOutputBytes: number;
  readonly softOutputBytes: number;
  readonly softOutputMs: number;
  /** The lease had lapsed at the last read from a socket (`checkLease`). */
  readonly leaseLapsed: boolean;
  /** Over the body budget: job connections pause at their next read. */
  readonly readsHeld: boolean;
  checkLease(): void;
  held(connection: ClientConnection): void;
  introduced(connection: ClientConnection): void;
  bodyInFlight(result: Promise<unknown>, bytes: number): void;
  fullRefused(jobId: string): void;
  retire(entry: StoredEntry): void;
  sentByReference(entry: StoredEntry): void;
  dropJob(jobId: string, moved?: boolean, tokensExpireBy?: number, keep?: boolean): MaybePromise<number>;
}

/** A client connection's transport and limits; a protocol's subclass reads its requests and writes its answers. */
export abstract class ClientConnection implements ParkedOwner {
  /** The job the connection authenticated as; null before that (and for the admin). */
  protected jobId: string | null = null;
  /** The connection authenticated with the admin token. */
  protected admin = false;
  /** Nothing more is read or answered: what is queued goes out, then the connection ends (`flush`). */
  protected closing = false;
  /** The node ended the connection (after `closing`): it is destroyed if the peer does not close it in time. */
  private ended = false;
  /** Bytes read and dropped since the node ended the connection (`ENDED_READ_BYTES`). */
  private readAfterEnd = 0;
  /** Not read: its answers back up (`maxPendingResponseBytes`). */
  protected paused = false;
  /** Not read: request bodies over the node's budget (`StorageServer.bodyInFlight`). */
  private held = false;
  private flushScheduled = false;
  /** Closes the connection unless it authenticates first; then, once the node ended it, unless the peer closes. */
  protected timer: NodeJS.Timeout | null;
  /**
   * Output pushed unasked (events, woken WAITs) and not yet written, for the output limits. `written` counts every
   * byte handed to the writer; what the socket has written is `written` less what it and the writer still hold.
   * `pushEnds`/`pushBytes` (from `pushHead` on) are runs of pushed answers, each ending at a position of `written`
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
   * The op being answered (metrics.ts OpKind; -1: none): `answered` records it, timed (or sampled) on the
   * metrics' clock (metrics.ts `NodeMetrics.clock`).
   */
  protected opKind = -1;
  /**
   * The counts of the job whose request is being answered (job-table.ts `AnnouncedJob.traffic`; null: none, or
   * not a job's request): set by the session once it has looked the job up, and `answered` adds the answer to
   * them (op, bytes out, service time) as it records the op in the node's metrics.
   */
  protected traffic: Float64Array | null = null;
  /** A TLS socket (tls.TLSSocket): its reads come as several chunks. */
  private readonly encrypted: boolean;

  /**
   * `transientChunks`: the protocol copies what it keeps of a chunk before `received` returns, so a plain TCP
   * socket may read into the buffer every such socket shares (read-buffer.ts) rather than a fresh chunk per read.
   */
  constructor(
    protected readonly server: SessionHost,
    readonly socket: net.Socket,
    transientChunks = false,
  ) {
    this.encrypted = (socket as { encrypted?: boolean }).encrypted === true;
    this.timer = setTimeout(this.authDeadline, server.helloTimeoutMs);
    const onChunk = (chunk: Buffer) => {
      server.counters.bytesIn += chunk.length;
      if (this.ended) {
        // Read only to see the peer's close (Node then destroys the socket); a peer that goes on sending is not.
        this.readAfterEnd += chunk.length;
        if (this.readAfterEnd > ENDED_READ_BYTES) socket.pause();
        return undefined;
      }
      server.checkLease();
      server.metrics.markFree();
      this.received(chunk);
      // A read that did not fill libuv's 64 KiB buffer was the socket's last this turn: answer now, not after
      // the other sockets' reads (setImmediate). Same writes per read, one hop less per answer. Not under TLS:
      // one read there comes as several chunks (a record each, 16 KiB at most), and a write per chunk would
      // encrypt and send each answer batch apart.
      if (chunk.length < READ_BUFFER_BYTES && !this.encrypted) this.flushNow();
      else this.scheduleFlush();
      // Over the node's budget for bodies in flight, a job connection stops being read after this chunk.
      if (server.readsHeld && !this.held && this.jobId !== null) {
        this.held = true;
        server.held(this);
        socket.pause();
      }
      return undefined;
    };
    if (!(transientChunks && !this.encrypted && readIntoSharedBuffer(socket, onChunk))) socket.on('data', onChunk);
    socket.on('drain', () => {
      if (this.paused) {
        this.paused = false;
        if (!this.held) socket.resume();
      }
    });
    socket.on('error', (error) => server.options.logger.debug({ err: error }, 'connection error'));
  }

  /** A chunk read from the socket: the protocol decodes and answers what it holds. */
  protected abstract received(chunk: Buffer): void;
  /** Bytes encoded for the socket and not yet handed to it. */
  protected abstract pendingOutput(): number;
  /** Hands what is encoded to the socket (one corked write). */
  protected abstract flushOutput(): void;
  /** Answers request `id` with an error (an engine's refusal or failure, settled late). */
  protected abstract fail(id: number, epoch: number, code: SatchelError['code'], message: string): void;
  /** What the protocol calls authenticating, for the log ("HELLO", "AUTH"). */
  protected abstract readonly authName: string;

  /** The body budget has room again (the server forgot this connection when it called). */
  unhold(): void {
    this.held = false;
    if (!this.paused && !this.socket.destroyed) this.socket.resume();
  }

  private readonly authDeadline = () => {
    this.timer = null;
    if (this.jobId !== null || this.admin) return;
    this.disconnect('hello_timeout', `no ${this.authName} within ${this.server.helloTimeoutMs} ms`, 'debug');
  };

  /** The connection authenticated: the deadline is off. */
  protected authenticated(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.server.introduced(this);
  }

  /** Too many connections without authenticating: this one, the oldest, makes room. */
  crowdedOut(limit: number): void {
    this.disconnect('pre_auth_crowded', `the oldest of more than ${limit} connections without a ${this.authName}`, 'debug');
  }

  /** Ends the connection after what is queued (the protocol's answers so far) goes out; nothing more is read. */
  protected endAfterAnswers(reason: DisconnectReason, why: string): void {
    this.closing = true;
    this.server.metrics.disconnected(reason);
    this.server.options.logger.debug({ remote: this.socket.remoteAddress, reason }, `closing connection: ${why}`);
    this.flush();
  }

  /**
   * Closes the connection now (what is queued for it is dropped), for `reason`: logged, and counted in the
   * node's metrics (`satchel_node_clients_disconnected_total`).
   */
  protected disconnect(reason: DisconnectReason, why: string, level: 'debug' | 'warn', details: Record<string, unknown> = {}): void {
    if (this.socket.destroyed) return;
    this.closing = true;
    this.server.metrics.disconnected(reason);
    this.server.options.logger[level](
      { remote: this.socket.remoteAddress, job: this.jobId, reason, ...details },
      `closing connection: ${why}`,
    );
    this.socket.destroy();
  }

  /** Bytes pushed unasked (events, woken WAITs) that the socket has not written yet. */
  private unsentPushed(): number {
    const sent = this.written - this.socket.writableLength - this.pendingOutput();
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
    return this.pushQueued - Math.max(partly, 0);
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
      this.disconnect('output_buffer', `${unsent} bytes of events unread, over the limit of ${server.maxOutputBytes}`, 'warn', {
        unsent,
        limit: server.maxOutputBytes,
      });
      return;
    }
    const now = Date.now();
    if (this.overSoftSince === 0) this.overSoftSince = now;
    else if (now - this.overSoftSince > server.softOutputMs) {
      this.disconnect('output_buffer', `events unread, over ${server.softOutputBytes} bytes for ${server.softOutputMs} ms`, 'warn', {
        unsent,
        limit: server.softOutputBytes,
      });
    }
  }

  /**
   * Answers go out once per turn of the event loop (setImmediate runs after every read libuv had ready), not
   * once per read: a stream of 64 KiB PUTs arrives one per read, and a write per PUT cost the node a quarter
   * of its time in write syscalls. This batches like Redis's beforeSleep.
   */
  protected scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushNow);
  }

  private readonly flushNow = () => {
    this.flushScheduled = false;
    if (!this.socket.destroyed) this.flush();
  };

  protected flush(): void {
    if (this.pendingOutput() > 0) this.flushOutput();
    // Even with nothing left to flush: the writer may have sent the closing answer by itself (it flushes once
    // 256 KiB are queued), and the connection must still end.
    if (this.closing) {
      if (this.ended) return;
      this.ended = true;
      this.socket.end();
      // It is still read, and what comes is dropped (`onChunk`), so that the peer's close frees the descriptor at
      // once: paused, a refused HELLO's socket stayed open the whole grace after its peer closed (a soak's
      // jobs ending together left 14 on the SSD node). A peer that keeps its side open (one that never reads,
      // say) does not keep the socket past the grace.
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

  /**
   * An answer of `bytes` to the request being handled was encoded: counted for the node and the job, and the op
   * recorded in the node's metrics with its status. Increments on the arrays the request already has, nothing
   * allocated on the hot path.
   */
  protected answered(status: StatusCode, bytes: number): void {
    // Counted here, not at flush: the writer also flushes by itself once enough is queued.
    this.server.counters.bytesOut += bytes;
    this.written += bytes;
    const traffic = this.traffic;
    if (traffic !== null) {
      traffic[TRAFFIC_OPS]!++;
      traffic[TRAFFIC_OUT]! += bytes;
      this.traffic = null;
    }
    if (this.opKind >= 0) {
      this.server.metrics.record(this.opKind, status, traffic);
      this.opKind = -1;
    }
  }

  /** `bytes` pushed unasked were encoded (an event, a woken WAIT): counted against the output limits. */
  protected pushed(bytes: number): void {
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
    this.scheduleFlush();
    this.checkOutput();
  }

  /** The connection closed: no timer of it may fire. */
  released(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The request being handled begins: the node's service time runs from here to its answer (`answered`). */
  protected begin(opKind: number): void {
    this.opKind = opKind;
    this.server.metrics.beginOp();
  }

  /** The request was handled or handed on (parked, or left to an engine's promise, which kept its counts). */
  protected handled(): void {
    this.traffic = null;
    if (this.opKind >= 0) {
      this.opKind = -1;
      this.server.metrics.markFree();
    }
  }

  /** An answer to a parked WAIT or WATCH (coordination.ts), outside the request being handled. */
  abstract push(status: StatusCode, flags: number, id: number, epoch: number, arg: number, key: string, body: Uint8Array | null): void;

  /** Runs `then` now for a synchronous engine result, or when an engine's promise settles. */
  protected settle<T>(result: MaybePromise<T>, id: number, epoch: number, then: (value: T) => void): void {
    if (!isPromise(result)) return then(result);
    const metrics = this.server.metrics;
    const kind = this.opKind;
    const traffic = this.traffic;
    const started = metrics.clock[0]!;
    const timing = metrics.timing;
    result.then(
      (value) => {
        if (this.socket.destroyed || this.closing) return;
        this.opKind = kind;
        this.traffic = traffic;
        metrics.clock[0] = started;
        metrics.timing = timing;
        then(value);
        this.opKind = -1;
        this.traffic = null;
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
        this.traffic = traffic;
        metrics.clock[0] = started;
        metrics.timing = timing;
        if (error instanceof SatchelError) this.fail(id, epoch, error.code, error.message);
        else this.fail(id, epoch, 'UNAVAILABLE', 'storage engine error');
        this.opKind = -1;
        this.traffic = null;
        this.scheduleFlush();
      },
    );
  }
}
