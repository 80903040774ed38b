/**
 * A gRPC bidirectional stream of one request type answered one reply per request, in order: what storage nodes
 * report on (`ReportNodes`: the messages of the unary ReportNode). A unary call costs the controller an HTTP/2
 * stream per report — its headers, trailers and objects —, ~0.39 ms of CPU per report at 1,000 nodes (bench scale,
 * perf/RESULTS.md), of which the handler itself is ~65 µs; on one long-lived stream a report is a DATA frame.
 *
 * `serveMessageStream` is the server's side (proto/unary-server.ts `addStream`), `MessageStreamClient` a node's.
 * A handler's error ends the stream with its status, as a unary call would be answered; the client then fails
 * that request and every one after it, and opens a new stream for the next.
 */
import http2 from 'node:http2';
import { controlCallError } from './control-errors.ts';
import { SatchelError } from './errors.ts';
import { hostOf } from './node-connection.ts';
import { type ClientTls, serverIdentity } from './tls.ts';

/** A streamed method: its path and its messages' codecs (control.ts `streamOf`). */
export interface StreamMethod {
  name: string;
  path: string;
  serializeRequest: (value: object) => Buffer;
  deserializeRequest: (bytes: Buffer) => object;
  serializeReply: (value: object) => Buffer;
  deserializeReply: (bytes: Buffer) => object;
}

/** How one request was answered: its reply, or the status its stream ends with (control.ts `runUnary`). */
export type StreamOutcome = { reply: unknown } | { code: number; details: string; satchelCode: string };

/** gRPC's UNIMPLEMENTED: a server without the streamed method (an older controller). */
const UNIMPLEMENTED = 12;

/** Past this a message is refused, as a unary request is (unary-server.ts). */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** One gRPC message on the wire: not compressed, its length, its bytes. */
export function grpcFrame(body: Buffer): Buffer {
  const framed = Buffer.allocUnsafe(5 + body.length);
  framed[0] = 0;
  framed.writeUInt32BE(body.length, 1);
  body.copy(framed, 5);
  return framed;
}

/**
 * Splits a gRPC message stream into messages: `push` each chunk as it comes; `onMessage` gets each whole message's
 * body (compressed or oversized ones are refused with the reason).
 */
class MessageSplitter {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly onMessage: (body: Buffer) => void,
    private readonly onBad: (reason: string) => void,
  ) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 5) {
      if (this.pending[0] !== 0) return this.onBad('compressed messages are not accepted');
      const length = this.pending.readUInt32BE(1);
      if (length > MAX_MESSAGE_BYTES) return this.onBad(`a message of ${length} bytes, over ${MAX_MESSAGE_BYTES}`);
      if (this.pending.length < 5 + length) return;
      const body = this.pending.subarray(5, 5 + length);
      this.pending = this.pending.subarray(5 + length);
      this.onMessage(body);
    }
  }
}

/**
 * The server's side of one stream: each request run by `run` (one at a time, in order) and answered with a message,
 * until the caller ends its side (trailers OK) or a request fails (trailers with its status).
 */
export function serveMessageStream(
  stream: http2.ServerHttp2Stream,
  method: StreamMethod,
  run: (request: unknown) => Promise<StreamOutcome>,
  onUnexpected: (method: string, error: unknown) => void,
): void {
  let ended = false;
  let queue: Promise<void> = Promise.resolve();
  const finish = (code: number, details: string, satchelCode?: string) => {
    if (ended) return;
    ended = true;
    if (stream.closed || stream.destroyed) return;
    const trailers = {
      'grpc-status': String(code),
      'grpc-message': encodeURI(details),
      ...(satchelCode === undefined ? {} : { 'satchel-code': satchelCode }),
    };
    stream.once('wantTrailers', () => stream.sendTrailers(trailers));
    stream.end();
  };
  stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' }, { waitForTrailers: true });
  const splitter = new MessageSplitter(
    (body) => {
      const request = method.deserializeRequest(body);
      queue = queue.then(async () => {
        if (ended) return;
        const outcome = await run(request);
        if (ended || stream.closed || stream.destroyed) return;
        if (!('reply' in outcome)) return finish(outcome.code, outcome.details, outcome.satchelCode);
        let reply: Buffer;
        try {
          reply = method.serializeReply(outcome.reply as object);
        } catch (error) {
          onUnexpected(method.name, error);
          return finish(13, 'internal error', 'UNAVAILABLE'); // INTERNAL
        }
        stream.write(grpcFrame(reply));
      });
    },
    (reason) => finish(3, `${method.name}: ${reason}`, 'BAD_REQUEST'), // INVALID_ARGUMENT
  );
  stream.on('data', (chunk: Buffer) => {
    if (!ended) splitter.push(chunk);
  });
  // The caller is done: answer what it sent, then end with OK.
  stream.on('end', () => {
    void queue.then(() => finish(0, 'OK'));
  });
}

interface Waiting {
  resolve: (reply: unknown) => void;
  reject: (error: SatchelError) => void;
  timer: NodeJS.Timeout;
}

/**
 * HTTP/2 sessions several MessageStreamClients open their streams on, each session theirs to open and close, not
 * the clients': bench scale's simulated storage nodes, thousands in one process, where a session each would be a
 * socket each, past the process's file limit. `session()` returns an open one (a new one when the last failed).
 */
export interface SharedSessions {
  session(): http2.ClientHttp2Session;
}

/**
 * A caller's side: one HTTP/2 session and one stream to `address`, opened at the first `send` and again after a
 * failure (with `shared`, the stream on one of its sessions, which a failure leaves open). Replies are matched to
 * requests in order. `unimplemented` turns true when the server answered that it has no such method (the caller
 * then uses the unary call).
 */
export class MessageStreamClient<Req extends object, Rep> {
  unimplemented = false;
  private session: http2.ClientHttp2Session | null = null;
  private stream: http2.ClientHttp2Stream | null = null;
  private readonly waiting: Waiting[] = [];
  private closed = false;

  constructor(
    private readonly method: StreamMethod,
    readonly address: string,
    private readonly tls?: ClientTls,
    private readonly shared?: SharedSessions,
  ) {}

  /** Sends `request`; resolves with its reply, rejects (TIMEOUT after `timeoutMs`, or the stream's failure). */
  send(request: Req, timeoutMs: number): Promise<Rep> {
    if (this.closed) return Promise.reject(new SatchelError('CLOSED', `${this.method.name} at ${this.address}: closed`));
    let body: Buffer;
    try {
      body = this.method.serializeRequest(request);
    } catch (cause) {
      return Promise.reject(new SatchelError('BAD_REQUEST', `${this.method.name}: the request does not encode`, { cause }));
    }
    return new Promise<Rep>((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.open();
      } catch (cause) {
        this.reset();
        reject(new SatchelError('UNAVAILABLE', `${this.method.name} at ${this.address}: ${(cause as Error).message}`, { cause }));
        return;
      }
      const timer = setTimeout(
        () => this.fail(new SatchelError('TIMEOUT', `${this.method.name} at ${this.address}: timed out`)),
        timeoutMs,
      );
      this.waiting.push({ resolve: resolve as (reply: unknown) => void, reject, timer });
      stream.write(grpcFrame(body));
    });
  }

  close(): void {
    this.closed = true;
    this.fail(new SatchelError('CLOSED', `${this.method.name} at ${this.address}: closed`));
  }

  private open(): http2.ClientHttp2Stream {
    if (this.stream !== null) return this.stream;
    let session: http2.ClientHttp2Session;
    if (this.shared === undefined) {
      session = this.connect();
      this.session = session;
    } else {
      session = this.shared.session();
    }
    const stream = session.request({ ':method': 'POST', ':path': this.method.path, 'content-type': 'application/grpc', te: 'trailers' });
    this.stream = stream;
    const what = `${this.method.name} at ${this.address}`;
    let status: Record<string, unknown> | null = null;
    const splitter = new MessageSplitter(
      (body) => {
        const next = this.waiting.shift();
        if (next === undefined) return;
        clearTimeout(next.timer);
        try {
          next.resolve(this.method.deserializeReply(body));
        } catch (error) {
          next.reject(new SatchelError('UNAVAILABLE', `${what}: a reply that does not decode: ${(error as Error).message}`));
        }
      },
      (reason) => this.fail(new SatchelError('UNAVAILABLE', `${what}: ${reason}`)),
    );
    stream.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) status = headers;
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.stream === stream) splitter.push(chunk);
    });
    stream.on('error', (cause) => {
      if (this.stream === stream) this.fail(new SatchelError('UNAVAILABLE', `${what}: ${cause.message}`, { cause }));
    });
    // The server ended its side (its trailers; this side never ends on its own, so 'close' would wait for the reset).
    stream.on('trailers', (trailers) => {
      status = trailers;
      ended();
    });
    stream.on('close', () => ended());
    const ended = () => {
      if (this.stream !== stream) return;
      const code = status === null ? -1 : Number(status['grpc-status']);
      if (code === UNIMPLEMENTED) this.unimplemented = true;
      const details = status === null ? '' : decodedMessage(String(status['grpc-message'] ?? ''));
      this.fail(
        status === null || code === 0
          ? new SatchelError('UNAVAILABLE', `${what}: the stream ended`)
          : controlCallError(code, status['satchel-code'], details, what),
      );
    };
    return stream;
  }

  private connect(): http2.ClientHttp2Session {
    const authority = `${this.tls === undefined ? 'http' : 'https'}://${this.address}`;
    const session =
      this.tls === undefined
        ? http2.connect(authority)
        : http2.connect(authority, {
            ca: this.tls.ca,
            ALPNProtocols: ['h2'],
            ...serverIdentity(hostOf(this.address), this.tls.servername),
          });
    session.on('error', () => {}); // the stream reports it
    session.unref();
    return session;
  }

  /** Fails every request waiting and drops the stream; the next `send` opens another. */
  private fail(error: SatchelError): void {
    for (const waiting of this.waiting.splice(0)) {
      clearTimeout(waiting.timer);
      waiting.reject(error);
    }
    this.reset();
  }

  private reset(): void {
    const { session, stream } = this;
    this.stream = null;
    this.session = null;
    if (stream !== null && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    if (session !== null && !session.destroyed) session.destroy();
  }
}

function decodedMessage(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
