/**
 * The control plane's services over @grpc/grpc-js, with protobufjs doing the (de)serialisation straight from
 * control.proto: no generated code to keep in step, no @grpc/proto-loader. Errors cross the wire as a gRPC
 * status plus a `satchel-code` trailer, and come out the other side as the same SatchelError.
 */

import { createSecureContext, type SecureContext, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { controlCallError } from './control-errors.ts';
import type { Methods, ServiceImpl } from './control-types.ts';
import { type ErrorCode, SatchelError } from './errors.ts';
import type { StreamMethod } from './message-stream.ts';
import { hostOf } from './node-connection.ts';
import { DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS } from './timeouts.ts';
import { type ClientTls, serverIdentity } from './tls.ts';

export { MAX_TIMEOUT_MS };

/** Marks a request whose bytes did not decode (see `requestDeserialize`); its value is why. */
const UNDECODABLE = Symbol('undecodable request');

/**
 * Options for every gRPC server and channel. Channelz off: Satchel does not use it, and its per-socket records
 * are what grew a controller under job churn (grpc-node #2068, #1941; seen here as +14 % RSS in a 10-minute
 * soak with ~100 jobs registered a minute).
 */
export const GRPC_OPTIONS: grpc.ChannelOptions = { 'grpc.enable_channelz': 0 };

/**
 * What every control-plane server accepts from one peer: at most 64 calls at once on one connection (grpc-js
 * sets no limit: a client could open thousands of streams) and messages of at most 4 MiB (a placement of 16
 * generations of 1,000 nodes is under 1 MiB). A call past either gets RESOURCE_EXHAUSTED, which the client
 * reports as TOO_LARGE (`fromServiceError`).
 */
export const GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  ...GRPC_OPTIONS,
  'grpc.max_concurrent_streams': 64,
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
};

const root = protobuf.loadSync(fileURLToPath(new URL('./control.proto', import.meta.url)));
root.resolveAll();
const toObjectOptions: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true };

function definitionOf(serviceName: string): grpc.ServiceDefinition {
  const service = root.lookupService(serviceName);
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of Object.values(service.methods)) {
    if (method.requestStream === true || method.responseStream === true) continue; // streamOf's
    const codecs = codecsOf(method);
    definition[method.name] = {
      path: `/${serviceName}/${method.name}`,
      requestStream: false,
      responseStream: false,
      originalName: method.name,
      requestSerialize: codecs.serializeRequest,
      requestDeserialize: codecs.deserializeRequest,
      responseSerialize: codecs.serializeReply,
      responseDeserialize: codecs.deserializeReply,
    };
  }
  return definition as grpc.ServiceDefinition;
}

/** A method's messages to and from bytes, for unary calls (`definitionOf`) and streams (`streamOf`) alike. */
function codecsOf(method: protobuf.Method): Omit<StreamMethod, 'name' | 'path'> {
  const req = method.resolvedRequestType!;
  const res = method.resolvedResponseType!;
  return {
    serializeRequest: (value) => Buffer.from(req.encode(req.fromObject(value)).finish()),
    // A request that does not decode reaches the handler as UNDECODABLE (answered INVALID_ARGUMENT, not
    // grpc-js's INTERNAL, which a client would take for a fault of the server).
    deserializeRequest: (bytes) => {
      try {
        return req.toObject(req.decode(bytes), toObjectOptions);
      } catch (error) {
        return { [UNDECODABLE]: error instanceof Error ? error.message : String(error) };
      }
    },
    serializeReply: (value) => Buffer.from(res.encode(res.fromObject(value)).finish()),
    deserializeReply: (bytes) => res.toObject(res.decode(bytes), toObjectOptions),
  };
}

/** A streamed method of control.proto, for message-stream.ts. */
function streamOf(serviceName: string, name: string): StreamMethod {
  return { name, path: `/${serviceName}/${name}`, ...codecsOf(root.lookupService(serviceName).methods[name]!) };
}

export const CONTROLLER_SERVICE = definitionOf('satchel.v1.Controller');
/** Node reports on one stream (ReportNode's messages). */
export const REPORT_NODES = streamOf('satchel.v1.Controller', 'ReportNodes');
export const METADATA_SERVICE = definitionOf('satchel.v1.Metadata');

const grpcStatusOf: Record<ErrorCode, grpc.status> = {
  UNAUTHORIZED: grpc.status.UNAUTHENTICATED,
  NO_SUCH_JOB: grpc.status.NOT_FOUND,
  FULL: grpc.status.RESOURCE_EXHAUSTED,
  TOO_LARGE: grpc.status.OUT_OF_RANGE,
  TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  BAD_REQUEST: grpc.status.INVALID_ARGUMENT,
  STALE: grpc.status.FAILED_PRECONDITION,
  CLOSED: grpc.status.CANCELLED,
};

/** How a unary call ended: its reply, or the status, message and `satchel-code` its failure is answered with. */
export type UnaryOutcome = { reply: unknown } | { code: grpc.status; details: string; satchelCode: string };

/**
 * Runs one call of a service whose handlers are async functions, with its decoded request (from a definition's
 * `requestDeserialize`): a request that did not decode is BAD_REQUEST; a thrown SatchelError is answered with its
 * code; anything else is INTERNAL (`onUnexpected` is told). Shared by grpc-js's server (`addService`) and the
 * controller's own (controller/grpc-server.ts), so both answer alike.
 */
export async function runUnary(
  name: string,
  handler: (request: unknown) => Promise<unknown>,
  request: unknown,
  onUnexpected: (method: string, error: unknown) => void,
): Promise<UnaryOutcome> {
  const undecodable = (request as { [UNDECODABLE]?: string } | null)?.[UNDECODABLE];
  try {
    // A handler that throws before its first await is answered the same way.
    if (undecodable !== undefined) throw new SatchelError('BAD_REQUEST', `${name}: request does not decode: ${undecodable}`);
    return { reply: await handler(request) };
  } catch (error) {
    const satchel = error instanceof SatchelError ? error : null;
    if (!satchel) onUnexpected(name, error);
    return {
      code: satchel ? grpcStatusOf[satchel.code] : grpc.status.INTERNAL,
      // Bounded: a message echoing a huge input (a 3 MiB job id) would not fit in the HTTP/2 trailers, and
      // the caller would get no answer at all, only its deadline.
      details: satchel ? boundedMessage(satchel.message) : 'internal error',
      satchelCode: satchel ? satchel.code : 'UNAVAILABLE',
    };
  }
}

/** Adds a service whose handlers are async functions; a thrown SatchelError reaches the caller with its code. */
export function addService<M extends Methods>(
  server: grpc.Server,
  definition: grpc.ServiceDefinition,
  impl: ServiceImpl<M>,
  onUnexpected: (method: string, error: unknown) => void,
): void {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(definition)) {
    const handler = impl[name as keyof M] as (request: unknown) => Promise<unknown>;
    handlers[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      void runUnary(name, handler, call.request, onUnexpected).then((outcome) => {
        if ('reply' in outcome) return callback(null, outcome.reply);
        const metadata = new grpc.Metadata();
        metadata.set('satchel-code', outcome.satchelCode);
        callback({ code: outcome.code, details: outcome.details, metadata });
      });
    };
  }
  server.addService(definition, handlers);
}

/** Error messages go out in the `grpc-message` trailer: at most this many characters of one. */
const MAX_MESSAGE_CHARS = 1024;

function boundedMessage(message: string): string {
  return message.length <= MAX_MESSAGE_CHARS
    ? message
    : `${message.slice(0, MAX_MESSAGE_CHARS)}… (${message.length - MAX_MESSAGE_CHARS} more characters)`;
}

const clientClasses = new Map<grpc.ServiceDefinition, grpc.ServiceClientConstructor>();

/** A typed client: `await client.call('RegisterJob', {...})`, every call with a deadline. */
export class ControlClient<M extends Methods> {
  private readonly client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  private closed = false;

  /**
   * With `tls`, the channel is TLS and the server's certificate is checked against `tls.ca`. `connection.own`:
   * a connection of its own (grpc-js's local subchannel pool) instead of one shared with every client of the same
   * address in this process (bench scale's simulated storage nodes, each a node of its own, shared one connection
   * and its 64 concurrent streams). `connection.idleMs`: the connection is closed after this long without a call
   * (at least 1 s; grpc-js's default is 30 minutes; then within 10 s, its subchannel pool's sweep) and opened again
   * by the next one — a storage node calls
   * RegisterNode once, and an idle connection held by each of 10,000 nodes is 10,000 of the controller's sockets.
   */
  constructor(
    definition: grpc.ServiceDefinition,
    readonly address: string,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
    tls?: ClientTls,
    connection: { own?: boolean; idleMs?: number } = {},
  ) {
    let Ctor = clientClasses.get(definition);
    if (Ctor === undefined) {
      Ctor = grpc.makeGenericClientConstructor(definition, 'satchel');
      clientClasses.set(definition, Ctor);
    }
    const options: grpc.ChannelOptions = {
      ...GRPC_OPTIONS,
      // A channel whose server was unreachable (restarted, partitioned) retries within a second once it is back,
      // not after grpc's default backoff of up to two minutes: a storage node's reports, and so its lease, ride
      // on this channel.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1_000,
      ...(tls?.servername === undefined ? {} : { 'grpc.default_authority': tls.servername }),
      ...(connection.own === true ? { 'grpc.use_local_subchannel_pool': 1 } : {}),
      ...(connection.idleMs === undefined ? {} : { 'grpc.client_idle_timeout_ms': connection.idleMs }),
    };
    try {
      const credentials = tls === undefined ? grpc.credentials.createInsecure() : new TlsCredentials(hostOf(address), tls);
      this.client = new Ctor(address, credentials, options) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
    } catch (cause) {
      // grpc-js refuses a target it cannot parse (an empty address, from a forged ticket say).
      throw new SatchelError(
        'BAD_REQUEST',
        `cannot open a channel to ${JSON.stringify(address)}: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause },
      );
    }
  }

  /**
   * One call. Rejects with a SatchelError, whatever goes wrong: CLOSED once `close()` was called (grpc-js would
   * throw a plain Error at once), BAD_REQUEST for a timeout no timer can wait (grpc-js would throw it later,
   * uncaught, from inside its call).
   */
  call<K extends keyof M & string>(method: K, request: M[K][0], timeoutMs = this.timeoutMs): Promise<M[K][1]> {
    if (this.closed) return Promise.reject(new SatchelError('CLOSED', `${method} at ${this.address}: the client is closed`));
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
      return Promise.reject(new SatchelError('BAD_REQUEST', `${method}: timeoutMs must be a number of ms from 0 to ${MAX_TIMEOUT_MS}`));
    }
    return new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + timeoutMs);
      try {
        this.client[method]!.call(this.client, request, { deadline }, (error: grpc.ServiceError | null, reply: M[K][1]) => {
          if (error) reject(fromServiceError(error, `${method} at ${this.address}`));
          else resolve(reply);
        });
      } catch (cause) {
        // Nothing grpc-js is known to throw here while the channel is open; whatever it is, it is typed.
        reject(
          new SatchelError('UNAVAILABLE', `${method} at ${this.address}: ${cause instanceof Error ? cause.message : String(cause)}`, {
            cause,
          }),
        );
      }
    });
  }

  /** Closes the channel: calls in flight finish, later ones get CLOSED. Idempotent. */
  close(): void {
    this.closed = true;
    this.client.close();
  }
}

/**
 * TLS channel credentials that send SNI only for a DNS name. grpc-js's own (`createSsl`) always send the host
 * dialled, and for an IP address (every address `satchel up` hands out) Node then warns on stderr (DEP0123;
 * grpc-node #1919). The handshake is the one grpc-js does: ALPN h2, the server's certificate checked against the
 * CA and the host dialled, or `servername` when given.
 */
class TlsCredentials extends grpc.ChannelCredentials {
  private readonly context: SecureContext;
  private readonly identity: ReturnType<typeof serverIdentity>;

  constructor(host: string, options: ClientTls) {
    super();
    this.context = createSecureContext({ ca: options.ca });
    this.identity = serverIdentity(host, options.servername);
  }

  override _isSecure(): boolean {
    return true;
  }

  override _equals(other: grpc.ChannelCredentials): boolean {
    return other === this;
  }

  override _createSecureConnector(
    ...[, , callCredentials = grpc.credentials.createEmpty()]: Parameters<grpc.ChannelCredentials['_createSecureConnector']>
  ): ReturnType<grpc.ChannelCredentials['_createSecureConnector']> {
    const { context, identity } = this;
    return {
      connect: (socket) =>
        new Promise((resolve, reject) => {
          const secured = tlsConnect({ socket, secureContext: context, ALPNProtocols: ['h2'], ...identity }, () => {
            if (secured.authorized) resolve({ socket: secured, secure: true });
            else reject(secured.authorizationError);
          });
          secured.on('error', reject);
        }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => callCredentials,
      destroy: () => {},
    };
  }
}

function fromServiceError(error: grpc.ServiceError, what: string): SatchelError {
  return controlCallError(error.code, error.metadata?.get('satchel-code')[0], error.details || error.message, what, error);
}

/**
 * Starts a gRPC server on host:port (port 0: any free port) and returns the bound address. With `tls` (PEM
 * certificate and key) it serves TLS only; clients are not asked for a certificate.
 */
export function bindServer(
  server: grpc.Server,
  host: string,
  port: number,
  tls?: { cert: string | Buffer; key: string | Buffer },
): Promise<string> {
  const credentials =
    tls === undefined
      ? grpc.ServerCredentials.createInsecure()
      : grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }], false);
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, credentials, (error, bound) => {
      if (error) reject(new SatchelError('UNAVAILABLE', `cannot listen on ${host}:${port}: ${error.message}`, { cause: error }));
      else resolve(`${host}:${bound}`);
    });
  });
}

export { grpc };
