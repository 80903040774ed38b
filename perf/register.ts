/**
 * `satchel bench register`: how long a driver waits to register a job and a function to attach to it and make
 * its first PUT, while another job keeps the cluster busy. Pocket blocked registration for up to 40 s while it
 * started nodes; Satchel never waits on a node. The baseline is what a function pays to start using Redis: a
 * new connection and its first SET.
 */
import { Redis } from 'ioredis';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
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
  count: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  background_ops_per_s: number;
}

export async function runRegister(options: RegisterOptions): Promise<RegisterRow[]> {
  const progress = new Progress('bench register', options.jobs * 2 + 1);
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

    // The background load: one busy job, the whole time.
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
    const started = performance.now();

    const attachTimes = new LatencyRecorder();
    const satchelTimes = new LatencyRecorder();
    for (let i = 0; i < options.jobs; i++) {
      const t0 = performance.now();
      const job = await satchel.registerJob(`bench-register-${i}`, { capacity: 16 * 1024 * 1024 });
      const fn = await Satchel.attach(job.ticket);
      attachTimes.add((performance.now() - t0) * 1000);
      await fn.put('first', 'x');
      satchelTimes.add((performance.now() - t0) * 1000);
      await fn.close();
      await job.deregister();
      progress.step(`satchel job ${i + 1}`);
    }
    const redisTimes = new LatencyRecorder();
    for (let i = 0; i < options.jobs; i++) {
      const t0 = performance.now();
      const client = new Redis({ host, port, protocol: 2, lazyConnect: true });
      await client.connect();
      await client.set(`first/${i}`, 'x');
      redisTimes.add((performance.now() - t0) * 1000);
      client.disconnect();
      progress.step(`redis connection ${i + 1}`);
    }
    running = false;
    await Promise.all(loops);
    const background = Math.round(backgroundOps / ((performance.now() - started) / 1000));
    await busy.deregister();
    progress.end();
    const row = (system: string, op: string, times: LatencyRecorder): RegisterRow => ({
      system,
      op,
      count: times.count,
      ...times.summary(),
      background_ops_per_s: background,
    });
    return [
      row('satchel-dram', 'register+attach', attachTimes),
      row('satchel-dram', 'register+attach+put', satchelTimes),
      row('redis', 'connect+set', redisTimes),
    ];
  } finally {
    satchel.close();
    await redisProcess?.stop();
    await cluster.stop();
  }
}
