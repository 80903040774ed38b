/**
 * `satchel bench elasticity`: a load that rises, holds and falls against a `satchel up`-style cluster with the
 * autoscaler on. Jobs arrive while the load rises (each writes its keys, then mostly reads them back), and end
 * while it falls (every key read back and checked before the job deregisters). Every second: nodes, utilization,
 * reserved and used bytes per tier. The baseline is the same cluster sized for the peak the whole time.
 */
import { randomBytes } from 'node:crypto';
import { type RegisteredJob, Satchel } from '../client/index.ts';
import type { ClusterEvent } from '../controller/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { forEachLimit, hashKey } from '../proto/index.ts';
import { consoleJson } from './cluster-access.ts';
import { Progress } from './progress.ts';
import { LatencyRecorder, round } from './stats.ts';

export interface ElasticityOptions {
  seconds: number;
  /** Operations per second offered at the peak of the load (open loop: paced, whatever the latency). */
  peakOpsPerSecond: number;
  /** Clients issuing them; each may have one request in flight. */
  lanes: number;
  valueBytes: number;
  /** What each job writes before it only reads. */
  jobBytes: number;
  /** A new job this often while the load rises. */
  jobEverySeconds: number;
  /** Bytes per DRAM node, and the network bandwidth each declares (bytes/s). */
  nodeCapacity: number;
  nodeBandwidth: number;
  maxNodes: number;
  scaleDownAfterMs: number;
}

export interface ElasticitySample {
  t: number;
  nodes: Record<string, number>;
  utilization: Record<string, number>;
  reserved_bytes: number;
  used_bytes: number;
  target_ops_per_s: number;
  ops_per_s: number;
}

export interface ElasticitySummary {
  seconds: number;
  ops: number;
  failed_ops: number;
  lost_keys: number;
  keys_written: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  /** Each launch: seconds from the autoscaler's decision to the node registering (serving). */
  scale_up_s: number[];
  /** Each drain: seconds, and the bytes it moved. */
  migration_s: number[];
  migration_bytes: number[];
  p99_during_migration_us: number | null;
  /** Launches decided within two scale-down windows of a drain of the same tier: the policy flapping. */
  relaunches: number;
  node_seconds: number;
  peak_sized_node_seconds: number;
  /**
   * The fewest node-seconds a policy could have used for the load this run carried without a node over the band
   * (`oracleNodeSeconds`): node_seconds over it is the policy's own waste, whatever the machine let the load be.
   */
  oracle_node_seconds: number;
  reserved_over_used: number;
}

/**
 * Launches decided within `withinMs` of an earlier drain decision of the same tier. A node given back and asked
 * for again so soon was needed after all: node-seconds alone reward that flapping (the node is gone meanwhile).
 */
export function countRelaunches(events: readonly Pick<ClusterEvent, 'kind' | 'tier' | 'at'>[], withinMs: number): number {
  const lastDrain = new Map<string, number>();
  let relaunches = 0;
  for (const e of events) {
    const at = Date.parse(e.at);
    if (e.kind === 'scale-down') lastDrain.set(e.tier ?? '', at);
    else if (e.kind === 'scale-up') {
      const drained = lastDrain.get(e.tier ?? '');
      if (drained !== undefined && at - drained <= withinMs) relaunches++;
    }
  }
  return relaunches;
}

/**
 * The fewest node-seconds any scaling policy could have spent on the load the run carried, keeping every tier at
 * or under `high` (the band's top, the launch threshold): each second, the tier's load in nodes' worth (its mean
 * utilization × its nodes), averaged over the last `windowSeconds` samples as a launch decision averages it,
 * over `high`, rounded up, within the tier's minimum and maximum (a load past the maximum holds it there). An oracle that knows the load and scales at no cost, so
 * a bound, not a policy: the load is the one measured under the real policy (a generator that falls behind on a
 * busy machine offers less, and the bound falls with it), which is why it is the measure to compare a run with.
 */
export function oracleNodeSeconds(
  samples: readonly Pick<ElasticitySample, 'nodes' | 'utilization'>[],
  high: number,
  windowSeconds: number,
  limits: { minNodes: number; maxNodes: number },
): number {
  const tiers = new Set(samples.flatMap((s) => Object.keys(s.nodes)));
  let total = 0;
  for (const tier of tiers) {
    const load = samples.map((s) => (s.utilization[tier] ?? 0) * (s.nodes[tier] ?? 0));
    for (let i = 0; i < load.length; i++) {
      const recent = load.slice(Math.max(0, i - windowSeconds + 1), i + 1);
      const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
      // A hair of slack: 0.8 × 3 nodes is 2.4000000000000004, and three nodes at the top are three, not four.
      total += Math.min(limits.maxNodes, Math.max(limits.minNodes, Math.ceil(mean / high - 1e-9)));
    }
  }
  return total;
}

/** The shape of the load over the run, 0..1: rise, hold, fall, then a low tail in which drains happen. */
export function loadShape(x: number): number {
  if (x < 0.35) return x / 0.35;
  if (x < 0.55) return 1;
  if (x < 0.8) return 1 - ((x - 0.55) / 0.25) * 0.95;
  return 0.05;
}

interface TenantJob {
  job: RegisteredJob;
  /** Keys k/0 … k/(written-1) were written or are being written. */
  written: number;
  bytes: number;
  ended: boolean;
  /** Operations of this job in flight, and PUTs that failed (their keys are not expected back). */
  pending: number;
  failedKeys: Set<number>;
}

/** Values are windows of one random buffer at an offset given by the key: no copy to write, one memcmp to check. */
class ValueSource {
  private readonly pool = randomBytes(4 * 1024 * 1024);

  constructor(private readonly size: number) {}

  of(key: string): Buffer {
    const offset = hashKey(key) % (this.pool.length - this.size);
    return this.pool.subarray(offset, offset + this.size);
  }
}

/** The autoscaler's band and launch window in this run: a node-seconds bound has to use the same. */
const BAND = { lowPercent: 60, highPercent: 80, upAfterSeconds: 2 };

export async function runElasticity(
  options: ElasticityOptions,
): Promise<{ samples: ElasticitySample[]; summary: ElasticitySummary; events: ClusterEvent[] }> {
  const progress = new Progress('bench elasticity', options.seconds + 2);
  const cluster = await LocalCluster.start({
    dram: 1,
    ssd: 0,
    hdd: 0,
    dramCapacity: options.nodeCapacity,
    bandwidth: { dram: options.nodeBandwidth },
    autoscale: {
      band: [BAND.lowPercent, BAND.highPercent],
      minNodes: { dram: 1 },
      maxNodes: { dram: options.maxNodes },
      scaleUpAfterMs: BAND.upAfterSeconds * 1000,
      scaleDownAfterMs: options.scaleDownAfterMs,
      cooldownMs: 3_000,
    },
  });
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  progress.step('cluster up');
  const api = cluster.info.console;
  const values = new ValueSource(options.valueBytes);
  const latencies = new LatencyRecorder();
  const opTimes: number[] = [];
  const opLatencies: number[] = [];
  const failures: string[] = [];
  let failed = 0;
  let lost = 0;
  let ops = 0;
  let keysWritten = 0;
  const jobs: TenantJob[] = [];
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const rateNow = () => Math.max(1, Math.round(options.peakOpsPerSecond * loadShape(elapsed() / options.seconds)));

  const record = (t0: number) => {
    const micros = (performance.now() - t0) * 1000;
    latencies.add(micros);
    opTimes.push(Date.now());
    opLatencies.push(micros);
    ops++;
  };
  const fail = (what: string, error: unknown) => {
    failed++;
    if (failures.length < 20) failures.push(`${what}: ${(error as Error).message}`);
  };

  /** Reads every key a job wrote, checks each, then deregisters it. */
  const endJob = async (tenant: TenantJob) => {
    tenant.ended = true;
    while (tenant.pending > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const keys = Array.from({ length: tenant.written }, (_, i) => i)
      .filter((i) => !tenant.failedKeys.has(i))
      .map((i) => `k/${i}`);
    await forEachLimit(keys, 16, async (key) => {
      const t0 = performance.now();
      try {
        const got = await tenant.job.get(key);
        record(t0);
        if (got === null || !got.equals(values.of(`${tenant.job.id}/${key}`))) lost++;
      } catch (error) {
        fail(`final read of ${key}`, error);
      }
    });
    await tenant.job.deregister().catch((error: unknown) => fail('deregister', error));
  };

  let running = true;
  const lane = async (index: number) => {
    let last = performance.now() - (index * 1000 * options.lanes) / options.peakOpsPerSecond / options.lanes;
    while (running) {
      // Paced: each lane offers rate/lanes operations per second, re-read at least every 100 ms so a rising
      // rate is followed at once; a lane that falls behind does not burst to catch up.
      const due = last + (1000 * options.lanes) / rateNow();
      const now = performance.now();
      if (due > now) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(due - now, 100)));
        continue;
      }
      last = Math.max(due, now - 100);
      const active = jobs.filter((j) => !j.ended);
      if (!running || active.length === 0) continue;
      // Most traffic goes to the newest job, some to the others: new jobs carry the rising load.
      const tenant = Math.random() < 0.8 ? active.at(-1)! : active[Math.floor(Math.random() * active.length)]!;
      const t0 = performance.now();
      let putting = -1;
      tenant.pending++;
      try {
        if (tenant.bytes < options.jobBytes && Math.random() < 0.3) {
          putting = tenant.written++;
          tenant.bytes += options.valueBytes;
          const key = `k/${putting}`;
          await tenant.job.put(key, values.of(`${tenant.job.id}/${key}`));
          keysWritten++;
        } else if (tenant.written > 0) {
          // Only keys whose PUT was acknowledged: the first `written` minus those in flight, so read lower ones.
          const key = `k/${Math.floor(Math.random() * Math.max(1, tenant.written - options.lanes))}`;
          const got = await tenant.job.get(key);
          if (got !== null && !got.equals(values.of(`${tenant.job.id}/${key}`))) lost++;
        } else {
          continue;
        }
        record(t0);
      } catch (error) {
        if (putting >= 0) tenant.failedKeys.add(putting);
        fail(`lane ${index}`, error);
      } finally {
        tenant.pending--;
      }
    }
  };

  const samples: ElasticitySample[] = [];
  let lastOps = 0;
  const sample = async () => {
    const nodes = await consoleJson<
      {
        tier: string;
        reserved: number;
        capacity: number;
        bandwidth: number;
        stats: { cpu: number; bytesInPerSec: number; bytesOutPerSec: number; used: number } | null;
      }[]
    >(api, '/api/nodes', cluster.viewerToken);
    const count: Record<string, number> = {};
    const sums: Record<string, { cpu: number; network: number; capacity: number }> = {};
    let reserved = 0;
    let used = 0;
    for (const node of nodes) {
      count[node.tier] = (count[node.tier] ?? 0) + 1;
      const s = (sums[node.tier] ??= { cpu: 0, network: 0, capacity: 0 });
      s.cpu += node.stats?.cpu ?? 0;
      s.network += node.stats ? (node.stats.bytesInPerSec + node.stats.bytesOutPerSec) / node.bandwidth : 0;
      s.capacity += Math.max(node.reserved, node.stats?.used ?? 0) / node.capacity;
      reserved += node.reserved;
      used += node.stats?.used ?? 0;
    }
    const utilization = Object.fromEntries(
      Object.entries(sums).map(([tier, s]) => [tier, round(Math.max(s.cpu, s.network, s.capacity) / count[tier]!, 3)]),
    );
    samples.push({
      t: round(elapsed(), 1),
      nodes: count,
      utilization,
      reserved_bytes: Math.round(reserved),
      used_bytes: used,
      target_ops_per_s: rateNow(),
      ops_per_s: ops - lastOps,
    });
    lastOps = ops;
  };

  let events: ClusterEvent[] = [];
  try {
    const lanes = Array.from({ length: options.lanes }, (_, i) => lane(i));
    const endings: Promise<void>[] = [];
    let nextJobAt = 0;
    let nextEndAt = options.seconds * 0.55;
    for (let second = 0; second < options.seconds; second++) {
      const t = elapsed();
      if (t >= nextJobAt && t < options.seconds * 0.55) {
        const job = await satchel.registerJob(`elastic-${jobs.length}`, { latencySensitive: true, capacity: options.jobBytes });
        jobs.push({ job, written: 0, bytes: 0, ended: false, pending: 0, failedKeys: new Set() });
        nextJobAt = t + options.jobEverySeconds;
      }
      // While the load falls, the oldest jobs end (all but two, whose data the drains then move).
      if (t >= nextEndAt) {
        const active = jobs.filter((j) => !j.ended);
        if (active.length > 2) endings.push(endJob(active[0]!));
        nextEndAt = t + options.jobEverySeconds / 2;
      }
      await sample();
      const last = samples.at(-1)!;
      progress.step(`t=${Math.round(t)}s dram nodes=${last.nodes.dram ?? 0} ${last.ops_per_s}/${last.target_ops_per_s} ops/s`);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, (second + 1) * 1000 - (performance.now() - started))));
    }
    running = false;
    await Promise.all(lanes);
    await Promise.all(endings);
    await Promise.all(jobs.filter((j) => !j.ended).map(endJob));
    events = await consoleJson<ClusterEvent[]>(api, '/api/events', cluster.viewerToken);
    progress.step('every key read back');
    progress.end();
  } finally {
    running = false;
    satchel.close();
    await cluster.stop();
  }

  const at = (e: ClusterEvent) => Date.parse(e.at);
  const scaleUps = events
    .filter((e) => e.kind === 'scale-up')
    .map((up) => {
      const joined = events.find((e) => e.kind === 'node-joined' && e.tier === up.tier && e.seq > up.seq);
      return joined === undefined ? null : round((at(joined) - at(up)) / 1000, 3);
    })
    .filter((s): s is number => s !== null);
  const drains = events.filter((e) => e.kind === 'drain-finished');
  const windows = drains.map((done) => {
    const start = events.find((e) => e.kind === 'drain-started' && e.node === done.node);
    return [start ? at(start) : at(done), at(done)] as const;
  });
  const during = new LatencyRecorder();
  for (let i = 0; i < opTimes.length; i++) if (windows.some(([a, b]) => opTimes[i]! >= a && opTimes[i]! <= b)) during.add(opLatencies[i]!);
  const totalNodes = (s: ElasticitySample) => Object.values(s.nodes).reduce((a, b) => a + b, 0);
  const holding = samples.filter((s) => s.used_bytes > 0);
  const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  const meanUsed = mean(holding.map((s) => s.used_bytes));
  const summary: ElasticitySummary = {
    seconds: options.seconds,
    ops,
    failed_ops: failed,
    lost_keys: lost,
    keys_written: keysWritten,
    ...latencies.summary(),
    scale_up_s: scaleUps,
    migration_s: drains.map((d) => round(Number(d.details?.seconds ?? 0), 3)),
    migration_bytes: drains.map((d) => Number(d.details?.bytes ?? 0)),
    p99_during_migration_us: during.count === 0 ? null : round(during.percentile(99)),
    relaunches: countRelaunches(events, 2 * options.scaleDownAfterMs),
    node_seconds: samples.reduce((acc, s) => acc + totalNodes(s), 0),
    peak_sized_node_seconds: Math.max(...samples.map(totalNodes)) * samples.length,
    oracle_node_seconds: oracleNodeSeconds(samples, BAND.highPercent / 100, BAND.upAfterSeconds, {
      minNodes: 1,
      maxNodes: options.maxNodes,
    }),
    reserved_over_used: meanUsed > 0 ? round(mean(holding.map((s) => s.reserved_bytes)) / meanUsed, 3) : 0,
  };
  if (failures.length > 0) process.stderr.write(`first failures:\n  ${failures.join('\n  ')}\n`);
  return { samples, summary, events };
}
