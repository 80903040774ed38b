/**
 * `satchel bench drain`: one node's worth of a job's data migrated off it while functions keep reading and
 * writing. A job spread over two DRAM nodes holds `bytes` on each; the console drains one (DELETE
 * /api/nodes/:id). Reported: how long the drain took, what it moved, op latency before and during it, failed
 * operations, and keys that do not read back afterwards (every acknowledged write is checked).
 */
import { randomBytes } from 'node:crypto';
import { Satchel } from '../client/index.ts';
import type { DrainResult } from '../controller/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { forEachLimit, hashKey } from '../proto/index.ts';
import { Progress } from './progress.ts';
import { LatencyRecorder, round } from './stats.ts';

export interface DrainOptions {
  /** Bytes on the node that is drained (the job holds about twice this, over two nodes). */
  bytes: number;
  valueBytes: number;
  /** Requests in flight of the load during the drain. */
  lanes: number;
}

export interface DrainSummary {
  drained_bytes: number;
  keys_moved: number;
  migration_s: number;
  ops_during: number;
  p50_before_us: number;
  p99_before_us: number;
  p50_during_us: number;
  p99_during_us: number;
  p999_during_us: number;
  max_during_us: number;
  failed_ops: number;
  lost_keys: number;
  keys_checked: number;
}

export async function runDrain(options: DrainOptions): Promise<DrainSummary> {
  const progress = new Progress('bench drain', 5);
  const capacity = Math.ceil(options.bytes * 3.5) + 256 * 1024 ** 2;
  const cluster = await LocalCluster.start({ dram: 2, dramCapacity: capacity });
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  const pool = randomBytes(4 * 1024 * 1024);
  const valueFor = (key: string) => {
    const offset = hashKey(key) % (pool.length - options.valueBytes);
    return pool.subarray(offset, offset + options.valueBytes);
  };
  try {
    progress.step('cluster up');
    const job = await satchel.registerJob('drain', { latencySensitive: true, peakThroughput: 1.5e9 });
    const keys = Math.ceil((2 * options.bytes) / options.valueBytes);
    const stored = Array.from({ length: keys }, (_, i) => `k/${i}`);
    await forEachLimit(stored, 32, (key) => job.put(key, valueFor(key)));
    progress.step(`${keys} keys written`);

    const fn = await Satchel.attach(job.ticket);
    const before = new LatencyRecorder();
    const during = new LatencyRecorder();
    let draining = false;
    let running = true;
    let failed = 0;
    let lost = 0;
    const written: string[] = [];
    const lanes = Array.from({ length: options.lanes }, async (_, lane) => {
      for (let i = 0; running; i++) {
        const t0 = performance.now();
        try {
          if (i % 4 === 0) {
            const key = `live/${lane}/${i}`;
            await fn.put(key, valueFor(key));
            written.push(key);
          } else {
            const key = `k/${(i * 7919 + lane * 104729) % keys}`;
            const got = await fn.get(key);
            if (got === null || !got.equals(valueFor(key))) lost++;
          }
          (draining ? during : before).add((performance.now() - t0) * 1000);
        } catch {
          failed++;
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const node = cluster.info.nodes[0]!.id;
    draining = true;
    progress.step(`draining ${node} under load`);
    const response = await fetch(`${cluster.info.console}/api/nodes/${node}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${cluster.adminToken}` },
    });
    if (!response.ok) throw new Error(`drain refused: ${response.status} ${await response.text()}`);
    const result = (await response.json()) as DrainResult;
    draining = false;
    running = false;
    await Promise.all(lanes);
    progress.step(`drained in ${result.seconds.toFixed(1)} s`);

    let checked = 0;
    await forEachLimit([...stored, ...written], 32, async (key) => {
      const got = await job.get(key);
      checked++;
      if (got === null || !got.equals(valueFor(key))) lost++;
    });
    await fn.close();
    await job.deregister();
    progress.step(`${checked} keys read back`);
    progress.end();
    return {
      drained_bytes: result.bytes,
      keys_moved: result.keys,
      migration_s: round(result.seconds, 3),
      ops_during: during.count,
      p50_before_us: round(before.percentile(50)),
      p99_before_us: round(before.percentile(99)),
      p50_during_us: round(during.percentile(50)),
      p99_during_us: round(during.percentile(99)),
      p999_during_us: round(during.percentile(99.9)),
      max_during_us: round(during.max),
      failed_ops: failed,
      lost_keys: lost,
      keys_checked: checked,
    };
  } finally {
    satchel.close();
    await cluster.stop();
  }
}
