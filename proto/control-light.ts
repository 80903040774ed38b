/**
 * The client's control-plane calls (attach's placement lookups, growth, and a driver's register, renew and
 * deregister) as gRPC unary calls over Node's own HTTP/2, with the messages encoded by protobuf-lite.ts: the same
 * wire the servers' grpc-js speaks (control.ts), without grpc-js or protobufjs, so a function's bundle carries no
 * dependency and its process loads none. Errors arrive as they do through ControlClient: the `satchel-code`
 * trailer gives the SatchelError's code.
 */
import http2 from 'node:http2';
import { controlCallError } from './control-errors.ts';
import { LIGHT_METHODS } from './control-schema.ts';
import { SatchelError } from './errors.ts';
import { grpcFrame } from './message-stream.ts';
import { hostOf } from './node-connection.ts';
import { decodeMessage, encodeMessage } from './protobuf-lite.ts';
import { DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS } from './timeouts.ts';
import { type ClientTls, serverIdentity } from './tls.ts';

type Methods = Record<string, [unknown, unknown]>;

/** A reply larger than this is refused: placements and tickets are KBs (the servers' limit is 4 MiB). */
const MAX_REPLY_BYTES = 4 * 1024 * 1024;

/**
 * The HTTP/2 session to one server (address and TLS settings), shared by every client of this process that calls
 * it, and how many of them are open: a driver registering a job a second used to open a connection per job (its
 * handle's renewals and deregistration), a TCP and HTTP/2 handshake on both sides each time.
 */
interface SharedSession {
  session: http2.ClientHttp2Session | null;
  users: number;
}

const sessions = new Map<string, SharedSession>();

function sessionKey(address: string, tls: ClientTls | undefined): string {
  return tls === undefined ? address : `${address}\0${tls.servername ?? ''}\0${String(tls.ca)}`;
}

/**
 * Calls of one service (`satchel.v1.Controller`, `satchel.v1.Metadata`) at one address, over the one HTTP/2 session
 * this process keeps to it (opened at the first call, shared with the other clients of that address, ended when the
 * last of them closes).
 */
export class LightControlClient<M extends Methods> {
  private shared: SharedSession | null = null;
  private closed = false;

  constructor(
    private readonly service: string,
    readonly address: string,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
    private readonly tls?: ClientTls,
  ) {}

  call<K extends keyof M & string>(method: K, request: M[K][0], timeoutMs = this.timeoutMs): Promise<M[K][1]> {
    const path = `${this.service}/${method}`;
    const schemas = LIGHT_METHODS[path];
    if (schemas === undefined) return Promise.reject(new SatchelError('BAD_REQUEST', `${path} is not a call the client makes`));
    if (this.closed) return Promise.reject(new SatchelError('CLOSED', `${method} at ${this.address}: the client was closed`));
    // A timer past 2^31 − 1 ms fires at once (and Node warns on stderr): refused, as ControlClient does.
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
      return Promise.reject(new SatchelError('BAD_REQUEST', `${method}: timeoutMs must be a number of ms from 0 to ${MAX_TIMEOUT_MS}`));
    }
    const what = `${method} at ${this.address}`;
    let body: Buffer;
    try {
      body = encodeMessage(schemas[0], request as Record<string, unknown>);
    } catch (cause) {
      return Promise.reject(
        new SatchelError('BAD_REQUEST', `${what}: the request does not encode: ${(cause as Error).message}`, { cause }),
      );
    }
    const framed = grpcFrame(body);
    return new Promise((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.open().request({
          ':method': 'POST',
          ':path': `/${path}`,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': `${Math.max(1, Math.ceil(timeoutMs))}m`,
        });
      } catch (cause) {
        if (this.shared !== null) drop(this.shared, this.shared.session);
        reject(new SatchelError('UNAVAILABLE', `${what}: ${(cause as Error).message}`, { cause }));
        return;
      }
      const chunks: Buffer[] = [];
      let received = 0;
      let status: Record<string, unknown> | null = null;
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        finish(new SatchelError('TIMEOUT', `${what}: timed out`));
      }, timeoutMs);
      let done = false;
      const finish = (error: SatchelError | null, reply?: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (error !== null) reject(error);
        else resolve(reply as M[K][1]);
      };
      // A trailers-only answer (an error before any reply) carries the status among the headers.
      stream.on('response', (headers) => {
        if (headers['grpc-status'] !== undefined) status = headers;
      });
      stream.on('trailers', (trailers) => (status = trailers));
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > MAX_REPLY_BYTES + 5) {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          finish(new SatchelError('TOO_LARGE', `${what}: a reply over ${MAX_REPLY_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      stream.on('error', (cause) => finish(new SatchelError('UNAVAILABLE', `${what}: ${cause.message}`, { cause })));
      stream.on('close', () => {
        if (done) return;
        if (status === null) return finish(new SatchelError('UNAVAILABLE', `${what}: the connection closed without an answer`));
        const code = Number(status['grpc-status']);
        if (code !== 0) return finish(errorOf(status, code, what));
        const bytes = Buffer.concat(chunks);
        if (bytes.length < 5 || bytes[0] !== 0 || bytes.readUInt32BE(1) !== bytes.length - 5) {
          return finish(new SatchelError('UNAVAILABLE', `${what}: a reply that is not one uncompressed gRPC message`));
        }
        try {
          finish(null, decodeMessage(schemas[1], bytes.subarray(5)));
        } catch (error) {
          finish(error instanceof SatchelError ? error : new SatchelError('UNAVAILABLE', `${what}: ${(error as Error).message}`));
        }
      });
      stream.end(framed);
    });
  }

  /**
   * Later calls fail with CLOSED; calls in flight finish. The session ends with the last client of its server to
   * close.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const shared = this.shared;
    if (shared === null) return;
    this.shared = null;
    if (--shared.users > 0) return;
    const key = sessionKey(this.address, this.tls);
    if (sessions.get(key) === shared) sessions.delete(key);
    // Gracefully: calls in flight finish (each within its deadline), none can start.
    if (shared.session !== null && !shared.session.destroyed) shared.session.close();
    shared.session = null;
  }

  private open(): http2.ClientHttp2Session {
    if (this.shared === null) {
      const key = sessionKey(this.address, this.tls);
      let shared = sessions.get(key);
      if (shared === undefined) {
        shared = { session: null, users: 0 };
        sessions.set(key, shared);
      }
      shared.users++;
      this.shared = shared;
    }
    const shared = this.shared;
    if (shared.session !== null && !shared.session.closed && !shared.session.destroyed) return shared.session;
    const host = hostOf(this.address);
    const authority = `${this.tls === undefined ? 'http' : 'https'}://${this.address}`;
    const session =
      this.tls === undefined
        ? http2.connect(authority)
        : http2.connect(authority, { ca: this.tls.ca, ALPNProtocols: ['h2'], ...serverIdentity(host, this.tls.servername) });
    session.on('error', () => drop(shared, session)); // each stream reports it too
    // The server is going away: no new call on this session, but the calls in flight get their answers.
    session.on('goaway', () => {
      if (shared.session === session) shared.session = null;
      if (!session.closed && !session.destroyed) session.close();
    });
    // An idle driver or function must not be kept alive by its control-plane session.
    session.unref();
    shared.session = session;
    return session;
  }
}

/** Ends a session that failed; the next call of any of its clients opens another. */
function drop(shared: SharedSession, session: http2.ClientHttp2Session | null): void {
  if (session === null) return;
  if (shared.session === session) shared.session = null;
  if (!session.destroyed) session.destroy();
}

function errorOf(status: Record<string, unknown>, code: number, what: string): SatchelError {
  const raw = typeof status['grpc-message'] === 'string' ? (status['grpc-message'] as string) : '';
  let message = raw;
  try {
    message = decodeURIComponent(raw);
  } catch {
    // not percent-encoded after all: shown as it came
  }
  return controlCallError(code, status['satchel-code'], message, what);
}
