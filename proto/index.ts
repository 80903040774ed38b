// Everything on the wire. Imports no other part of Satchel.

export { advertisedAddress, isHostPort } from './address.ts';
export {
  type AnnouncedNode,
  type AnnouncedPlacement,
  announcedPlacement,
  decodeAnnounceBody,
  encodeAnnounceBody,
} from './announce.ts';
export { Backoff, type BackoffOptions, type RetryOptions, retry, TRANSIENT_CODES } from './backoff.ts';
export { forEachLimit, mapLimit } from './concurrency.ts';
export { LightControlClient } from './control-light.ts';
export * from './control-types.ts';
export { FrameDecoder, type FrameDecoderOptions, type FrameView } from './decoder.ts';
export { ERROR_CODES, type ErrorCode, isErrorCode, SatchelError } from './errors.ts';
export {
  AnnounceFlag,
  DEFAULT_WAIT_MS,
  DROP_MOVED,
  DropFlag,
  errorCodeOf,
  Field,
  Flag,
  HEADER_SIZE,
  MAX_KEY_BYTES,
  MAX_USER_KEY_BYTES,
  MAX_WAIT_MS,
  newerVersion,
  Op,
  type OpCode,
  PROTOCOL_VERSION,
  Status,
  type StatusCode,
  statusOf,
  WatchEvent,
} from './frame.ts';
export { type CopiedIncrement, MAX_COPIED_INCREMENTS, splitIncrements, withIncrements } from './increment-list.ts';
export { decodeKeyList, encodeKeyList } from './key-list.ts';
export { blockKey, decodeManifest, encodeManifest, type Manifest } from './manifest.ts';
export { metadataOrder, metadataOwners } from './metadata-owners.ts';
export { closeMetricsEndpoint, type MetricsEndpoint, type MetricsSource, serveMetrics } from './metrics-endpoint.ts';
export {
  type EventListener,
  hostOf,
  NodeConnection,
  type NodeConnectionOptions,
  type ParkedRequest,
  portOf,
  Reply,
  type RequestFrame,
  refusedByNode,
  refusingNode,
} from './node-connection.ts';
export {
  hashKey,
  holdersLost,
  type Placement,
  type PlacementNode,
  pickNode,
  pickNodes,
  SLOT_BUCKET_BITS,
  type SlotRange,
  slotRanges,
  someSlotLost,
  writtenGenerations,
} from './placement.ts';
export {
  type RespCommand,
  type RespOversized,
  RespParser,
  type RespParserLimits,
  type RespProtocolError,
  splitArgs,
} from './resp-parser.ts';
export { RespWriter } from './resp-writer.ts';
export { crc16, keySlot, keySlotOfBytes, SLOTS } from './slot.ts';
export { isTier, TIERS, type Tier } from './tier.ts';
export { DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS } from './timeouts.ts';
export { type ClientTls, clientTlsOf, type ServerTls } from './tls.ts';
export {
  ADMIN_SUBJECT,
  authorize,
  decodeTicket,
  encodeTicket,
  isJobId,
  sameSecret,
  signDriverToken,
  signToken,
  type Ticket,
  type TicketPlacement,
  type TokenScope,
  type TokenSubject,
  TokenVerifier,
  tokenExpiry,
  VIEWER_SUBJECT,
  verifyDriverToken,
  verifyToken,
} from './token.ts';
export { type ByteSink, COPY_THRESHOLD, FrameWriter } from './writer.ts';
