// One client connection of a storage node, below what its requests mean: the socket and the frame decoder,
// answers flushed once per event-loop turn, backpressure and the node's body budget, the pre-HELLO allowance and
// the HELLO deadline, the output limits on what the node pushes unasked (events, woken WAITs), and engine results
// answered when they settle. session.ts is the rest: HELLO and the data, coordination and admin operations.
import type net from 'node:net';
import {
  FrameDecoder,
  type FrameView,
  FrameWriter,
  HEADER_SIZE,
  MAX_KEY_BYTES,
  SatchelError,
  type StatusCode,
  statusOf,
} from '../proto/index.ts';
import type { Coordination, ParkedOwner } from './coordination.ts';
import type { MaybePromise, StorageEngine, StoredEntry } from './engine.ts';
import type { JobLimits } from './job-limits.ts';
import type { JobTable } from './job-table.ts';
import { type DisconnectReason, type NodeMetrics, opKindOf, TRAFFIC_OPS, TRAFFIC_OUT } from './metrics.ts';
import type { RecentIncrements } from './recent-increments.ts';
import { PRE_AUTH_MAX_FRAMES, type StorageCounters, type StorageServerOptions } from './server-options.ts';
import type { ValuePool } from './value-pool.ts';

/** A connection the node ended (after a refusal) that its peer keeps open is destroyed after this long. */
const CLOSE_GRACE_MS = 5_000;

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
  readonly engine: StorageEngine;
  readonly jobs: JobTable;
  readonly limits: JobLimits;
  readonly coordination: Coordination;
  readonly increments: RecentIncrements;
  readonly maxValueBytes: number;
  readonly maxPendingResponseBytes: number;
  readonly helloTimeoutMs: number;
  readonly maxOutputBytes: number;
  readonly softOutputBytes: number;
  readonly softOutputMs: number;
  /** The lease had lapsed at the last read from a socket (`checkLease`). */
  readonly leaseLapsed: boolean;
  /** Over the body budget: job connections pause at their next read. */
  readonly readsHeld: boolean;
  checkLease(): void;
  held(connection: Connection): void;
  introduced(connection: Connection): void;
  bodyInFlight(result: Promise<unknown>, bytes: number): void;
  fullRefused(jobId: string): void;
  retire(entry: StoredEntry): void;
  sentByReference(entry: StoredEntry): void;
  dropJob(jobId: string, moved?: boolean, tokensExpireBy?: number): MaybePromise<number>;
}

/** A client connection's transport and limits; `handle` (session.ts) answers its frames. */
export abstract class Connection implements ParkedOwner {
  protected readonly decoder: FrameDecoder;
  private readonly writer: FrameWriter;
  /** The job of a HELLO with a job's token; null before one (and for the admin). */
  protected jobId: string | null = null;
  /** A HELLO with the admin token succeeded. */
  protected admin = false;
  /** Nothing more is read or answered: what is queued goes out, then the connection ends (`flush`). */
  protected closing = false;
  /** The node ended the connection (after `closing`): it is destroyed if the peer does not close it in time. */
  private ended = false;
  /** Not read: its answers back up (`maxPendingResponseBytes`). */
  private paused = false;
  /** Not read: request bodies over the node's budget (`StorageServer.bodyInFlight`). */
  private held = false;
  private flushScheduled = false;
  /** Closes the connection unless a HELLO succeeds first; then, once the node ended it, unless the peer closes. */
  protected timer: NodeJS.Timeout | null;
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
  /**
   * The counts of the job whose request is being answered (job-table.ts `AnnouncedJob.traffic`; null: none, or
   * not a job's request): set by the session once it has looked the job up, and `respond` adds the answer to
   * them (op, bytes out, service time) as it records the op in the node's metrics.
   */
  protected traffic: Float64Array | null = null;

  constructor(
    protected readonly server: SessionHost,
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
        this.fail(
          frame.id,
          frame.epoch,
          'TOO_LARGE',
          `value of ${frame.bodyLength} bytes exceeds the node's limit of ${server.maxValueBytes}`,
        );
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
    this.server.options.logger.debug(
      { remote: this.socket.remoteAddress, reason: 'pre_auth_output' },
      `closing connection: more than ${PRE_AUTH_MAX_FRAMES} frames before a HELLO`,
    );
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
    this.server.options.logger[level](
      { remote: this.socket.remoteAddress, job: this.jobId, reason, ...details },
      `closing connection: ${why}`,
    );
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

  protected respond(
    status: StatusCode,
    flags: number,
    id: number,
    epoch: number,
    arg: number,
    body: Uint8Array | null,
    sent?: () => void,
  ): void {
    // Counted here, not at flush: the writer also flushes by itself once enough is queued.
    this.server.counters.bytesOut += HEADER_SIZE + (body === null ? 0 : body.length);
    this.written += HEADER_SIZE + (body === null ? 0 : body.length);
    this.writer.frame(status, flags, id, epoch, arg, '', body, sent);
    // The job's counts: increments on the array the request already has, nothing allocated on the hot path.
    const traffic = this.traffic;
    if (traffic !== null) {
      traffic[TRAFFIC_OPS]!++;
      traffic[TRAFFIC_OUT]! += HEADER_SIZE + (body === null ? 0 : body.length);
      this.traffic = null;
    }
    if (this.opKind >= 0) {
      this.server.metrics.record(this.opKind, status, traffic);
      this.opKind = -1;
    }
  }

  /** The connection closed: no timer of it may fire. */
  released(): void {
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

  protected fail(id: number, epoch: number, code: SatchelError['code'], message: string): void {
    this.respond(statusOf(code), 0, id, epoch, 0, Buffer.from(message));
  }

  /** The node's service time runs from here to the answer being queued (`respond`). */
  private onFrame(f: FrameView): void {
    if (this.closing || this.preAuthOver()) return;
    this.opKind = opKindOf(f.code);
    this.server.metrics.beginOp();
    this.handle(f);
    // Parked (WAIT, WATCH: answered later by `push`, counted for the job by neither) or left to an engine's
    // promise (settle kept the job's counts).
    this.traffic = null;
    if (this.opKind >= 0) {
      // Left to an engine's promise (settle kept the kind and start): the session is free from now.
      this.opKind = -1;
      this.server.metrics.markFree();
    }
  }

  /** Answers one frame, HELLO included: by `respond`, `fail`, or `settle` of an engine's result. */
  protected abstract handle(f: FrameView): void;

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
