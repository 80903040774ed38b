/**
 * What the console's JSON API and live stream send, as the page reads it. Written out here rather than imported
 * from the server modules, which would pull Node's types (and the whole controller) into the browser project;
 * test/console-api.test.ts checks at compile time that the server's rows still fit these shapes.
 */

export type Tier = 'dram' | 'ssd' | 'hdd';

export interface JobHints {
  latencySensitive?: boolean;
  capacity?: number;
  peakThroughput?: number;
  functions?: number;
  replicas?: number;
  maxValueBytes?: number;
}

/** A node's last report, turned into rates by the controller (node-stats.ts). */
export interface NodeStats {
  at: number;
  cpu: number;
  bytesInPerSec: number;
  bytesOutPerSec: number;
  opsPerSec: number;
  used: number;
  capacity: number;
  /** Bytes each job holds on the node. */
  jobs: Record<string, number>;
  latencyP50Us: number | null;
  latencyP99Us: number | null;
}

/** `/api/nodes` and the snapshot's nodes. */
export interface NodeRow {
  id: string;
  tier: string;
  address: string;
  capacity: number;
  bandwidth: number;
  registeredAt: number;
  draining?: boolean;
  lost?: boolean;
  /** Bytes the jobs placed on it have reserved there. */
  reserved: number;
  recovering: boolean;
  stats: NodeStats | null;
}

export interface PlacementNode {
  id: string;
  address: string;
  weight: number;
}

/** `/api/jobs` and the snapshot's jobs. */
export interface JobRow {
  id: string;
  name: string;
  tier: string;
  reason: string;
  reservation: number;
  /** Bytes held, from the nodes' last reports. */
  usage: number;
  /** Its own requests over its nodes' last report intervals, summed over them (node-stats.ts `jobRates`). */
  opsPerSec: number;
  bytesInPerSec: number;
  bytesOutPerSec: number;
  /** Mean service time of its requests (µs), weighted by each node's ops; null when it served nothing. */
  latencyMeanUs: number | null;
  leaseExpiresAt: string;
  createdAt: string;
  epoch: number;
  /** The newest generation's nodes. */
  nodes: PlacementNode[];
  generations: number;
  pending: { kind: 'drain' | 'restore'; node: string } | null;
  lostNodes: string[];
  cost: { usd: number; byteSeconds: Record<string, number> };
  /** Not in the rows today (only `/api/jobs/:id` has them): read when present, fetched otherwise. */
  hints?: JobHints;
}

/** How Redis clients reach a job (console-backend.ts `RedisAccess`): no credential in it. */
export interface RedisAccess {
  scheme: 'redis' | 'rediss';
  nodes: { id: string; resp: string | null }[];
  address: string | null;
  /** `redis://<job id>:<token>@host:port`, or null when no node has a RESP front door. */
  url: string | null;
}

/** `POST /api/jobs/:id/redis-url` (admin): the URL with a fresh data token of the job. */
export interface RedisCredentials {
  url: string;
  expiresAt: string;
}

/** `/api/jobs/:id`: the row, its hints and its whole placement. */
export interface JobDetail extends JobRow {
  hints: JobHints;
  redis: RedisAccess;
  placement: {
    jobId: string;
    epoch: number;
    generations: { nodes: PlacementNode[] }[];
    blockSize: number;
    maxValueBytes: number;
    replicas?: number;
  };
}

export interface Totals {
  opsPerSec: number;
  bytesPerSec: number;
  latencyP50Us: number | null;
  latencyP99Us: number | null;
}

export interface Snapshot {
  t: number;
  nodes: NodeRow[];
  jobs: JobRow[];
  totals: Totals;
}

export interface HistoryPoint {
  t: number;
  totals: Totals;
}

export interface ClusterEvent {
  seq: number;
  at: string;
  /** events.ts's kinds; the page shows any kind, and groups those about jobs (see events.ts here). */
  kind: string;
  tier?: string;
  node?: string;
  reason: string;
  details?: Record<string, number | string>;
}

/** `/api/cluster`: what the page takes from it. */
export interface ClusterInfo {
  controller: string;
  autoscaler: { low: number; high: number } | null;
}
