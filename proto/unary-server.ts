/**
 * A gRPC server of unary calls over Node's own `node:http2`, for the controller and the metadata servers: the
 * messages (de)serialised by the service definition's protobufjs functions (control.ts) and every outcome decided by
 * `runUnary`, as grpc-js's server (`addService`) decides it. What it leaves out is what Satchel does not use:
 * streaming, compression, interceptors, channelz. grpc-js's server spent about twice the CPU per call (its per-call
 * layers: the call stream, interceptors, metadata objects): ~0.2 ms of CPU and ~0.15 ms of latency per call on
 * this 2-core machine (perf/RESULTS.md, register), paid twice by every registration (its RegisterJob at the
 * controller, its SetPlacement at each metadata server).
 *
 * Same limits as GRPC_SERVER_OPTIONS: at most 64 streams at once per connection (HTTP/2's
 * SETTINGS_MAX_CONCURRENT_STREAMS) and requests of at most 4 MiB (RESOURCE_EXHAUSTED past it, no `satchel-code`,
 * as grpc-js answers). An unknown method or service is UNIMPLEMENTED; a content type other than gRPC's gets
 * HTTP 415; a call past its `grpc-timeout` is answered DEADLINE_EXCEEDED.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { grpc, runUnary } from './control.ts';
import type { Methods, ServiceImpl } from './control-types.ts';
import { SatchelError } from './errors.ts';
import { grpcFrame, type StreamMethod, serveMessageStream } from './message-stream.ts';

const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
const MAX_CONCURRENT_STREAMS = 64;
const TIMEOUT_UNITS_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };

interface Method {
  name: string;
  deserialize: (bytes: Buffer) => unknown;
  serialize: (value: unknown) => Buffer;
  handler: (request: unknown) => Promise<unknown>;
}

export class UnaryServer {
  private readonly methods = new Map<string, Method>();
  private readonly streams = new Map<string, { method: StreamMethod; handler: (request: unknown) => Promise<unknown> }>();
  /** Streams of streamed methods open now: they never end on their own, so closing the server cancels them. */
  private readonly open = new Set<http2.ServerHttp2Stream>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private server: http2.Http2Server | http2.Http2SecureServer | null = null;

  constructor(private readonly onUnexpected: (method: string, error: unknown) => void) {}

  /** Serves `definition`'s methods (a proto/control.ts service) with `impl`'s async handlers. */
  addService<M extends Methods>(definition: grpc.ServiceDefinition, impl: ServiceImpl<M>): void {
    for (const [name, method] of Object.entries(definition)) {
      this.methods.set(method.path, {
        name,
        deserialize: method.requestDeserialize,
        serialize: method.responseSerialize as (value: unknown) => Buffer,
        handler: impl[name as keyof M] as (request: unknown) => Promise<unknown>,
      });
    }
  }

  /**
   * Serves a streamed method (message-stream.ts): each request on a stream run by `handler` as a unary call of it
   * would be, answered in order on the same stream.
   */
  addStream(method: StreamMethod, handler: (request: unknown) => Promise<unknown>): void {
    this.streams.set(method.path, { method, handler });
  }

  /** Binds `host:port` (port 0: any free port), over TLS with `tls`; resolves with `host:port` as bound. */
  listen(host: string, port: number, tls?: { cert: string | Buffer; key: string | Buffer }): Promise<string> {
    const settings = { maxConcurrentStreams: MAX_CONCURRENT_STREAMS };
    const server =
      tls === undefined
        ? http2.createServer({ settings })
        : http2.createSecureServer({ settings, cert: tls.cert, key: tls.key, ALPNProtocols: ['h2'] });
    this.server = server;
    server.on('session', (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', () => {}); // a peer gone mid-call: its streams report it, nothing to do here
    });
    server.on('stream', (stream, headers) => this.serve(stream, headers));
    return new Promise((resolve, reject) => {
      let listening = false;
      // Kept after the bind: an error of the listening socket (EMFILE on accept, say) is reported, never thrown.
      server.on('error', (error) => {
        if (listening) this.onUnexpected('(server)', error);
        else reject(new SatchelError('UNAVAILABLE', `cannot listen on ${host}:${port}: ${error.message}`, { cause: error }));
      });
      server.listen(port, host, () => {
        listening = true;
        resolve(`${host}:${(server.address() as AddressInfo).port}`);
      });
    });
  }

  /** Stops taking connections and lets calls in flight finish, for at most `graceMs`; then ends every connection. */
  async close(graceMs = 2_000): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const stream of this.open) if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    for (const session of this.sessions) session.close();
    const timer = setTimeout(() => {
      for (const session of this.sessions) session.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }

  private serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => {}); // a reset by the caller: nothing left to answer
    const contentType = headers['content-type'];
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const path = headers[':path'] ?? '';
    const streamed = this.streams.get(path);
    if (streamed !== undefined) {
      const { method, handler } = streamed;
      this.open.add(stream);
      stream.on('close', () => this.open.delete(stream));
      serveMessageStream(stream, method, (request) => runUnary(method.name, handler, request, this.onUnexpected), this.onUnexpected);
      return;
    }
    const method = this.methods.get(path);
    if (method === undefined) {
      this.fail(stream, grpc.status.UNIMPLEMENTED, `The server does not implement the method ${path}`);
      return;
    }
    let answered = false;
    const deadline = timeoutMsOf(headers['grpc-timeout']);
    const timer =
      deadline === null
        ? null
        : setTimeout(() => {
            answered = true;
            this.fail(stream, grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded');
          }, deadline);
    const done = () => {
      answered = true;
      if (timer !== null) clearTimeout(timer);
    };
    stream.on('close', () => {
      if (timer !== null) clearTimeout(timer);
    });
    const chunks: Buffer[] = [];
    let received = 0;
    stream.on('data', (chunk: Buffer) => {
      if (answered) return;
      received += chunk.length;
      if (received > MAX_REQUEST_BYTES + 5) {
        done();
        this.fail(stream, grpc.status.RESOURCE_EXHAUSTED, `Received message larger than max (${received - 5} vs. ${MAX_REQUEST_BYTES})`);
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (answered) return;
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      if (bytes.length < 5 || bytes.readUInt32BE(1) !== bytes.length - 5) {
        done();
        this.fail(stream, grpc.status.INVALID_ARGUMENT, `${method.name}: not one gRPC message`, 'BAD_REQUEST');
        return;
      }
      if (bytes[0] !== 0) {
        done();
        this.fail(stream, grpc.status.UNIMPLEMENTED, `${method.name}: compressed messages are not accepted`);
        return;
      }
      void runUnary(method.name, method.handler, method.deserialize(bytes.subarray(5)), this.onUnexpected).then((outcome) => {
        if (answered) return;
        done();
        if (!('reply' in outcome)) {
          this.fail(stream, outcome.code, outcome.details, outcome.satchelCode);
          return;
        }
        let body: Buffer;
        try {
          body = method.serialize(outcome.reply);
        } catch (error) {
          this.onUnexpected(method.name, error);
          this.fail(stream, grpc.status.INTERNAL, 'internal error', 'UNAVAILABLE');
          return;
        }
        if (stream.closed || stream.destroyed) return;
        const framed = grpcFrame(body);
        stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'OK' }));
        stream.end(framed);
      });
    });
  }

  /** A trailers-only answer: the status in the response's one HEADERS frame. */
  private fail(stream: http2.ServerHttp2Stream, code: grpc.status, details: string, satchelCode?: string): void {
    if (stream.closed || stream.destroyed || stream.headersSent) return;
    stream.respond(
      {
        ':status': 200,
        'content-type': 'application/grpc+proto',
        'grpc-status': String(code),
        'grpc-message': encodeURI(details),
        ...(satchelCode === undefined ? {} : { 'satchel-code': satchelCode }),
      },
      { endStream: true },
    );
  }
}

/** A `grpc-timeout` header in ms (at most ~24.8 days, what a timer waits), or null without one. */
function timeoutMsOf(header: string | string[] | undefined): number | null {
  const match = typeof header === 'string' ? /^(\d{1,8})([HMSmun])$/.exec(header.trim()) : null;
  if (match === null) return null;
  return Math.min(2 ** 31 - 1, Math.ceil(Number(match[1]) * TIMEOUT_UNITS_MS[match[2]!]!));
}
