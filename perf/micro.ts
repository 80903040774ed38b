/**
 * `satchel bench micro`: GET and PUT at several value sizes, one request in flight and many, against a Satchel
 * DRAM node and against Redis (ioredis, one connection), in the same run on the same machine. Both servers run
 * as separate processes; the load comes from this process, one connection to each.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { type JobHints, type RegisteredJob, Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import type { Tier } from '../proto/index.ts';
import { Progress } from './progress.ts';
import { RedisProcess } from './redis-server.ts';
import { LatencyRecorder } from './stats.ts';

/** Hints that make the allocation policy choose each tier (controller/README.md). */
const TIER_HINTS: Record<Tier, JobHints> = {
  dram: { latencySensitive: true, capacity: 4 * 1024 ** 3 },
  ssd: { latencySensitive: false, capacity: 4 * 1024 ** 3 },
  hdd: { capacity: 4 * 1024 ** 3, peakThroughput: 1e6 },
};

export interface MicroOptions {
  /** Satchel tiers to measure, each on its own node, each against the same Redis. */
  tiers: Tier[];
  sizes: number[];
  concurrencies: number[];
  ops: ('get' | 'put')[];
  /** Measured time per cell. */
  seconds: number;
  /** Unmeasured time per cell before it. */
  warmupSeconds: number;
  /** An existing Redis (host:port) instead of starting redis-server. */
  redis?: string;
}

export interface MicroRow {
  system: string;
  op: string;
  size: number;
  concurrency: number;
  ops: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  ops_per_s: number;
  bytes_per_s: number;
}

interface System {
  name: string;
  put(key: string, value: Buffer): Promise<unknown>;
  get(key: string): Promise<Buffer | null>;
}

/** Distinct keys per (size): GETs rotate over them so no single entry is hot in a cache line. */
const KEYS_PER_SIZE = 64;
/** Alternating rounds per cell. */
const ROUNDS = 4;

export async function runMicro(options: MicroOptions): Promise<MicroRow[]> {
  const cells = options.sizes.length * options.concurrencies.length * options.ops.length;
  const progress = new Progress('bench micro', cells + 1);
  const maxSize = Math.max(...options.sizes);
  const count = (tier: Tier) => (options.tiers.includes(tier) ? 1 : 0);
  const cluster = await LocalCluster.start({
    dram: count('dram'),
    ssd: count('ssd'),
    hdd: count('hdd'),
    dramCapacity: 8 * 1024 ** 3,
    ssdCapacity: 8 * 1024 ** 3,
    hddCapacity: 8 * 1024 ** 3,
    maxValueBytes: Math.max(16 * 1024 ** 2, maxSize),
  });
  let redisProcess: RedisProcess | null = null;
  let redis: Redis | null = null;
  let satchel: Satchel | null = null;
  const jobs: RegisteredJob[] = [];
  try {
    const [host, port] = options.redis
      ? splitAddress(options.redis)
      : await (async () => {
          redisProcess = await RedisProcess.start();
          return [redisProcess.host, redisProcess.port] as const;
        })();
    redis = new Redis({ host, port, protocol: 2, lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
    const systems: System[] = [];
    for (const tier of options.tiers) {
      const job = await satchel.registerJob(`bench-micro-${tier}`, { ...TIER_HINTS[tier], maxValueBytes: maxSize });
      jobs.push(job);
      systems.push({ name: `satchel-${tier}`, put: (k, v) => job.put(k, v), get: (k) => job.get(k) });
    }
    progress.step('cluster and redis up');
    const r = redis;
    systems.push({ name: 'redis', put: (k, v) => r.set(k, v), get: (k) => r.getBuffer(k) });
    const rows: MicroRow[] = [];
    for (const size of options.sizes) {
      const value = randomBytes(size);
      for (const system of systems) for (let i = 0; i < KEYS_PER_SIZE; i++) await system.put(keyOf(size, i), value);
      for (const op of options.ops) {
        for (const concurrency of options.concurrencies) {
          progress.step(`${op} ${formatSize(size)} ×${concurrency}`);
          rows.push(...(await cell(systems, op, size, concurrency, value, options)));
        }
      }
    }
    progress.end();
    return rows;
  } finally {
    for (const job of jobs) await job.deregister().catch(() => {});
    satchel?.close();
    redis?.disconnect();
    await (redisProcess as RedisProcess | null)?.stop();
    await cluster.stop();
  }
}

/**
 * One cell (op, size, concurrency) for every system. The measured time is split into rounds that alternate
 * the systems (A B, B A, ...), so a drift in the machine's state over the cell (frequency, another process)
 * lands on both alike instead of on whichever ran second.
 */
async function cell(
  systems: System[],
  op: 'get' | 'put',
  size: number,
  concurrency: number,
  value: Buffer,
  options: MicroOptions,
): Promise<MicroRow[]> {
  const stats = systems.map(() => ({ latencies: new LatencyRecorder(), count: 0, seconds: 0 }));
  const once = (system: System) =>
    op === 'get'
      ? (i: number) => system.get(keyOf(size, i % KEYS_PER_SIZE))
      : (i: number) => system.put(keyOf(size, i % KEYS_PER_SIZE), value);
  for (const system of systems) await drive(once(system), concurrency, options.warmupSeconds, null);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? systems.map((_, i) => i) : systems.map((_, i) => systems.length - 1 - i);
    for (const i of order) {
      const started = performance.now();
      stats[i]!.count += await drive(once(systems[i]!), concurrency, options.seconds / ROUNDS, stats[i]!.latencies);
      stats[i]!.seconds += (performance.now() - started) / 1000;
    }
  }
  return systems.map((system, i) => {
    const { latencies, count, seconds } = stats[i]!;
    const opsPerSecond = count / seconds;
    return {
      system: system.name,
      op,
      size,
      concurrency,
      ops: count,
      ...latencies.summary(),
      ops_per_s: Math.round(opsPerSecond),
      bytes_per_s: Math.round(opsPerSecond * size),
    };
  });
}

/** `concurrency` loops, each with one call in flight, until `seconds` pass; returns the calls completed. */
async function drive(
  once: (i: number) => Promise<unknown>,
  concurrency: number,
  seconds: number,
  latencies: LatencyRecorder | null,
): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  let count = 0;
  let next = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await once(next++);
      latencies?.add((performance.now() - t0) * 1000);
      count++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return count;
}

function keyOf(size: number, i: number): string {
  return `bench/${size}/${i}`;
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

export function formatSize(size: number): string {
  if (size >= 1024 * 1024) return `${size / 1024 / 1024}MiB`;
  if (size >= 1024) return `${size / 1024}KiB`;
  return `${size}B`;
}
