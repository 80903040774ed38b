// What a StorageServer is configured with (`StorageServerOptions`), the defaults of its limits, and its counters:
// apart from server.ts so the sessions can read them without importing the server that makes them.
import type { Logger } from 'pino';
import type { StorageEngine } from './engine.ts';

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
  /**
   * The cluster's CA (PEM), when nodes serve TLS: this node checks other nodes against it when it connects to
   * them (a replicated job's RESP writes, peer-links.ts).
   */
  peerTls?: { ca: string | Buffer };
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

export const DEFAULT_MAX_VALUE = 16 * 1024 * 1024;
export const DEFAULT_MAX_PENDING = 8 * 1024 * 1024;
/** The HELLO deadline's default, and the most it may be set to. */
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;
/**
 * Frames a connection may send before a successful HELLO (PINGs, a refused oversize frame, the HELLO itself);
 * the next one closes it. Each answer is a header and a short message, so a stranger makes the node write at
 * most ~2 KiB. The client sends its HELLO first and no PING before it.
 */
export const PRE_AUTH_MAX_FRAMES = 16;
export const DEFAULT_MAX_PRE_AUTH_CONNECTIONS = 1_024;
export const DEFAULT_MAX_OUTPUT = 8 * 1024 * 1024;
export const DEFAULT_SOFT_OUTPUT = 2 * 1024 * 1024;
export const DEFAULT_SOFT_OUTPUT_MS = 10_000;
export const DEFAULT_MAX_INFLIGHT_BODIES = 128 * 1024 * 1024;
