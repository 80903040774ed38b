import net from 'node:net';
import tls from 'node:tls';
import { FrameDecoder, type FrameView } from './decoder.ts';
import { SatchelError } from './errors.ts';
import { errorCodeOf, Flag, HEADER_SIZE, MAX_KEY_BYTES, Op, Status } from './frame.ts';
import { DEFAULT_TIMEOUT_MS } from './timeouts.ts';
import { serverIdentity } from './tls.ts';
import { FrameWriter } from './writer.ts';

export interface NodeConnectionOptions {
  /** Every request fails with TIMEOUT after this long without an answer. */
  timeoutMs?: number;
  /** Time allowed for the TCP connection to open. */
  connectTimeoutMs?: number;
  /**
   * Flow control: requests wait in the client while this many request bytes are in flight to the node.
   * Counting bytes, not only requests, keeps a burst of 1 MiB PUTs from queueing seconds of data in the socket.
   * Answers are not counted (a GET's size is unknown until it arrives): Job bounds large reads by fetching at
   * most `blockParallelism` blocks of a value at once.
   */
  maxInflightBytes?: number;
  /** Largest response body accepted from the node. */
  maxResponseBytes?: number;
  /**
   * Connect over TLS and check the node's certificate against `ca` (PEM) and the host dialled (or
   * `servername`). A handshake that fails (another CA, a name the certificate does not carry, a node speaking
   * plain TCP) fails the calls with UNAVAILABLE, saying so.
   */
  tls?: { ca: string | Buffer; servername?: string };
}

/** A request on its way; once answered, the same object carries the reply (one allocation per request). */
export class Reply {
  status = 0;
  flags = 0;
  arg = 0;
  epoch = 0;
  body: Buffer = EMPTY;
  deadline = 0;
  bytes = 0;
  /** Where an OK answer's body of exactly this length goes when it is assembled (`RequestFrame.into`). */
  into: Buffer | null = null;
  /** A parked request's events (WATCH), and the timer that gives up on a parked request the node never answers. */
  onEvent: EventListener | null = null;
  backstop: NodeJS.Timeout | null = null;
  constructor(
    readonly id: number,
    readonly resolve: (reply: Reply) => void,
    readonly reject: (error: SatchelError) => void,
  ) {}

  /** The body as text: error messages. */
  get message(): string {
    return this.body.toString('utf8');
  }
}

/** One EVENT frame of a parked request: `kind` is a WatchEvent, `key` the key it is about. */
export type EventListener = (kind: number, key: string, epoch: number) => void;

/** A request answered when something happens rather than within the timeout (WAIT, WATCH). */
export interface ParkedRequest {
  readonly id: number;
  /** Its final answer; rejects when the connection is lost or closed, or after `backstopMs` with no answer. */
  readonly reply: Promise<Reply>;
}

/**
 * One request's frame fields. Only `op` is required: flags, epoch and arg default to 0, the key to empty, the
 * value to none. Read once, synchronously, inside `request`, so a caller may reuse one object.
 */
export interface RequestFrame {
  op: number;
  key?: string;
  value?: Uint8Array | null;
  flags?: number;
  /** The placement epoch the caller routed by (the node answers STALE past it). */
  epoch?: number;
  /** Op-specific: a seq, a version, a timeout, a count (see proto/README.md). */
  arg?: number;
  /**
   * Where the answer's body goes if it is OK, carries no key and is exactly this long: a block of a large value
   * lands in the value's own buffer as it is read, not in a buffer of its own copied from after. The reply's
   * `body` is then a view of `into`; otherwise (another answer, a body that came in one read) it is its own.
   */
  into?: Buffer | null;
}

interface Waiting {
  reply: Reply;
  run(): void;
}

const EMPTY = Buffer.alloc(0);
const DEFAULT_MAX_INFLIGHT = 32 * 1024 * 1024;
const READ_BUFFER_SIZE = 256 * 1024;
let readBuffer: Buffer | null = null;
const sharedReadBuffer = () => (readBuffer ??= Buffer.allocUnsafeSlow(READ_BUFFER_SIZE));
const BACKOFF_BASE_MS = 50;
const BACKOFF_CAP_MS = 2_000;

/** The UNAVAILABLE errors that are a node's own answer (`refusedByNode`), and the address of the node that gave each. */
const refusals = new WeakMap<object, string>();

/**
 * Whether `error` is a node's answer that it cannot serve the request now (Status.UNAVAILABLE: its lease from the
 * controller lapsed, an epoch not yet announced to it, a job it does not hold in this incarnation) rather than a
 * node out of reach. The node did nothing with the request, so asking it again is safe.
 */
export function refusedByNode(error: unknown): boolean {
  return typeof error === 'object' && error !== null && refusals.has(error);
}

/** The address of the node whose own answer `error` is (`refusedByNode`); undefined for any other error. */
export function refusingNode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? refusals.get(error) : undefined;
}

/**
 * One pipelined TCP connection to one storage node, shared by every call of a job that lands on that node.
 * Requests are encoded into a FrameWriter and flushed on process.nextTick, which runs after the current burst
 * of promise continuations, so calls made together leave as one write; replies are matched by request id, in
 * any order. The connection opens on first use with a HELLO carrying the job token, sent ahead of the first
 * request with no wait for its answer: a refused HELLO fails the requests behind it with the node's error.
 * A lost connection fails what was in flight with UNAVAILABLE; the next call reconnects, after a backoff with
 * jitter if connecting failed just before.
 */
export class NodeConnection {
  private socket: net.Socket | null = null;
  private writer: FrameWriter | null = null;
  private readonly pending = new Map<number, Reply>();
  /** The open socket's decoder (null when closed): a request that gives up stops it writing into its `into`. */
  private decoder: FrameDecoder | null = null;
  /** WAITs and WATCHes: outside the flow-control window and the sweep (their deadlines are not in order). */
  private readonly parked = new Map<number, Reply>();
  private readonly waiting: Waiting[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private nextId = 1;
  private inflightBytes = 0;
  private flushScheduled = false;
  private sweepTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private retryAt = 0;
  private helloError: SatchelError | null = null;
  private lastError: SatchelError | null = null;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly maxInflightBytes: number;
  private readonly flushNow = () => {
    this.flushScheduled = false;
    this.writer?.flush();
  };

  constructor(
    readonly address: string,
    readonly token: string,
    private readonly options: NodeConnectionOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxInflightBytes = options.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT;
  }

  get inflight(): number {
    return this.pending.size;
  }

  /**
   * Sends one request and resolves with its reply, whatever its status, but UNAVAILABLE; rejects when no reply
   * came (TIMEOUT, UNAVAILABLE, CLOSED) and when the node answered UNAVAILABLE: it cannot serve this now (it does
   * not hold the job in this incarnation, its lease lapsed, its engine failed), which callers treat as a node
   * they cannot reach. `value` is not copied when large: the caller must not change it until the promise settles.
   */
  request(frame: RequestFrame): Promise<Reply> {
    const { op, key = '', value = null, flags = 0, epoch = 0, arg = 0, into = null } = frame;
    if (this.closed) return Promise.reject(new SatchelError('CLOSED', 'connection closed'));
    // A key past the frame's limit would be a malformed frame, and the node would close the connection under
    // every other call on it. Only long keys need their UTF-8 length counted.
    if (key.length * 3 > MAX_KEY_BYTES && Buffer.byteLength(key) > MAX_KEY_BYTES) {
      return Promise.reject(new SatchelError('BAD_REQUEST', `key longer than ${MAX_KEY_BYTES} bytes`));
    }
    return new Promise<Reply>((resolve, reject) => {
      const reply = new Reply(this.allocateId(), resolve, reject);
      reply.into = into;
      reply.bytes = HEADER_SIZE + key.length + (value === null ? 0 : value.length);
      reply.deadline = Date.now() + this.timeoutMs;
      if (this.waiting.length > 0 || (this.inflightBytes > 0 && this.inflightBytes + reply.bytes > this.maxInflightBytes)) {
        this.waiting.push({ reply, run: () => this.send(reply, op, flags, epoch, arg, key, value) });
        this.ensureSweep();
        return;
      }
      this.send(reply, op, flags, epoch, arg, key, value);
    });
  }

  /**
   * Sends a request the node answers when something happens (WAIT, WATCH). Not subject to the connection's
   * timeout: `backstopMs` (if given) is how long to wait for the node's own answer before failing with TIMEOUT.
   * EVENT frames for it go to `onEvent`; any other frame is its final answer.
   */
  park(frame: RequestFrame, options: { backstopMs?: number; onEvent?: EventListener } = {}): ParkedRequest {
    const { op, key = '', flags = 0, epoch = 0, arg = 0 } = frame;
    const id = this.allocateId();
    const reply = new Promise<Reply>((resolve, reject) => {
      if (this.closed) return reject(new SatchelError('CLOSED', 'connection closed'));
      const parked = new Reply(id, resolve, reject);
      const writer = this.writer ?? this.open();
      if (writer === null) {
        return reject(this.lastError ?? new SatchelError('UNAVAILABLE', `node ${this.address} is unreachable; retrying after backoff`));
      }
      parked.onEvent = options.onEvent ?? null;
      if (options.backstopMs !== undefined) {
        parked.backstop = setTimeout(() => {
          if (this.parked.get(id) !== parked) return;
          this.parked.delete(id);
          reject(new SatchelError('TIMEOUT', `node ${this.address} did not answer a parked request within ${options.backstopMs} ms`));
        }, options.backstopMs);
      }
      this.parked.set(id, parked);
      writer.frame(op, flags, id, epoch, arg, key, null);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        process.nextTick(this.flushNow);
      }
    });
    return { id, reply };
  }

  /**
   * The caller gave up on its requests that read into `into` (it asked another copy: client/deadline.ts): their
   * answers, if they still come, get buffers of their own, and a body being read into `into` is skipped, so
   * nothing lands in memory the caller has moved on with. The requests still end as usual (answer or timeout).
   */
  releaseInto(into: Buffer): void {
    for (const reply of this.pending.values()) if (reply.into === into) reply.into = null;
    for (const { reply } of this.waiting) if (reply.into === into) reply.into = null;
    this.decoder?.abandon(into);
  }

  /**
   * Ends parked request `id`: it resolves now with status NOT_FOUND, and the node is told (CANCEL) so it frees
   * its side. Nothing happens for an id already answered.
   */
  cancel(id: number): void {
    const parked = this.takeParked(id);
    if (parked === undefined) return;
    parked.status = Status.NOT_FOUND;
    parked.resolve(parked);
    if (this.socket !== null && !this.closed) this.request({ op: Op.CANCEL, arg: id }).catch(() => {});
  }

  /**
   * Waits for the calls in flight and queued (not parked ones), then says whether the connection is open,
   * through its HELLO, and carries nothing: another handle with the same token may take it over
   * (client/idle-connections.ts) instead of opening its own.
   */
  async quiesce(): Promise<boolean> {
    if (this.pending.size > 0 || this.waiting.length > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    const socket = this.socket;
    return (
      !this.closed &&
      socket !== null &&
      !socket.destroyed &&
      !socket.connecting &&
      this.helloError === null &&
      this.parked.size === 0 &&
      this.pending.size === 0 &&
      this.waiting.length === 0
    );
  }

  /** Whether the open socket keeps the process alive: not while the connection waits, unused, to be taken again. */
  holdProcess(hold: boolean): void {
    if (hold) this.socket?.ref();
    else this.socket?.unref();
  }

  /**
   * Takes no new calls and closes once everything it carries is answered, parked requests (a watch, a long
   * wait) included: what a job does with the connection of a token it replaced.
   */
  retire(): void {
    this.closed = true;
    const check = () => {
      if (this.pending.size === 0 && this.waiting.length === 0 && this.parked.size === 0) this.destroySocket();
      else setTimeout(check, 1_000).unref();
    };
    check();
  }

  /** Fails parked requests with CLOSED, waits for everything in flight or waiting to be answered, then closes. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    // Made only when there is one to fail: an error's stack trace was 4 % of a client attaching and closing.
    if (this.parked.size > 0) this.failParked(new SatchelError('CLOSED', 'connection closed'));
    if (this.pending.size > 0 || this.waiting.length > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.destroySocket();
  }

  /** Fails everything in flight now and closes. Idempotent. */
  destroy(error = new SatchelError('CLOSED', 'connection destroyed')): void {
    this.closed = true;
    this.failAll(error);
    this.destroySocket();
  }

  private allocateId(): number {
    const id = this.nextId;
    this.nextId = id === 0xffffffff ? 1 : id + 1;
    return id;
  }

  private send(reply: Reply, op: number, flags: number, epoch: number, arg: number, key: string, value: Uint8Array | null): void {
    const writer = this.writer ?? this.open();
    if (writer === null) {
      // Inside the backoff window: repeat why the last connection ended (a refused HELLO says more than "down").
      reply.reject(this.lastError ?? new SatchelError('UNAVAILABLE', `node ${this.address} is unreachable; retrying after backoff`));
      return;
    }
    this.pending.set(reply.id, reply);
    this.inflightBytes += reply.bytes;
    writer.frame(op, flags, reply.id, epoch, arg, key, value);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushNow);
    }
    this.ensureSweep();
  }

  private open(): FrameWriter | null {
    if (Date.now() < this.retryAt) return null;
    this.helloError = null;
    let decoder: FrameDecoder | null = null;
    const secure = this.options.tls;
    // Reads land in one buffer the process reuses for every read of every connection (`onread`), instead of a
    // fresh 64 KiB chunk per read: libuv hands a read to JavaScript synchronously, one at a time, and the decoder
    // copies out what outlives the callback. Fewer ArrayBuffers, fewer full GCs, and none per new connection.
    const socket = typedErrors(this.address, () =>
      secure === undefined
        ? net.connect({
            host: hostOf(this.address),
            port: portOf(this.address),
            noDelay: true,
            onread: {
              buffer: sharedReadBuffer(),
              callback: (bytes: number, buffer: Uint8Array) => {
                decoder!.push((buffer as Buffer).subarray(0, bytes));
                return true;
              },
            },
          })
        : this.connectTls(secure, (chunk) => decoder!.push(chunk)),
    );
    const writer = new FrameWriter(socket);
    this.socket = socket;
    this.writer = writer;
    const connectTimer = setTimeout(
      () => socket.destroy(new SatchelError('UNAVAILABLE', `connect to ${this.address} timed out`)),
      this.options.connectTimeoutMs ?? 5_000,
    );
    this.decoder = decoder = new FrameDecoder({
      maxBody: this.options.maxResponseBytes ?? 2 ** 31 - 1,
      onFrame: (frame) => this.onFrame(frame),
      onOversize: (frame) =>
        this.settle(frame.id, (r) => r.reject(new SatchelError('TOO_LARGE', `reply of ${frame.bodyLength} bytes refused`))),
      onError: (error) => socket.destroy(error),
      allocate: (size, frame) => {
        const into = this.pending.get(frame.id)?.into;
        return into != null && into.length === size && frame.code === Status.OK && frame.keyLength === 0 ? into : Buffer.allocUnsafe(size);
      },
    });
    // Over TLS the connection is up once the handshake is done, and the connect timeout covers the handshake.
    socket.on(secure === undefined ? 'connect' : 'secureConnect', () => {
      clearTimeout(connectTimer);
      this.failures = 0;
    });
    socket.on('error', () => {}); // 'close' follows and says what to do
    const handshake = secure === undefined ? null : this.watchHandshake(socket as tls.TLSSocket);
    socket.on('close', () => {
      clearTimeout(connectTimer);
      writer.release();
      if (this.socket !== socket) return;
      this.socket = null;
      this.writer = null;
      this.decoder = null;
      if (this.failures < 16) this.failures++;
      const backoff = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (this.failures - 1));
      this.retryAt = this.pending.size > 0 || this.failures > 1 ? Date.now() + backoff * (0.5 + Math.random() / 2) : 0;
      this.lastError =
        this.helloError ?? handshake?.failure() ?? new SatchelError('UNAVAILABLE', `connection to node ${this.address} lost`);
      this.failAll(this.lastError);
    });
    // HELLO goes first on the wire; id 0 is never a request's.
    writer.frame(Op.HELLO, 0, 0, 0, 0, this.token, null);
    return writer;
  }

  /**
   * A TLS connection to the node. Its reads come as 'data' chunks: the reused read buffer (`onread`) of the
   * plain path is a TCP socket's, and here the bytes arrive decrypted by the TLS layer.
   */
  private connectTls(secure: { ca: string | Buffer; servername?: string }, onData: (chunk: Buffer) => void): tls.TLSSocket {
    const host = hostOf(this.address);
    const socket = tls.connect({
      host,
      port: portOf(this.address),
      ca: secure.ca,
      // SNI only for a name, also when `servername` is an IP address: Node warns on stderr for one (DEP0123).
      ...serverIdentity(host, secure.servername),
    });
    socket.setNoDelay(true);
    socket.on('data', onData);
    return socket;
  }

  /**
   * Why a TLS connection ended before its handshake completed, as the error its calls get: the TCP connection
   * opened, but the certificate was refused (or the node does not speak TLS). Null once the handshake is done,
   * or when the TCP connection itself failed (the usual "connection lost").
   */
  private watchHandshake(socket: tls.TLSSocket): { failure(): SatchelError | null } {
    let connected = false;
    let secured = false;
    let reason: string | null = null;
    socket.once('connect', () => (connected = true));
    socket.once('secureConnect', () => (secured = true));
    socket.on('error', (error: Error) => {
      if (!secured && connected && reason === null) reason = error.message;
    });
    return {
      failure: () => {
        if (secured || !connected) return null;
        const host = this.options.tls?.servername ?? hostOf(this.address);
        return new SatchelError(
          'UNAVAILABLE',
          `TLS handshake with node ${this.address} failed: ${reason ?? 'the node closed the connection'}; ` +
            `its certificate must be signed by the CA this client trusts (the ticket's, or --tls-ca) and name ${host}`,
        );
      },
    };
  }

  private onFrame(f: FrameView): void {
    if (f.id === 0) {
      if (f.code !== Status.OK) {
        const message = f.buf.toString('utf8', f.bodyStart, f.bodyStart + f.bodyLength);
        this.helloError = new SatchelError(errorCodeOf(f.code), message);
      }
      return;
    }
    if ((f.flags & Flag.EVENT) !== 0) {
      const listener = this.parked.get(f.id)?.onEvent;
      if (listener != null)
        listener(f.arg, f.keyLength === 0 ? '' : f.buf.toString('utf8', f.bodyStart, f.bodyStart + f.keyLength), f.epoch);
      return;
    }
    const reply = this.take(f.id) ?? this.takeParked(f.id);
    if (reply === undefined) return; // timed out or cancelled already
    reply.status = f.code;
    reply.flags = f.flags;
    reply.arg = f.arg;
    reply.epoch = f.epoch;
    if (f.bodyLength > 0) {
      // An assembled body is ours to keep; a view of the read chunk is copied so the chunk can be freed.
      // allocUnsafe carves small bodies from Node's shared 8 KiB pool: one ArrayBuffer per pool instead of
      // one per reply, which cut the client's full GCs (driven by external memory) at 1 KiB × 64 in flight.
      if (f.owned) {
        reply.body = f.buf.subarray(f.bodyStart, f.bodyStart + f.bodyLength);
      } else {
        reply.body = Buffer.allocUnsafe(f.bodyLength);
        f.buf.copy(reply.body, 0, f.bodyStart, f.bodyStart + f.bodyLength);
      }
    }
    if (f.code === Status.UNAVAILABLE) {
      const refusal = new SatchelError('UNAVAILABLE', `node ${this.address}: ${reply.message}`);
      refusals.set(refusal, this.address);
      reply.reject(refusal);
    } else reply.resolve(reply);
  }

  private settle(id: number, then: (reply: Reply) => void): void {
    const reply = this.take(id);
    if (reply !== undefined) then(reply);
  }

  /** Removes an answered (or timed-out) request, frees its share of the window, lets waiting ones go. */
  private take(id: number): Reply | undefined {
    const reply = this.pending.get(id);
    if (reply === undefined) return undefined;
    this.pending.delete(id);
    // Answered, it was delivered whole and this does nothing; timed out mid-body, the rest of it must not land in
    // memory the caller has moved on with (a block retried elsewhere, its value already returned).
    if (reply.into !== null) this.decoder?.abandon(reply.into);
    this.inflightBytes -= reply.bytes;
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (this.inflightBytes > 0 && this.inflightBytes + next.reply.bytes > this.maxInflightBytes) break;
      this.waiting.shift();
      next.run();
    }
    if (this.pending.size === 0 && this.waiting.length === 0) this.notifyIdle();
    return reply;
  }

  private takeParked(id: number): Reply | undefined {
    const parked = this.parked.get(id);
    if (parked === undefined) return undefined;
    this.parked.delete(id);
    if (parked.backstop !== null) clearTimeout(parked.backstop);
    return parked;
  }

  private failParked(error: SatchelError): void {
    for (const id of [...this.parked.keys()]) this.takeParked(id)?.reject(error);
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters.splice(0);
    for (const resolve of waiters) resolve();
  }

  private failAll(error: SatchelError): void {
    this.failParked(error);
    const replies = [...this.pending.values(), ...this.waiting.map((w) => w.reply)];
    this.pending.clear();
    this.waiting.length = 0;
    this.inflightBytes = 0;
    for (const reply of replies) reply.reject(error);
    this.notifyIdle();
  }

  private ensureSweep(): void {
    if (this.sweepTimer !== null) return;
    const every = Math.max(10, Math.min(250, this.timeoutMs / 4));
    this.sweepTimer = setInterval(() => this.sweep(), every);
    this.sweepTimer.unref();
  }

  /** Fails requests past their deadline. Deadlines grow with insertion order, so the scan stops early. */
  private sweep(): void {
    if (this.pending.size === 0 && this.waiting.length === 0) {
      clearInterval(this.sweepTimer!);
      this.sweepTimer = null;
      return;
    }
    const now = Date.now();
    const timeout = () => new SatchelError('TIMEOUT', `node ${this.address} did not answer within ${this.timeoutMs} ms`);
    while (this.waiting.length > 0 && this.waiting[0]!.reply.deadline <= now) this.waiting.shift()!.reply.reject(timeout());
    for (const reply of this.pending.values()) {
      if (reply.deadline > now) break;
      this.take(reply.id);
      reply.reject(timeout());
    }
    if (this.pending.size === 0 && this.waiting.length === 0) this.notifyIdle();
  }

  private destroySocket(): void {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.socket?.destroy();
    this.socket = null;
    this.writer = null;
    this.decoder = null;
  }
}

/** Opening a socket throws only for options Node refuses (a CA that is not PEM text or bytes): BAD_REQUEST. */
function typedErrors<T>(address: string, open: () => T): T {
  try {
    return open();
  } catch (cause) {
    if (cause instanceof SatchelError) throw cause;
    throw new SatchelError('BAD_REQUEST', `cannot connect to node ${address}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

export function hostOf(address: string): string {
  const i = address.lastIndexOf(':');
  return i < 0 ? address : address.slice(0, i).replace(/^\[|\]$/g, '');
}

export function portOf(address: string): number {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SatchelError('BAD_REQUEST', `not a host:port address: ${JSON.stringify(address)}`);
  }
  return port;
}
