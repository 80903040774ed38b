/**
 * `satchel bench register`: how long a driver waits to register a job and a function to attach to it and make
 * its first PUT, while another job keeps the cluster busy. Pocket blocked registration for up to 40 s while it
 * started nodes; Satchel never waits on a node. The baseline is what a function pays to start using Redis: a
 * new connection and its first SET.
 *
 * The busy job runs in this process, as a driver's own functions might (the rows with `background: 'this
 * process'`), then again from another process (perf/register-load.ts, `background: 'another process'`): the
 * difference is what the driver's event loop, shared with 16 requests of 64 KiB in flight, adds to each call.
 *
 * The floor (`satchel-controller`, `round trip`): a call the controller answers at once (GetCluster with the
 * tenant key: the key checked, nothing listed), over a session like the driver's, under the same load. Any
 * registration is at least that: the controller must allocate the job before anyone can use it.
 */
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Satchel, SatchelError } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { type ControllerMethods, LightControlClient } from '../proto/index.ts';
import { Progress } from './progress.ts';
import { RedisProcess } from './redis-server.ts';
import { LatencyRecorder } from './stats.ts';

export interface RegisterOptions {
  jobs: number;
  /** Requests in flight of the background load (64 KiB PUTs and GETs on another job). */
  backgroundInFlight: number;
  redis?: string;
}

export interface RegisterRow {
  system: string;
  op: string;
  /** Where the busy job ran: in the process that registers and attaches, or in another. */
  background: 'this process' | 'another process';
  count: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  background_ops_per_s: number;
  /** The machine's 1-minute load average when the rows' phase ended (a shared machine: what else ran). */
  loadavg_1m: number;
}

const LOAD_WORKER = fileURLToPath(new URL(`./register-load${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/** Register, attach, first PUT, `jobs` times in a row: register+attach and register+attach+put latencies. */
async function registerRounds(
  satchel: Satchel,
  jobs: number,
  progress: Progress,
  what: string,
): Promise<{ attach: LatencyRecorder; put: LatencyRecorder }> {
  const attach = new LatencyRecorder();
  const put = new LatencyRecorder();
  for (let i = 0; i < jobs; i++) {
    const t0 = performance.now();
    const job = await satchel.registerJob(`bench-register-${i}`, { capacity: 16 * 1024 * 1024 });
    const fn = await Satchel.attach(job.ticket);
    attach.add((performance.now() - t0) * 1000);
    await fn.put('first', 'x');
    put.add((performance.now() - t0) * 1000);
    await fn.close();
    await job.deregister();
    progress.step(`${what} ${i + 1}`);
  }
  return { attach, put };
}

/** The controller's round trip alone, `jobs` times: GetCluster with the tenant key (checked, nothing listed). */
async function controllerRounds(address: string, key: string, jobs: number, progress: Progress, what: string): Promise<LatencyRecorder> {
  const times = new LatencyRecorder();
  const controller = new LightControlClient<ControllerMethods>('satchel.v1.Controller', address, 10_000);
  try {
    await controller.call('GetCluster', { token: key }); // the session opened, as the driver's is
    for (let i = 0; i < jobs; i++) {
      const t0 = performance.now();
      await controller.call('GetCluster', { token: key });
      times.add((performance.now() - t0) * 1000);
      progress.step(`${what} ${i + 1}`);
    }
  } finally {
    controller.close();
  }
  return times;
}

/** A new connection and its first SET, `jobs` times. */
async function redisRounds(host: string, port: number, jobs: number, progress: Progress, what: string): Promise<LatencyRecorder> {
  const times = new LatencyRecorder();
  for (let i = 0; i < jobs; i++) {
    const t0 = performance.now();
    const client = new Redis({ host, port, protocol: 2, lazyConnect: true });
    await client.connect();
    await client.set(`first/${i}`, 'x');
    times.add((performance.now() - t0) * 1000);
    client.disconnect();
    progress.step(`${what} ${i + 1}`);
  }
  return times;
}

export async function runRegister(options: RegisterOptions): Promise<RegisterRow[]> {
  const progress = new Progress('bench register', options.jobs * 6 + 2);
  const cluster = await LocalCluster.start({ dram: 2, dramCapacity: 2 * 1024 ** 3 });
  let redisProcess: RedisProcess | null = null;
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  try {
    let host = '127.0.0.1';
    let port = 0;
    if (options.redis) {
      host = options.redis.slice(0, options.redis.lastIndexOf(':'));
      port = Number(options.redis.slice(options.redis.lastIndexOf(':') + 1));
    } else {
      redisProcess = await RedisProcess.start();
      port = redisProcess.port;
    }
    progress.step('cluster and redis up');

    // The background load: one busy job, the whole time, first in this process.
    const busy = await satchel.registerJob('background', { latencySensitive: true, peakThroughput: 1.5e9 });
    const value = Buffer.alloc(64 * 1024, 1);
    let running = true;
    let backgroundOps = 0;
    const loops = Array.from({ length: options.backgroundInFlight }, async (_, lane) => {
      for (let i = 0; running; i++) {
        const key = `bg/${lane}/${i % 16}`;
        await (i % 2 === 0 ? busy.put(key, value) : busy.get(key));
        backgroundOps++;
      }
    });
    let started = performance.now();
    const here = await registerRounds(satchel, options.jobs, progress, 'satchel job');
    const floorHere = await controllerRounds(cluster.controller, cluster.tenantKey, options.jobs, progress, 'controller round trip');
    const redisHere = await redisRounds(host, port, options.jobs, progress, 'redis connection');
    running = false;
    await Promise.all(loops);
    const backgroundHere = Math.round(backgroundOps / ((performance.now() - started) / 1000));
    const loadHere = loadavg()[0]!;

    // Then the same from another process: the driver's event loop no longer shares the busy job's traffic.
    const worker = fork(LOAD_WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv });
    const next = (kind: string) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const onMessage = (message: Record<string, unknown>) => {
          if (message.error === undefined && message[kind] === undefined) return;
          worker.off('message', onMessage);
          if (message.error !== undefined) reject(new SatchelError('UNAVAILABLE', `background load process: ${String(message.error)}`));
          else resolve(message);
        };
        worker.on('message', onMessage);
      });
    const ready = next('started');
    worker.send({ start: { ticket: busy.ticket, inFlight: options.backgroundInFlight } });
    await ready;
    progress.step('background load in another process');
    started = performance.now();
    const there = await registerRounds(satchel, options.jobs, progress, 'satchel job (load elsewhere)');
    const floorThere = await controllerRounds(
      cluster.controller,
      cluster.tenantKey,
      options.jobs,
      progress,
      'controller round trip (load elsewhere)',
    );
    const redisThere = await redisRounds(host, port, options.jobs, progress, 'redis connection (load elsewhere)');
    const stopped = next('ops');
    worker.send({ stop: true });
    const backgroundThere = Math.round(Number((await stopped).ops) / ((performance.now() - started) / 1000));
    const loadThere = loadavg()[0]!;
    await busy.deregister();
    progress.end();
    const row = (
      system: string,
      op: string,
      times: LatencyRecorder,
      background: RegisterRow['background'],
      ops: number,
      load: number,
    ): RegisterRow => ({
      system,
      op,
      background,
      count: times.count,
      ...times.summary(),
      background_ops_per_s: ops,
      loadavg_1m: load,
    });
    return [
      row('satchel-dram', 'register+attach', here.attach, 'this process', backgroundHere, loadHere),
      row('satchel-dram', 'register+attach+put', here.put, 'this process', backgroundHere, loadHere),
      row('satchel-controller', 'round trip', floorHere, 'this process', backgroundHere, loadHere),
      row('redis', 'connect+set', redisHere, 'this process', backgroundHere, loadHere),
      row('satchel-dram', 'register+attach', there.attach, 'another process', backgroundThere, loadThere),
      row('satchel-dram', 'register+attach+put', there.put, 'another process', backgroundThere, loadThere),
      row('satchel-controller', 'round trip', floorThere, 'another process', backgroundThere, loadThere),
      row('redis', 'connect+set', redisThere, 'another process', backgroundThere, loadThere),
    ];
  } finally {
    satchel.close();
    await redisProcess?.stop();
    await cluster.stop();
  }
}
