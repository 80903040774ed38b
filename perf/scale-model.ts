/**
 * The model behind `satchel bench scale`'s simulated storage nodes (issue 20): what each node holds and moves,
 * computed from the jobs the controller placed on it, and the cluster the run starts with. Pure: no sockets, no
 * timers; the clock is an argument.
 *
 * - A job holds `usedBytes` (the trace's) ramping up linearly over the first RAMP_SHARE of its life, then steady
 *   until it deregisters, and moves `bytesPerS` (half in, half out) from registration to its end.
 * - A node holds a job's bytes in proportion to its weight in the newest generation of the job's placement that
 *   names it: weighted rendezvous hashing spreads keys by weight, and a key with r copies is on r nodes, so the
 *   share is min(1, r × weight / Σ weights). A node in an older generation only (a drain's first epoch) keeps
 *   the share it had until it is told the job moved.
 * - CPU: CPU_IDLE plus CPU_PER_NETWORK × the node's network use (bytes/s over its declared bandwidth): a node's
 *   CPU follows what it moves (bench micro: a DRAM node near a core at ~1 GB/s).
 * - Requests: a job's bytes/s as requests of OP_BYTES each, each taking SERVICE_US on the node.
 */
import type { AnnouncedPlacement, JobUsage, NodeReport, Tier } from '../proto/index.ts';
import type { TraceJob } from './scale-trace.ts';

export const RAMP_SHARE = 0.5;
export const CPU_IDLE = 0.01;
export const CPU_PER_NETWORK = 0.5;
export const OP_BYTES = 64 * 1024;
export const SERVICE_US = 60;

/** Bytes a job holds `elapsedMs` (simulated) after it registered. */
export function jobBytesAt(job: Pick<TraceJob, 'usedBytes' | 'durationMs'>, elapsedMs: number): number {
  if (elapsedMs <= 0) return 0;
  const ramp = job.durationMs * RAMP_SHARE;
  return ramp <= 0 ? job.usedBytes : Math.round(job.usedBytes * Math.min(1, elapsedMs / ramp));
}

/** A job as the nodes' model sees it: its trace line and when it registered (simulated ms); null until the driver knows. */
export interface ModelJob {
  trace: TraceJob;
  registeredAtMs: number;
}

/** One job on one node: the placement epoch the node was told, and its share of the job's keys. */
interface Held {
  epoch: number;
  share: number;
  replicated: boolean;
  /** Counters since the node started serving it, as a real node reports them (JobUsage). */
  ops: number;
  bytesIn: number;
  bytesOut: number;
  serviceUs: number;
}

/** The share of a job's keys a node holds under `placement` (0 when the placement does not name it). */
export function shareOf(nodeId: string, placement: AnnouncedPlacement): number {
  for (const generation of placement.generations) {
    const node = generation.find((n) => n.id === nodeId);
    if (node === undefined) continue;
    const total = generation.reduce((sum, n) => sum + n.weight, 0);
    if (!(total > 0)) return 0;
    return Math.min(1, (placement.replicas * node.weight) / total);
  }
  return 0;
}

/** What a simulated node's report carries: NodeReport's figures, without its id, token and boot id. */
export type ModelReport = Pick<NodeReport, 'cpu' | 'bytesIn' | 'bytesOut' | 'ops' | 'used' | 'capacity' | 'jobs'>;

/** One simulated node: the jobs the controller announced to it, and its counters. */
export class NodeModel {
  private readonly held = new Map<string, Held>();
  private bytesIn = 0;
  private bytesOut = 0;
  private ops = 0;
  limited = new Set<string>();

  constructor(
    readonly id: string,
    readonly tier: Tier,
    readonly capacity: number,
    readonly bandwidth: number,
  ) {}

  get jobCount(): number {
    return this.held.size;
  }

  /**
   * ANNOUNCE: the node serves the job from `epoch` on. With the placement (the controller sends it) the share
   * is the node's in the newest generation naming it; without one, the share it had.
   */
  announce(jobId: string, epoch: number, placement: AnnouncedPlacement | null, replicated: boolean): void {
    const had = this.held.get(jobId);
    const share = placement === null ? (had?.share ?? 0) : shareOf(this.id, placement);
    if (had === undefined) this.held.set(jobId, { epoch, share, replicated, ops: 0, bytesIn: 0, bytesOut: 0, serviceUs: 0 });
    else {
      had.epoch = Math.max(had.epoch, epoch);
      // A drain's first epoch leaves the node in an older generation only: it keeps what it holds until it moves.
      if (share > 0) had.share = share;
      had.replicated = replicated;
    }
  }

  /** DROP_JOB: the node forgets the job; returns the bytes it held of it then (what a move copies elsewhere). */
  drop(jobId: string, job: ModelJob | undefined, nowMs: number): number {
    const held = this.held.get(jobId);
    this.held.delete(jobId);
    this.limited.delete(jobId);
    if (held === undefined || job === undefined) return 0;
    return Math.round(jobBytesAt(job.trace, nowMs - job.registeredAtMs) * held.share);
  }

  has(jobId: string): boolean {
    return this.held.has(jobId);
  }

  /**
   * The report after `intervalS` real seconds, at simulated time `nowMs`: bytes held per job (its share of
   * what the job holds now), and counters advanced by the job's modelled rates over the interval (so the
   * controller's rates, Δcounter / Δt, are the model's bytes/s).
   */
  report(jobs: ReadonlyMap<string, ModelJob>, nowMs: number, intervalS: number): ModelReport {
    let used = 0;
    let bytesPerS = 0;
    const usage: JobUsage[] = [];
    for (const [jobId, held] of this.held) {
      const job = jobs.get(jobId);
      let bytes = 0;
      if (job !== undefined) {
        bytes = Math.round(jobBytesAt(job.trace, nowMs - job.registeredAtMs) * held.share);
        const rate = job.trace.bytesPerS * held.share;
        const moved = rate * intervalS;
        const ops = Math.round(moved / OP_BYTES);
        held.bytesIn += Math.round(moved / 2);
        held.bytesOut += Math.round(moved / 2);
        held.ops += ops;
        held.serviceUs += ops * SERVICE_US;
        bytesPerS += rate;
      }
      used += bytes;
      usage.push({
        jobId,
        bytes,
        epoch: held.epoch,
        moved: false,
        ops: held.ops,
        bytesIn: held.bytesIn,
        bytesOut: held.bytesOut,
        serviceUs: held.serviceUs,
      });
    }
    this.bytesIn += Math.round((bytesPerS * intervalS) / 2);
    this.bytesOut += Math.round((bytesPerS * intervalS) / 2);
    this.ops += Math.round((bytesPerS * intervalS) / OP_BYTES);
    const network = this.bandwidth > 0 ? bytesPerS / this.bandwidth : 0;
    return {
      cpu: Math.min(1, CPU_IDLE + CPU_PER_NETWORK * network),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      ops: this.ops,
      used,
      capacity: this.capacity,
      jobs: usage,
    };
  }
}

/** Bandwidth each tier's simulated node declares (deploy/tiers.ts's profiles: a 10 GbE DRAM node, an SSD, an HDD). */
export const TIER_BANDWIDTH: Record<Tier, number> = { dram: 1e9, ssd: 500e6, hdd: 150e6 };

/** The controller's reservation without a capacity hint, and HDD's touch rate (controller/allocation.ts). */
const DEFAULT_RESERVATION = 64 * 1024 * 1024;
const HDD_MAX_TOUCH_RATE = 1 / 600;

/**
 * The tier the controller's allocation would pick for a job (controller/README.md's table), for sizing the
 * starting cluster only: the run itself places every job with the controller's own code.
 */
export function estimatedTier(job: TraceJob): Tier {
  if (job.latencySensitive) return 'dram';
  if (job.capacityHint > 0 && job.throughputHint / job.capacityHint < HDD_MAX_TOUCH_RATE) return 'hdd';
  return 'ssd';
}

export interface ClusterPlan {
  /** Nodes per tier at the start (together `nodes`). */
  nodes: Record<Tier, number>;
  /** Bytes each node of a tier declares. */
  capacity: Record<Tier, number>;
  bandwidth: Record<Tier, number>;
  /** The peak over the trace of what the jobs reserve at registration (hints × copies), by tier. */
  peakReservedBytes: Record<Tier, number>;
}

const GiB = 1024 ** 3;

/**
 * A cluster of `nodes` nodes sized for the trace's peak: nodes split between tiers in proportion to each tier's
 * peak of reservations at registration (at least one node for a tier with any job), and each node's capacity
 * such that the peak fills the tier to `fill` (the autoscaler band's middle), rounded up to a whole GiB.
 */
export function planCluster(trace: readonly TraceJob[], nodes: number, fill = 0.7): ClusterPlan {
  const tiers: Tier[] = ['dram', 'ssd', 'hdd'];
  const peak: Record<Tier, number> = { dram: 0, ssd: 0, hdd: 0 };
  for (const tier of tiers) {
    const events: [number, number][] = [];
    for (const job of trace) {
      if (estimatedTier(job) !== tier) continue;
      const bytes = (job.capacityHint > 0 ? job.capacityHint : DEFAULT_RESERVATION) * job.replicas;
      events.push([job.arriveMs, bytes], [job.arriveMs + job.durationMs, -bytes]);
    }
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    for (const [, delta] of events) {
      now += delta;
      peak[tier] = Math.max(peak[tier], now);
    }
  }
  const total = tiers.reduce((sum, t) => sum + peak[t], 0);
  const used = tiers.filter((t) => peak[t] > 0);
  const counts: Record<Tier, number> = { dram: 0, ssd: 0, hdd: 0 };
  for (const tier of used) counts[tier] = Math.max(1, Math.floor((nodes * peak[tier]) / total));
  // What rounding left over goes to the tier with the most demand per node.
  let left = nodes - tiers.reduce((sum, t) => sum + counts[t], 0);
  while (left > 0 && used.length > 0) {
    const tier = used.reduce((a, b) => (peak[a] / counts[a] >= peak[b] / counts[b] ? a : b));
    counts[tier]++;
    left--;
  }
  const capacity: Record<Tier, number> = { dram: GiB, ssd: GiB, hdd: GiB };
  for (const tier of used) capacity[tier] = Math.max(1, Math.ceil(peak[tier] / fill / counts[tier] / GiB)) * GiB;
  return { nodes: counts, capacity, bandwidth: { ...TIER_BANDWIDTH }, peakReservedBytes: peak };
}

/** A quantity's integral over time, from samples taken as it changes (step function: each value holds until the next). */
export class TimeIntegral {
  private last: { at: number; value: number } | null = null;
  private area = 0;
  private first: number | null = null;
  private peakValue = 0;

  add(at: number, value: number): void {
    if (this.last !== null && at > this.last.at) this.area += this.last.value * (at - this.last.at);
    if (this.first === null) this.first = at;
    this.last = { at, value };
    this.peakValue = Math.max(this.peakValue, value);
  }

  /** The integral up to the last sample (value × time unit). */
  get total(): number {
    return this.area;
  }

  get peak(): number {
    return this.peakValue;
  }

  /** From the first sample to the last. */
  get span(): number {
    return this.first === null || this.last === null ? 0 : this.last.at - this.first;
  }
}
