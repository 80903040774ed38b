/**
 * `satchel bench wait`: what waiting for data costs, on Satchel and on Redis in the same run.
 * - Notify latency: a waiter in another process (perf/wait-worker.ts) parks on a key; this process writes it;
 *   the time from the write being acknowledged here to the waiter holding the value, on the shared monotonic
 *   clock. Satchel: `waitFor` + `put`; Redis: BLPOP + LPUSH (its blocking primitive).
 * - Idle waiters: N waits parked on one storage node (or N clients blocked in BLPOP on redis-server): the
 *   server's RSS before and after, and its CPU while they sit there. Then one `putMany` wakes them all.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Satchel, SatchelError } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { Progress } from './progress.ts';
import { RedisProcess } from './redis-server.ts';
import { LatencyRecorder, round } from './stats.ts';

const WORKER = fileURLToPath(new URL(`./wait-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export interface WaitBenchOptions {
  /** Measured notifications per system. */
  notifications: number;
  /** Waiters parked on the Satchel node. */
  waiters: number;
  /** Clients blocked in BLPOP on redis-server (each one a connection). */
  redisWaiters: number;
  /** How long the parked waiters are watched for CPU use. */
  idleSeconds: number;
}

export interface NotifyRow {
  system: string;
  notifications: number;
  /** Write acknowledged to the writer → value in the waiter's hands, µs (negative: the waiter was first). */
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  /** Write sent → value in the waiter's hands, µs. */
  from_send_p50_us: number;
}

export interface IdleRow {
  system: string;
  waiters: number;
  rss_before_mb: number;
  rss_after_mb: number;
  bytes_per_waiter: number;
  /** Server CPU while the waiters sat parked, as a fraction of one core. */
  idle_cpu_fraction: number;
  /** The same over the same time just before, with no waiters: what the server does anyway (reports, timers). */
  idle_cpu_fraction_without: number;
  /** Waking all of them with one batch of writes (putMany / pipelined LPUSH), ms. */
  wake_all_ms: number;
}

export interface WaitReport {
  notify: NotifyRow[];
  idle: IdleRow[];
}

/** A waiter process: one wait at a time, on command. */
class WaiterProcess {
  private readonly child: ChildProcess;
  private readonly handlers = new Map<string, (message: Record<string, string>) => void>();

  constructor() {
    this.child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv });
    this.child.on('message', (message: Record<string, string>) => {
      const kind = Object.keys(message)[0]!;
      const handler = this.handlers.get(kind) ?? this.handlers.get('error');
      if (message.error !== undefined) this.handlers.get('error')?.(message);
      else handler?.(message);
    });
  }

  private next(kind: string): Promise<Record<string, string>> {
    return new Promise((resolve, reject) => {
      this.handlers.set(kind, (message) => {
        this.handlers.delete(kind);
        resolve(message);
      });
      this.handlers.set('error', (message) => reject(new SatchelError('UNAVAILABLE', `waiter process: ${message.error}`)));
    });
  }

  async setup(setup: unknown): Promise<void> {
    const ready = this.next('ready');
    this.child.send({ setup });
    await ready;
  }

  /** Asks for a wait on `key`; resolves with two promises: parked (sent to the server) and arrived (hrtime). */
  wait(key: string): { parked: Promise<unknown>; arrived: Promise<bigint> } {
    const parked = this.next('parked');
    const arrived = this.next('arrived').then((m) => BigInt(m.at!));
    this.child.send({ wait: key });
    return { parked, arrived };
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.send({ stop: true });
    });
  }
}

/** Resident memory of a process, bytes (Linux /proc). */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb * 1024;
}

/** User + system CPU seconds of a process so far (Linux /proc, clock ticks at 100 Hz). */
async function cpuOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Between a waiter parking and the write: time for its request to reach the server. */
const PARK_MS = 3;

async function measureNotify(
  system: string,
  waiter: WaiterProcess,
  count: number,
  write: (key: string) => Promise<unknown>,
  progress: Progress,
): Promise<NotifyRow> {
  const fromAck = new LatencyRecorder();
  const fromSend = new LatencyRecorder();
  const warmup = Math.min(50, Math.ceil(count / 10));
  for (let i = 0; i < warmup + count; i++) {
    const key = `n-${i}`;
    const { parked, arrived } = waiter.wait(key);
    await parked;
    await sleep(PARK_MS);
    const sent = process.hrtime.bigint();
    await write(key);
    const acked = process.hrtime.bigint();
    const at = await arrived;
    if (i < warmup) continue;
    fromAck.add(Number(at - acked) / 1000);
    fromSend.add(Number(at - sent) / 1000);
    if ((i - warmup) % Math.ceil(count / 20) === 0) progress.step(`${system} notify ${i - warmup}/${count}`);
  }
  return {
    system,
    notifications: count,
    ...fromAck.summary(),
    from_send_p50_us: round(fromSend.percentile(50)),
  };
}

/** RSS sampled a few times, the median: one GC or allocation burst does not decide the figure. */
async function steadyRss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(await rssOf(pid));
    await sleep(200);
  }
  return samples.sort((a, b) => a - b)[2]!;
}

export async function runWaitBench(options: WaitBenchOptions): Promise<WaitReport> {
  const progress = new Progress('bench wait', 20 * 2 + 4);
  const cluster = await LocalCluster.start({ dram: 1, ssd: 0, hdd: 0, dramCapacity: 256 * 1024 ** 2 });
  const redisServer = await RedisProcess.start();
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  const waiter = new WaiterProcess();
  const report: WaitReport = { notify: [], idle: [] };
  try {
    const registered = await satchel.registerJob('bench-wait', { latencySensitive: true });
    const redis = new Redis({ host: redisServer.host, port: redisServer.port, protocol: 2 });
    try {
      // Notify latency, Satchel then Redis, one waiter process reused.
      await waiter.setup({ system: 'satchel', ticket: registered.ticket });
      report.notify.push(await measureNotify('satchel-dram', waiter, options.notifications, (key) => registered.put(key, 'v'), progress));
      await waiter.setup({ system: 'redis', host: redisServer.host, port: redisServer.port });
      report.notify.push(await measureNotify('redis', waiter, options.notifications, (key) => redis.lpush(key, 'v'), progress));

      // Idle waiters on the Satchel node.
      const nodePid = cluster.info.nodes[0]!.pid;
      const idle = await Satchel.attach(registered.ticket);
      await idle.get('warm-up');
      const before = await steadyRss(nodePid);
      const base0 = await cpuOf(nodePid);
      await sleep(options.idleSeconds * 1000);
      const baseCpu = ((await cpuOf(nodePid)) - base0) / options.idleSeconds;
      const keys = Array.from({ length: options.waiters }, (_, i) => `idle-${i}`);
      const waits = keys.map((key) => idle.waitFor(key, { timeoutMs: 600_000 }));
      await waitForGauge(cluster.info.nodes[0]!.metrics!, 'satchel_node_waiters', options.waiters);
      progress.step(`satchel ${options.waiters} waiters parked`);
      const after = await steadyRss(nodePid);
      const cpu0 = await cpuOf(nodePid);
      await sleep(options.idleSeconds * 1000);
      const cpu1 = await cpuOf(nodePid);
      const wakeStarted = performance.now();
      await registered.putMany(keys.map((key) => [key, 'go'] as const));
      await Promise.all(waits);
      const wakeMs = performance.now() - wakeStarted;
      progress.step('satchel woken');
      await idle.close();
      report.idle.push(idleRow('satchel-dram', options.waiters, before, after, (cpu1 - cpu0) / options.idleSeconds, baseCpu, wakeMs));

      // Idle clients blocked in BLPOP on redis-server: one connection each.
      const redisPid = redisServer.pid;
      const redisBefore = await steadyRss(redisPid);
      const rbase0 = await cpuOf(redisPid);
      await sleep(options.idleSeconds * 1000);
      const redisBaseCpu = ((await cpuOf(redisPid)) - rbase0) / options.idleSeconds;
      const clients = Array.from(
        { length: options.redisWaiters },
        () => new Redis({ host: redisServer.host, port: redisServer.port, protocol: 2, lazyConnect: true }),
      );
      await Promise.all(clients.map((c) => c.connect()));
      const blocked = clients.map((c, i) => c.blpop(`idle-${i}`, 600));
      await waitForRedisBlocked(redis, options.redisWaiters);
      progress.step(`redis ${options.redisWaiters} clients blocked`);
      const redisAfter = await steadyRss(redisPid);
      const rcpu0 = await cpuOf(redisPid);
      await sleep(options.idleSeconds * 1000);
      const rcpu1 = await cpuOf(redisPid);
      const redisWake = performance.now();
      const pipeline = redis.pipeline();
      for (let i = 0; i < options.redisWaiters; i++) pipeline.lpush(`idle-${i}`, 'go');
      await pipeline.exec();
      await Promise.all(blocked);
      const redisWakeMs = performance.now() - redisWake;
      progress.step('redis woken');
      await Promise.all(clients.map((c) => c.quit()));
      report.idle.push(
        idleRow('redis', options.redisWaiters, redisBefore, redisAfter, (rcpu1 - rcpu0) / options.idleSeconds, redisBaseCpu, redisWakeMs),
      );
    } finally {
      redis.disconnect();
      await registered.deregister().catch(() => {});
    }
  } finally {
    progress.end();
    await waiter.stop();
    satchel.close();
    await redisServer.stop();
    await cluster.stop();
  }
  return report;
}

function idleRow(system: string, waiters: number, before: number, after: number, cpu: number, baseCpu: number, wakeMs: number): IdleRow {
  return {
    system,
    waiters,
    rss_before_mb: round(before / 2 ** 20),
    rss_after_mb: round(after / 2 ** 20),
    bytes_per_waiter: Math.round((after - before) / waiters),
    idle_cpu_fraction: round(cpu, 4),
    idle_cpu_fraction_without: round(baseCpu, 4),
    wake_all_ms: round(wakeMs),
  };
}

async function waitForGauge(metricsUrl: string, name: string, value: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const text = await (await fetch(metricsUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`));
    if (line !== undefined && Number(line.slice(line.lastIndexOf(' ') + 1)) >= value) return;
    if (Date.now() > deadline) throw new SatchelError('TIMEOUT', `${name} did not reach ${value}: ${line ?? 'absent'}`);
    await sleep(100);
  }
}

async function waitForRedisBlocked(redis: Redis, count: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const info = await redis.info('clients');
    const blocked = Number(/blocked_clients:(\d+)/.exec(info)?.[1] ?? 0);
    if (blocked >= count) return;
    if (Date.now() > deadline) throw new SatchelError('TIMEOUT', `only ${blocked} of ${count} Redis clients blocked`);
    await sleep(100);
  }
}
