/**
 * `satchel bench micro`: GET and PUT at several value sizes, one request in flight and many, against a Satchel
 * DRAM node and against Redis (ioredis, one connection), in the same run on the same machine. Both servers run
 * as separate processes, and so does each system's client (micro-driver.ts: one heap per client), one
 * connection each.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type JobHints, type RegisteredJob, Satchel, SatchelError } from '../client/index.ts';
import { LocalCluster, STORAGE_NODE_ENV } from '../deploy/index.ts';
import type { Tier } from '../proto/index.ts';
import type { FromMicroDriver, MicroTarget, ToMicroDriver } from './micro-driver.ts';
import { Progress } from './progress.ts';
import { RedisProcess } from './redis-server.ts';
import type { LatencySummary } from './stats.ts';

const DRIVER = fileURLToPath(new URL(`./micro-driver${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

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

/** One system's client process (micro-driver.ts), asked one thing at a time over IPC. */
class DriverProcess {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { resolve: (answer: FromMicroDriver) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private exited: string | null = null;

  constructor(readonly name: string) {
    // The storage nodes' malloc settings for both clients: with glibc's defaults, a process that makes a 64 KiB
    // buffer per request gives the heap's top back to the OS and faults it in again, request after request.
    // ioredis alone in a process did 8,000–26,000 64 KiB SETs a second at 64 in flight, erratically, and a
    // steady 22,000–32,000 with these (a process that also ran other work kept its heap's top busy: 17,000).
    this.child = fork(DRIVER, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: process.execArgv,
      env: { ...process.env, ...STORAGE_NODE_ENV },
    });
    this.child.on('message', (answer: FromMicroDriver) => {
      const waiter = this.waiting.get(answer.id);
      this.waiting.delete(answer.id);
      if (waiter === undefined) return;
      if ('error' in answer) waiter.reject(new SatchelError(answer.error.code, `${name}: ${answer.error.message}`));
      else waiter.resolve(answer);
    });
    this.child.on('exit', (code, signal) => this.fail(`${name}'s client process exited (${signal ?? code})`));
    // Failing to start, or a send on a channel that just closed: without a listener it would crash the bench.
    this.child.on('error', (error) => this.fail(`${name}'s client process: ${error.message}`));
  }

  /** The process is gone or unusable: every request waiting, and every one after, fails with why. */
  private fail(why: string): void {
    this.exited ??= why;
    for (const waiter of this.waiting.values()) waiter.reject(new SatchelError('UNAVAILABLE', this.exited));
    this.waiting.clear();
  }

  /** Sends `message` (its id added) and resolves with the answer. */
  private ask(message: DistributiveOmit<ToMicroDriver, 'id'>): Promise<FromMicroDriver> {
    if (this.exited !== null) return Promise.reject(new SatchelError('UNAVAILABLE', this.exited));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ ...message, id } as ToMicroDriver);
    });
  }

  async open(target: MicroTarget): Promise<void> {
    await this.ask({ open: target });
  }

  async fill(size: number): Promise<void> {
    await this.ask({ fill: { size } });
  }

  async drive(
    op: 'get' | 'put',
    size: number,
    concurrency: number,
    seconds: number,
    record: boolean,
  ): Promise<{ count: number; seconds: number }> {
    const answer = await this.ask({ drive: { op, size, concurrency, seconds, record } });
    if (!('count' in answer)) throw new SatchelError('UNAVAILABLE', `${this.name}: unexpected answer to drive`);
    return answer;
  }

  async latencies(): Promise<LatencySummary> {
    const answer = await this.ask({ summary: true });
    if (!('latencies' in answer)) throw new SatchelError('UNAVAILABLE', `${this.name}: unexpected answer to summary`);
    return answer.latencies;
  }

  /** Ends the process (it exits when its IPC channel closes) and waits for it, killing it after 5 s. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    if (this.child.connected) this.child.disconnect();
    await gone;
    clearTimeout(timer);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

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
  let satchel: Satchel | null = null;
  const jobs: RegisteredJob[] = [];
  const drivers: DriverProcess[] = [];
  try {
    const [host, port] = options.redis
      ? splitAddress(options.redis)
      : await (async () => {
          redisProcess = await RedisProcess.start();
          return [redisProcess.host, redisProcess.port] as const;
        })();
    satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
    for (const tier of options.tiers) {
      const job = await satchel.registerJob(`bench-micro-${tier}`, { ...TIER_HINTS[tier], maxValueBytes: maxSize });
      jobs.push(job);
      const driver = new DriverProcess(`satchel-${tier}`);
      drivers.push(driver);
      await driver.open({ kind: 'satchel', ticket: job.ticket });
    }
    const redis = new DriverProcess('redis');
    drivers.push(redis);
    await redis.open({ kind: 'redis', host, port });
    progress.step('cluster, redis and a client process for each up');
    const rows: MicroRow[] = [];
    for (const size of options.sizes) {
      for (const driver of drivers) await driver.fill(size);
      for (const op of options.ops) {
        for (const concurrency of options.concurrencies) {
          progress.step(`${op} ${formatSize(size)} ×${concurrency}`);
          rows.push(...(await cell(drivers, op, size, concurrency, options)));
        }
      }
    }
    progress.end();
    return rows;
  } finally {
    await Promise.all(drivers.map((d) => d.close()));
    for (const job of jobs) await job.deregister().catch(() => {});
    satchel?.close();
    await (redisProcess as RedisProcess | null)?.stop();
    await cluster.stop();
  }
}

/**
 * One cell (op, size, concurrency) for every system. The measured time is split into rounds that alternate
 * the systems (A B, B A, ...), so a drift in the machine's state over the cell (frequency, another process)
 * lands on both alike instead of on whichever ran second. Each system's client runs in its own process, idle
 * while the other's runs.
 */
async function cell(
  drivers: DriverProcess[],
  op: 'get' | 'put',
  size: number,
  concurrency: number,
  options: MicroOptions,
): Promise<MicroRow[]> {
  const totals = drivers.map(() => ({ count: 0, seconds: 0 }));
  for (const driver of drivers) await driver.drive(op, size, concurrency, options.warmupSeconds, false);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? drivers.map((_, i) => i) : drivers.map((_, i) => drivers.length - 1 - i);
    for (const i of order) {
      const done = await drivers[i]!.drive(op, size, concurrency, options.seconds / ROUNDS, true);
      totals[i]!.count += done.count;
      totals[i]!.seconds += done.seconds;
    }
  }
  const rows: MicroRow[] = [];
  for (const [i, driver] of drivers.entries()) {
    const { count, seconds } = totals[i]!;
    const opsPerSecond = count / seconds;
    rows.push({
      system: driver.name,
      op,
      size,
      concurrency,
      ops: count,
      ...(await driver.latencies()),
      ops_per_s: Math.round(opsPerSecond),
      bytes_per_s: Math.round(opsPerSecond * size),
    });
  }
  return rows;
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
