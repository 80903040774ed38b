/**
 * `satchel bench jobs`: several sorts started a few seconds apart on one cluster (Pocket's three-job
 * experiment), sharing one pool of functions. Every second it samples, per tier, the bytes reserved for jobs
 * and the bytes they hold. Then the same jobs against Redis, whose "reservation" is what a hand-sized instance
 * must be: the peak it reached, for the whole run.
 */
import { Redis } from 'ioredis';
import { SatchelError } from '../proto/index.ts';
import { consoleJson } from './cluster-access.ts';
import { Progress } from './progress.ts';
import { RECORD_BYTES } from './records.ts';
import { PEAK_FACTOR, redisSortStore, runSort, type SortOptions, type SortStore, SortSystems, satchelSortStore } from './shuffle.ts';
import type { CapacitySample, JobRun, JobsReport } from './shuffle-report.ts';
import { round } from './stats.ts';

export interface JobsOptions extends SortOptions {
  jobs: number;
  staggerSeconds: number;
}

const SAMPLE_MS = 1000;

export async function runJobs(options: JobsOptions): Promise<Pick<JobsReport, 'jobs' | 'samples' | 'summary'>> {
  // The samplers read reserved and used bytes from the console: an existing cluster's must be given, with a token.
  if (options.cluster !== undefined && (options.cluster.console === undefined || options.cluster.viewerToken === undefined)) {
    throw new SatchelError(
      'BAD_REQUEST',
      "--controller needs --console URL and --viewer-token TOKEN (the cluster's console, for the samples), or give --cluster-file FILE",
    );
  }
  const records = Math.floor(options.bytes / RECORD_BYTES);
  const functionsPerJob = 2 * (options.mappers + options.reducers);
  const kinds = options.noRedis === true ? (['satchel'] as const) : (['satchel', 'redis'] as const);
  const progress = new Progress('bench jobs', kinds.length * options.jobs * functionsPerJob + 1);
  const systems = await SortSystems.start({
    tier: options.tier,
    nodes: options.nodes,
    peakBytes: PEAK_FACTOR * records * RECORD_BYTES * options.jobs,
    redisShards: options.redisShards,
    redis: options.redis,
    noRedis: options.noRedis,
    cluster: options.cluster,
    concurrency: options.concurrency,
  });
  progress.step(
    `${systems.cluster === null ? `cluster ${options.cluster?.controller}` : 'cluster'}${systems.hasRedis ? ', redis' : ''} and functions up`,
  );
  const jobs: JobRun[] = [];
  const samples: CapacitySample[] = [];
  try {
    for (const kind of kinds) {
      const sampler = kind === 'satchel' ? satchelSampler(systems.console!.url, systems.console!.token) : redisSampler(systems.redisShards);
      const system = kind === 'satchel' ? `satchel-${options.tier}` : systems.redisName;
      const started = performance.now();
      const elapsed = () => (performance.now() - started) / 1000;
      const own: CapacitySample[] = [];
      let sampling = true;
      const sampling$ = (async () => {
        while (sampling) {
          const t = elapsed();
          own.push({ system, t: round(t, 2), tiers: await sampler.sample() });
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, SAMPLE_MS - (elapsed() - t) * 1000)));
        }
      })();
      try {
        const runs = await Promise.all(
          Array.from({ length: options.jobs }, async (_, j) => {
            await new Promise((resolve) => setTimeout(resolve, j * options.staggerSeconds * 1000));
            const start_s = elapsed();
            const prefix = `job${j}/`;
            const store: SortStore =
              kind === 'satchel'
                ? await satchelSortStore(systems, `job-${j}`, options.tier, records * RECORD_BYTES, options.mappers)
                : redisSortStore(systems, prefix);
            try {
              await runSort(
                systems.poolFor(store.target),
                store,
                {
                  seed: `satchel-jobs-${j}`,
                  records,
                  mappers: options.mappers,
                  reducers: options.reducers,
                  prefix,
                  functionBytesPerSecond: options.functionBytesPerSecond,
                },
                (what) => progress.step(`job ${j} ${what}`),
              );
            } finally {
              await store.release();
            }
            const end_s = elapsed();
            return {
              system,
              name: `job-${j}`,
              start_s: round(start_s, 2),
              end_s: round(end_s, 2),
              seconds: round(end_s - start_s, 2),
              verified: true,
            };
          }),
        );
        jobs.push(...runs);
      } finally {
        sampling = false;
        await sampling$;
        await sampler.close();
      }
      samples.push(...(kind === 'redis' ? sizedForPeak(own) : own));
    }
    progress.end();
    return { jobs, samples, summary: summarize(jobs, samples) };
  } finally {
    await systems.stop();
  }
}

export interface Sampler {
  sample(): Promise<CapacitySample['tiers']>;
  close(): Promise<void>;
}

/** Reserved and used bytes per tier from the controller's console (`/api/nodes`, read with `token`: the viewer's). */
export function satchelSampler(console: string, token: string): Sampler {
  return {
    async sample() {
      const nodes = await consoleJson<{ tier: string; reserved: number; stats: { used: number } | null }[]>(console, '/api/nodes', token);
      const tiers: CapacitySample['tiers'] = {};
      for (const node of nodes) {
        const tier = (tiers[node.tier] ??= { reserved_bytes: 0, used_bytes: 0 });
        tier.reserved_bytes += Math.round(node.reserved);
        tier.used_bytes += node.stats?.used ?? 0;
      }
      return tiers;
    },
    close: async () => {},
  };
}

/** Redis holds everything in memory: `used_memory_dataset` of every shard, as the `dram` tier. */
export function redisSampler(shards: string[]): Sampler {
  const clients = shards.map((address) => {
    const colon = address.lastIndexOf(':');
    return new Redis({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)), protocol: 2 });
  });
  return {
    async sample() {
      let used = 0;
      for (const client of clients) {
        const info = await client.info('memory');
        used += Number(/used_memory_dataset:(\d+)/.exec(info)?.[1] ?? 0);
      }
      return { dram: { reserved_bytes: 0, used_bytes: used } };
    },
    close: async () => {
      for (const client of clients) client.disconnect();
    },
  };
}

/** A hand-sized Redis has its peak reserved from start to end. */
function sizedForPeak(samples: CapacitySample[]): CapacitySample[] {
  const peak = Math.max(0, ...samples.map((s) => s.tiers.dram?.used_bytes ?? 0));
  return samples.map((s) => ({ ...s, tiers: { dram: { reserved_bytes: peak, used_bytes: s.tiers.dram?.used_bytes ?? 0 } } }));
}

function summarize(jobs: JobRun[], samples: CapacitySample[]): JobsReport['summary'] {
  const systems = [...new Set(jobs.map((j) => j.system))];
  return systems.map((system) => {
    // Only the seconds in which some job held data: before the first byte and after the last, both are ~0.
    const own = samples
      .filter((s) => s.system === system)
      .map((s) => {
        let reserved = 0;
        let used = 0;
        for (const tier of Object.values(s.tiers)) {
          reserved += tier.reserved_bytes;
          used += tier.used_bytes;
        }
        return { reserved, used };
      })
      .filter((s) => s.used > 0);
    const mean = (values: number[]) => (values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length);
    const meanReserved = mean(own.map((s) => s.reserved));
    const meanUsed = mean(own.map((s) => s.used));
    const mine = jobs.filter((j) => j.system === system);
    return {
      system,
      reserved_over_used: meanUsed > 0 ? round(meanReserved / meanUsed, 3) : 0,
      mean_reserved_bytes: Math.round(meanReserved),
      mean_used_bytes: Math.round(meanUsed),
      makespan_s: round(Math.max(...mine.map((j) => j.end_s)) - Math.min(...mine.map((j) => j.start_s)), 2),
    };
  });
}
