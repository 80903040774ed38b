/**
 * What the console (console.ts, console-live.ts, console-metrics.ts) may see of the controller and ask of it:
 * snapshots of the cluster, its nodes, jobs, events and metrics, and the few admin actions it offers. The
 * Controller implements it; the console reads nothing else, so the controller's insides can change under it.
 *
 * The views are what the console's JSON API serves (`/api/cluster`, `/api/nodes`, `/api/jobs`, `/api/jobs/:id`),
 * built here from the controller's records.
 */
import type { JobHints, RegisterJobReply, Tier, WirePlacement } from '../proto/index.ts';
import type { AutoscalerConfig, NodeLoad } from './autoscaler.ts';
import type { ControlOp } from './call-failures.ts';
import { costOf, type Prices } from './cost.ts';
import type { ClusterEvent } from './events.ts';
import type { JobRates, NodeStats } from './node-stats.ts';
import type { DrainResult } from './placement-changes.ts';
import type { JobRecord, NodeRecord } from './registry.ts';

export interface ConsoleBackend {
  /** `/api/cluster`. */
  clusterView(): ClusterView;
  /** `/api/nodes`: each node with what is reserved on it and its last report. */
  nodeViews(): NodeView[];
  /**
   * Each node's last report (undefined: none yet), for the cluster's totals every second: views of every node
   * built for that were a third of the controller's CPU, with their collections, at 10,000 nodes (bench scale).
   */
  nodeFigures(): Iterable<NodeStats | undefined>;
  /** `/api/jobs`. */
  jobViews(): JobView[];
  /** One job in full (`/api/jobs/:id`), or undefined when there is no such job. */
  jobDetail(jobId: string): JobDetail | undefined;
  /**
   * The job's `redisUrl` with a fresh data token of the job (`POST /api/jobs/:id/redis-url`, admin only): what a
   * driver's `job.redisUrl` is. Undefined when there is no such job; UNAVAILABLE when none of its nodes has a RESP
   * front door.
   */
  redisCredentials(jobId: string): RedisCredentials | undefined;
  /** Cluster events with a sequence number above `after`, oldest first. */
  clusterEvents(after?: number): ClusterEvent[];
  /** Calls `listener` with each new cluster event; returns the unsubscribe function. */
  onClusterEvent(listener: (event: ClusterEvent) => void): () => void;
  /** Each placeable node of a tier as the autoscaler sees it. */
  nodeLoads(tier: Tier): NodeLoad[];
  /** Control-plane calls to nodes and metadata servers that failed and were left to a retry, by operation. */
  nodeCallFailures(): ReadonlyMap<ControlOp, number>;
  /** Placements made ahead of registrations (spare-jobs.ts): ready now, and registrations that took one or found none. */
  spareJobs(): { ready: number; taken: number; missed: number };
  hasNode(nodeId: string): boolean;
  /** Whether nodes can be launched (a provisioner was handed in). */
  canLaunchNodes(): boolean;
  /** A job of the default tenant (the admin token stands for its key). */
  registerJob(name: string, hints: JobHints): Promise<RegisterJobReply>;
  deregisterJob(jobId: string): Promise<void>;
  launchNode(tier: Tier, reason: string): Promise<void>;
  /** Drains the node, then has it stopped and forgotten. */
  removeNode(nodeId: string, reason: string): Promise<DrainResult>;
}

export interface ClusterView {
  controller: string | null;
  metadata: string[];
  nodes: NodeRecord[];
  jobs: number;
  prices: Prices;
  autoscaler: AutoscalerConfig | null;
}

/**
 * A node's latest figures as JSON carries them: its per-job maps as objects (a Map serializes as `{}`); each
 * job's own rates are on the job's rows (`JobView`), not here.
 */
export type NodeStatsView = Omit<NodeStats, 'jobs' | 'fullRefusals' | 'jobRates'> & {
  jobs: Record<string, number>;
  fullRefusals: Record<string, number>;
};

export type NodeView = NodeRecord & {
  reserved: number;
  /** Copies its loss called for (it stopped reporting, or restarted) are being restored elsewhere. */
  recovering: boolean;
  stats: NodeStatsView | null;
};

export interface JobView {
  id: string;
  name: string;
  tier: string;
  reason: string;
  reservation: number;
  /** Bytes the job holds, from the nodes' last reports (each at most a second old). */
  usage: number;
  /**
   * The job's own requests over its nodes' last report intervals (JobUsage's counters; node-stats.ts `jobRates`):
   * ops, frame bytes received and sent per second, summed over its nodes.
   */
  opsPerSec: number;
  bytesInPerSec: number;
  bytesOutPerSec: number;
  /** Mean service time of its requests on its nodes (µs), weighted by each node's ops; null when idle. */
  latencyMeanUs: number | null;
  leaseExpiresAt: string;
  createdAt: string;
  epoch: number;
  nodes: WirePlacement['generations'][number]['nodes'];
  /** Placement generations: more than one while the job grows onto, or moves off, nodes. */
  generations: number;
  /** Keys being copied (a drain, a restoration), resumed by a restarted controller; null when none. */
  pending: NonNullable<JobRecord['pending']> | null;
  /** Nodes whose data of the job died with a process (its keys there fail with UNAVAILABLE). */
  lostNodes: string[];
  cost: { usd: number; byteSeconds: Record<string, number> };
  /** What the job asked for when it registered: with the reservation and usage, requested vs reserved vs used. */
  hints: JobHints;
}

/**
 * How Redis clients reach a job (storage-node/resp/), without a credential: every reader of the console may see
 * it. The URL's password is a data token of the job (`redisCredentials` makes one for the admin).
 */
export interface RedisAccess {
  /** 'rediss' when the cluster runs TLS. */
  scheme: 'redis' | 'rediss';
  /** Each node of the newest generation and its RESP front door (host:port), null for a node without one. */
  nodes: { id: string; resp: string | null }[];
  /** The front door the URL names; null when no node has one. */
  address: string | null;
  /**
   * The URL to hand a Redis Cluster client, `<token>` standing for a data token of the job (the ticket's, or the
   * driver's `job.redisUrl` whole): `redis://<job id>:<token>@host:port`. Null when no node has a RESP front door.
   */
  url: string | null;
}

/** `RedisAccess.url` with a data token in it, and when that token stops working. */
export interface RedisCredentials {
  url: string;
  /** ISO time: past it AUTH fails; ask again, or take the driver's `job.redisUrl` after a lease renewal. */
  expiresAt: string;
}

export interface JobDetail extends JobView {
  placement: WirePlacement;
  /** How Redis clients reach it (no credential in it). */
  redis: RedisAccess;
  /**
   * Each node of the job's newest generation: its share of the reservation (by weight) and what it reports the
   * job holds there. A per-job view's requested (hints) against reserved against used, node by node.
   */
  perNode: { id: string; weight: number; reserved: number; used: number }[];
}

/** `isSpare`: the ids of placements made ahead of registrations (spare-jobs.ts), left out of the node's jobs. */
export function nodeView(
  node: NodeRecord & { reserved: number },
  stats: NodeStats | undefined,
  recovering: boolean,
  isSpare: (jobId: string) => boolean = () => false,
): NodeView {
  return { ...node, recovering, stats: stats === undefined ? null : nodeStatsView(stats, isSpare) };
}

function nodeStatsView(
  { jobs, fullRefusals, jobRates: _perJob, ...figures }: NodeStats,
  isSpare: (jobId: string) => boolean,
): NodeStatsView {
  const held: Record<string, number> = {};
  for (const [id, bytes] of jobs) if (!isSpare(id)) held[id] = bytes;
  return { ...figures, jobs: held, fullRefusals: Object.fromEntries(fullRefusals) };
}

/** The job's row: `usage` the bytes it holds, `rates` its requests (node-stats.ts `jobRates`). */
export function jobView(job: JobRecord, usage: number, rates: JobRates, prices: Prices): JobView {
  return {
    id: job.id,
    name: job.name,
    tier: job.tier,
    reason: job.reason,
    reservation: job.reservation,
    usage,
    opsPerSec: rates.opsPerSec,
    bytesInPerSec: rates.bytesInPerSec,
    bytesOutPerSec: rates.bytesOutPerSec,
    latencyMeanUs: rates.latencyMeanUs,
    leaseExpiresAt: new Date(job.leaseExpiresAt).toISOString(),
    createdAt: new Date(job.createdAt).toISOString(),
    epoch: job.placement.epoch,
    nodes: job.placement.generations[0]?.nodes ?? [],
    generations: job.placement.generations.length,
    pending: job.pending ?? null,
    lostNodes: job.lostNodes ?? [],
    cost: { usd: costOf(job.byteSeconds, prices), byteSeconds: job.byteSeconds ?? {} },
    hints: job.hints,
  };
}

/**
 * How Redis clients reach `job`: its newest generation's RESP front doors, as the registry knows them now (a node
 * restarted since the placement was made may listen elsewhere), else as the placement recorded them. The URL names
 * the first node that is not lost (any node will do: a cluster client learns the others from CLUSTER SLOTS).
 */
export function redisAccess(job: JobRecord, nodes: ReadonlyMap<string, NodeRecord>, tls: boolean): RedisAccess {
  const scheme = tls ? 'rediss' : 'redis';
  const newest = job.placement.generations[0]?.nodes ?? [];
  const doors = newest.map((n) => ({ id: n.id, resp: nodes.get(n.id)?.respAddress || n.respAddress || null }));
  const address =
    (doors.find((d) => d.resp !== null && nodes.get(d.id)?.lost !== true) ?? doors.find((d) => d.resp !== null))?.resp ?? null;
  return { scheme, nodes: doors, address, url: address === null ? null : `${scheme}://${job.id}:<token>@${address}` };
}

/** `redis://<job>:<token>@host:port`, user and password percent-encoded (as the client's `job.redisUrl`). */
export function redisUrlOf(access: RedisAccess, jobId: string, token: string): string | null {
  if (access.address === null) return null;
  return `${access.scheme}://${encodeURIComponent(jobId)}:${encodeURIComponent(token)}@${access.address}`;
}

/** `jobView` with the hints, the placement and the job's share of each node (`usedOn`: bytes a node reports). */
export function jobDetail(
  job: JobRecord,
  usage: number,
  rates: JobRates,
  prices: Prices,
  usedOn: (nodeId: string) => number,
  redis: RedisAccess = redisAccess(job, new Map(), false),
): JobDetail {
  const newest = job.placement.generations[0]?.nodes ?? [];
  const weights = newest.reduce((sum, n) => sum + n.weight, 0);
  const perNode = newest.map((n) => ({
    id: n.id,
    weight: n.weight,
    reserved: weights > 0 ? (job.reservation * n.weight) / weights : 0,
    used: usedOn(n.id),
  }));
  return { ...jobView(job, usage, rates, prices), placement: job.placement, redis, perNode };
}
