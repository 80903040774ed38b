// Everything on the wire. Imports no other part of Satchel.
export { SatchelError, ERROR_CODES, isErrorCode, type ErrorCode } from './errors.ts';
export {
  PROTOCOL_VERSION,
  HEADER_SIZE,
  MAX_KEY_BYTES,
  MAX_USER_KEY_BYTES,
  Field,
  Op,
  DROP_MOVED,
  AnnounceFlag,
  WatchEvent,
  DEFAULT_WAIT_MS,
  MAX_WAIT_MS,
  Status,
  Flag,
  errorCodeOf,
  statusOf,
  newerVersion,
  type OpCode,
  type StatusCode,
} from './frame.ts';
export { FrameDecoder, type FrameView, type FrameDecoderOptions } from './decoder.ts';
export { FrameWriter, COPY_THRESHOLD, type ByteSink } from './writer.ts';
export { encodeManifest, decodeManifest, blockKey, type Manifest } from './manifest.ts';
export { hashKey, pickNode, pickNodes, type Placement, type PlacementNode } from './placement.ts';
export {
  ADMIN_SUBJECT,
  VIEWER_SUBJECT,
  authorize,
  signDriverToken,
  verifyDriverToken,
  sameSecret,
  type TokenScope,
  signToken,
  verifyToken,
  tokenExpiry,
  isJobId,
  encodeTicket,
  decodeTicket,
  type Ticket,
  type TicketPlacement,
  type TokenSubject,
} from './token.ts';
export * from './control-types.ts';
export { LightControlClient } from './control-light.ts';
export { DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS } from './timeouts.ts';
export { clientTlsOf, type ClientTls, type ServerTls } from './tls.ts';
export { advertisedAddress, isHostPort } from './address.ts';
export { encodeKeyList, decodeKeyList } from './key-list.ts';
export { serveMetrics, closeMetricsEndpoint, type MetricsSource, type MetricsEndpoint } from './metrics-endpoint.ts';
export { TIERS, isTier, type Tier } from './tier.ts';
export {
  NodeConnection,
  Reply,
  hostOf,
  portOf,
  type NodeConnectionOptions,
  type EventListener,
  type ParkedRequest,
  type RequestFrame,
} from './node-connection.ts';
export { Backoff, retry, TRANSIENT_CODES, type BackoffOptions, type RetryOptions } from './backoff.ts';
export { forEachLimit, mapLimit } from './concurrency.ts';
