/**
 * `satchel bench shuffle`: a CloudSort-style sort run as M map and R reduce functions in worker processes,
 * against a Satchel job and against Redis (one or more redis-servers, keys sharded by the client), in the same
 * run. Each sort is loaded, run, then verified (sorted, same count and checksum as the input); a sort that fails
 * verification throws `VerificationError`, it never becomes a row. With `cluster` the Satchel jobs run on that
 * existing cluster (`satchel up`, where the console shows them live), registered with its tenant key, instead of
 * one started for the run; with `noRedis` there is no Redis baseline.
 */
import { Redis } from 'ioredis';
import { type JobHints, type RegisteredJob, Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import type { Tier } from '../proto/index.ts';
import { SatchelError } from '../proto/index.ts';
import type { ExistingCluster } from './cluster-access.ts';
import { FunctionPool } from './function-pool.ts';
import { Progress } from './progress.ts';
import { addChecksums, RECORD_BYTES, type RecordSummary } from './records.ts';
import { RedisProcess } from './redis-server.ts';
import type { OpLatency, ShuffleRow, Timeline } from './shuffle-report.ts';
import type { SortResult, SortSpec, SortTask, StoreTarget } from './sort-functions.ts';
import { LatencyRecorder, round } from './stats.ts';

export class VerificationError extends Error {
  override name = 'VerificationError';
}

/** Hints that make the allocation policy choose each tier (controller/README.md). */
export const TIER_HINTS: Record<Tier, JobHints> = {
  dram: { latencySensitive: true },
  ssd: { latencySensitive: false },
  hdd: { peakThroughput: 1e6 },
};

/** A sort and where it runs: what `bench shuffle` and `bench jobs` share. */
export interface SortOptions {
  /** Bytes of input per sort. */
  bytes: number;
  mappers: number;
  reducers: number;
  /** Functions running at once. */
  concurrency: number;
  tier: Tier;
  /** Satchel storage nodes of that tier, in the cluster the run starts (unused with `cluster`). */
  nodes: number;
  redisShards: number;
  /** Existing redis servers (HOST:PORT each) instead of starting `redisShards` of them. */
  redis?: string[];
  /** Satchel only: no Redis started or used, no Redis rows. */
  noRedis?: boolean;
  /**
   * An existing cluster (its controller, tenant key, and console with its viewer token: `bench jobs` samples
   * `/api/nodes` from it) instead of a cluster started (and stopped) by the run.
   */
  cluster?: ExistingCluster;
  functionBytesPerSecond: number | null;
}

export interface ShuffleOptions extends SortOptions {
  /** Sorts per system; rounds alternate which system goes first. */
  rounds: number;
  seed?: string;
}

/** Bytes a sort holds at its peak: input, partitions and output can all be live at once. */
export const PEAK_FACTOR = 3;
const TIMELINE_INTERVAL_MS = 250;

export interface ShuffleOutcome {
  results: (ShuffleRow & { round: number })[];
  timelines: Timeline[];
}

/** The systems a run compares, started and stopped together. */
export class SortSystems {
  private constructor(
    /** The cluster this run started, null when it uses an existing one (which it never stops). */
    readonly cluster: LocalCluster | null,
    /** The console of the cluster, when known, and the token that reads it. */
    readonly console: { url: string; token: string } | null,
    readonly satchel: Satchel,
    /** Empty with `noRedis`. */
    readonly redisShards: string[],
    private readonly redisProcesses: RedisProcess[],
    /**
     * Each system's own function processes (warm containers), as a platform gives each function its own: a
     * process whose heap had run ioredis at speed ran Satchel's client with far costlier collections (bench
     * micro, perf/RESULTS.md), so a pool shared by both systems would measure one through the other.
     */
    private readonly pools: { satchel: FunctionPool; redis: FunctionPool | null },
  ) {}

  /** The function processes of the system `target` is a store of. */
  poolFor(target: StoreTarget): FunctionPool {
    if (target.kind === 'satchel') return this.pools.satchel;
    if (this.pools.redis === null) throw new SatchelError('BAD_REQUEST', 'no Redis in this run (--no-redis)');
    return this.pools.redis;
  }

  /**
   * A cluster with `nodes` nodes of `tier` sized for `peakBytes` (or the existing `cluster`), the
   * Redis shards (none with `noRedis`), and the function pool.
   */
  static async start(options: {
    tier: Tier;
    nodes: number;
    peakBytes: number;
    redisShards: number;
    redis?: string[];
    noRedis?: boolean;
    cluster?: ExistingCluster;
    concurrency: number;
  }): Promise<SortSystems> {
    let cluster: LocalCluster | null = null;
    if (options.cluster === undefined) {
      // Values are striped in 1 MiB blocks, so a node's capacity is all that needs sizing.
      const perNode = Math.ceil((options.peakBytes * 1.25) / options.nodes) + 256 * 1024 ** 2;
      const count = (tier: Tier) => (options.tier === tier ? options.nodes : 0);
      cluster = await LocalCluster.start({
        dram: count('dram'),
        ssd: count('ssd'),
        hdd: count('hdd'),
        dramCapacity: perNode,
        ssdCapacity: perNode,
        hddCapacity: perNode,
      });
    }
    const processes: RedisProcess[] = [];
    let satchel: Satchel | null = null;
    try {
      satchel =
        cluster !== null
          ? await Satchel.connect(cluster.controller, { key: cluster.tenantKey })
          : await Satchel.connect(options.cluster!.controller, { key: options.cluster!.key });
      let shards = options.noRedis === true ? [] : options.redis;
      if (shards === undefined) {
        for (let i = 0; i < options.redisShards; i++) processes.push(await RedisProcess.start());
        shards = processes.map((p) => `${p.host}:${p.port}`);
      }
      const existing = options.cluster;
      const consoleAccess =
        cluster !== null
          ? { url: cluster.info.console, token: cluster.viewerToken }
          : existing?.console !== undefined && existing.viewerToken !== undefined
            ? { url: existing.console, token: existing.viewerToken }
            : null;
      const pools = {
        satchel: new FunctionPool(options.concurrency),
        redis: shards.length > 0 ? new FunctionPool(options.concurrency) : null,
      };
      return new SortSystems(cluster, consoleAccess, satchel, shards, processes, pools);
    } catch (error) {
      satchel?.close();
      await Promise.all(processes.map((p) => p.stop()));
      await cluster?.stop();
      throw error;
    }
  }

  /** Whether there is a Redis baseline. */
  get hasRedis(): boolean {
    return this.redisShards.length > 0;
  }

  get redisName(): string {
    return this.redisShards.length === 1 ? 'redis' : `redis-${this.redisShards.length}-shards`;
  }

  /** Stops what this run started: functions, Redis servers, and the cluster only if it started it. */
  async stop(): Promise<void> {
    await Promise.all([this.pools.satchel.close(), this.pools.redis?.close()]);
    this.satchel.close();
    await Promise.all(this.redisProcesses.map((p) => p.stop()));
    await this.cluster?.stop();
  }
}

/** Where one sort keeps its data, and how to get rid of it afterwards. */
export interface SortStore {
  system: string;
  target: StoreTarget;
  release(): Promise<void>;
  /** Satchel's job (for reports on it); null for Redis. */
  job: RegisteredJob | null;
}

export async function satchelSortStore(systems: SortSystems, name: string, tier: Tier, bytes: number, mappers: number): Promise<SortStore> {
  const job = await systems.satchel.registerJob(name, { ...TIER_HINTS[tier], capacity: PEAK_FACTOR * bytes, functions: mappers });
  return { system: `satchel-${tier}`, target: { kind: 'satchel', ticket: job.ticket }, release: () => job.deregister(), job };
}

/** Redis keys of one sort live under `prefix`; releasing deletes them. */
export function redisSortStore(systems: SortSystems, prefix: string): SortStore {
  if (!systems.hasRedis) throw new SatchelError('BAD_REQUEST', 'no Redis in this run (--no-redis)');
  return {
    system: systems.redisName,
    target: { kind: 'redis', shards: systems.redisShards },
    job: null,
    release: async () => {
      await Promise.all(systems.redisShards.map((address) => deleteByPrefix(address, prefix)));
    },
  };
}

async function deleteByPrefix(address: string, prefix: string): Promise<void> {
  const colon = address.lastIndexOf(':');
  const client = new Redis({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)), protocol: 2 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await client.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

export interface SortRun {
  row: ShuffleRow;
  timeline: Timeline;
}

/**
 * One sort on one store: load the input, map, reduce, verify. `onStep` is called after every function (for
 * progress). Throws VerificationError when the output is not the sorted input.
 */
export async function runSort(
  pool: FunctionPool,
  store: SortStore,
  spec: Omit<SortSpec, 'epochMs' | 'intervalMs'>,
  onStep: (what: string) => void = () => {},
): Promise<SortRun> {
  const full: SortSpec = { ...spec, epochMs: Date.now(), intervalMs: TIMELINE_INTERVAL_MS };
  const stage = async (fn: SortTask['fn'], count: number, epochMs = full.epochMs) => {
    const started = performance.now();
    let done = 0;
    const results = await Promise.all(
      Array.from({ length: count }, (_, index) =>
        pool.invoke({ fn, index, target: store.target, spec: { ...full, epochMs } }).then((result) => {
          onStep(`${store.system} ${fn} ${++done}/${count}`);
          return result;
        }),
      ),
    );
    return { results, seconds: (performance.now() - started) / 1000, endedAt: performance.now() };
  };

  const load = await stage('load', spec.mappers);
  const epochMs = Date.now();
  // Satchel's reducers wait for each partition (waitFor), so they are invoked with the mappers, queued behind
  // them in the pool: a reducer starts as soon as a slot frees. Redis has no such wait: its reducers are
  // invoked once every mapper has finished, the driver's barrier.
  let mapStage: Awaited<ReturnType<typeof stage>>;
  let reduceStage: Awaited<ReturnType<typeof stage>>;
  if (store.target.kind === 'satchel') {
    [mapStage, reduceStage] = await Promise.all([stage('map', spec.mappers, epochMs), stage('reduce', spec.reducers, epochMs)]);
  } else {
    mapStage = await stage('map', spec.mappers, epochMs);
    reduceStage = await stage('reduce', spec.reducers, epochMs);
  }
  // From the last map to the last reduce, whether or not reducers started earlier.
  const reduceSeconds = (reduceStage.endedAt - mapStage.endedAt) / 1000;
  const verify = await stage('verify', spec.reducers);
  checkOutput(
    load.results.map((r) => r.summary!),
    verify.results.map((r) => r.summary!),
    spec.records,
  );

  const functions = [...mapStage.results, ...reduceStage.results];
  const parts: Record<string, number> = {};
  for (const f of functions) for (const [part, s] of Object.entries(f.parts)) parts[part] = (parts[part] ?? 0) + s;
  const reduceTotal = ['reduce.read', 'reduce.merge', 'reduce.write', 'reduce.delete'].reduce((acc, p) => acc + (parts[p] ?? 0), 0);
  const first = Math.min(...mapStage.results.map((r) => r.startedMs));
  const last = Math.max(...reduceStage.results.map((r) => r.endedMs));

  const all = new LatencyRecorder();
  const byOp: Record<string, OpLatency> = {};
  const perOp = new Map<string, LatencyRecorder>();
  let bytes = 0;
  for (const f of functions) {
    bytes += f.bytes;
    for (const [op, samples] of Object.entries(f.latencies)) {
      let recorder = perOp.get(op);
      if (recorder === undefined) perOp.set(op, (recorder = new LatencyRecorder()));
      // A wait's time includes the mapper it waited for: reported by itself, not in the storage latency.
      for (const s of samples) {
        recorder.add(s);
        if (op !== 'wait') all.add(s);
      }
    }
  }
  for (const [op, recorder] of perOp) byOp[op] = { count: recorder.count, ...recorder.summary() };

  const row: ShuffleRow = {
    system: store.system,
    bytes: spec.records * RECORD_BYTES,
    records: spec.records,
    mappers: spec.mappers,
    reducers: spec.reducers,
    concurrency: pool.size,
    seconds: round((last - first) / 1000, 3),
    phases: {
      map_s: round(mapStage.seconds, 3),
      shuffle_read_s: round(reduceTotal > 0 ? (reduceSeconds * (parts['reduce.read'] ?? 0)) / reduceTotal : 0, 3),
      reduce_s: round(reduceSeconds, 3),
    },
    load_s: round(load.seconds, 3),
    verify_s: round(verify.seconds, 3),
    ops: all.count,
    op_bytes: bytes,
    ...all.summary(),
    by_op: byOp,
    function_seconds: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, round(v, 3)])),
    verified: true,
  };
  return { row, timeline: mergeTimelines(store.system, functions) };
}

/** Every output partition sorted, partitions in key order, and together exactly the input's records. */
export function checkOutput(input: RecordSummary[], output: RecordSummary[], records: number): void {
  const fail = (why: string) => {
    throw new VerificationError(`sort output failed verification: ${why}`);
  };
  let inputRecords = 0;
  let inputChecksum = 0;
  for (const s of input) {
    inputRecords += s.records;
    inputChecksum = addChecksums(inputChecksum, s.checksum);
  }
  if (inputRecords !== records) fail(`the input holds ${inputRecords} records, expected ${records}`);
  let outputRecords = 0;
  let outputChecksum = 0;
  let previousLast = '';
  output.forEach((s, r) => {
    if (s.records < 0) fail(`output partition ${r} is not a whole number of records`);
    if (!s.sorted) fail(`output partition ${r} is not sorted`);
    if (s.records > 0) {
      if (s.firstKey < previousLast) fail(`output partition ${r} starts before partition ${r - 1} ends`);
      previousLast = s.lastKey;
    }
    outputRecords += s.records;
    outputChecksum = addChecksums(outputChecksum, s.checksum);
  });
  if (outputRecords !== inputRecords) fail(`${outputRecords} records out, ${inputRecords} in`);
  if (outputChecksum !== inputChecksum) fail(`the output's checksum ${outputChecksum} differs from the input's ${inputChecksum}`);
}

function mergeTimelines(system: string, functions: SortResult[]): Timeline {
  const buckets = new Map<number, [number, number]>();
  for (const f of functions) {
    for (const [i, bytes, ops] of f.timeline) {
      const b = buckets.get(i);
      if (b === undefined) buckets.set(i, [bytes, ops]);
      else {
        b[0] += bytes;
        b[1] += ops;
      }
    }
  }
  const last = Math.max(0, ...buckets.keys());
  const interval = TIMELINE_INTERVAL_MS / 1000;
  const timeline: Timeline = { system, interval_s: interval, t: [], bytes_per_s: [], ops_per_s: [] };
  for (let i = 0; i <= last; i++) {
    const [bytes, ops] = buckets.get(i) ?? [0, 0];
    timeline.t.push(round(i * interval, 2));
    timeline.bytes_per_s.push(Math.round(bytes / interval));
    timeline.ops_per_s.push(Math.round(ops / interval));
  }
  return timeline;
}

/** The whole benchmark: `rounds` sorts per system, alternating which goes first. */
export async function runShuffle(options: ShuffleOptions): Promise<ShuffleOutcome> {
  const records = Math.floor(options.bytes / RECORD_BYTES);
  const kinds = options.noRedis === true ? (['satchel'] as const) : (['satchel', 'redis'] as const);
  const steps = options.rounds * kinds.length * (2 * options.mappers + 2 * options.reducers) + 2;
  const progress = new Progress('bench shuffle', steps);
  const systems = await SortSystems.start({
    tier: options.tier,
    nodes: options.nodes,
    peakBytes: PEAK_FACTOR * records * RECORD_BYTES,
    redisShards: options.redisShards,
    redis: options.redis,
    noRedis: options.noRedis,
    cluster: options.cluster,
    concurrency: options.concurrency,
  });
  progress.step(
    `${systems.cluster === null ? `cluster ${options.cluster?.controller}` : 'cluster'}${systems.hasRedis ? ', redis' : ''} and functions up`,
  );
  const outcome: ShuffleOutcome = { results: [], timelines: [] };
  try {
    const spec = {
      seed: options.seed ?? 'satchel-shuffle',
      records,
      mappers: options.mappers,
      reducers: options.reducers,
      prefix: 'sort/',
      functionBytesPerSecond: options.functionBytesPerSecond,
    };
    // Function processes start cold: a small unreported sort on each system first, so that neither system's
    // figures carry the functions' JIT warm-up (measured: the first system's map stage ran 1.6× slower).
    const warmUp = { ...spec, records: Math.min(records, 2000 * options.mappers), prefix: 'warm-up/' };
    for (const kind of kinds) {
      const store =
        kind === 'satchel'
          ? await satchelSortStore(systems, 'warm-up', options.tier, warmUp.records * RECORD_BYTES, options.mappers)
          : redisSortStore(systems, warmUp.prefix);
      try {
        await runSort(systems.poolFor(store.target), store, warmUp);
      } finally {
        await store.release();
      }
    }
    progress.step('functions warmed up');
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? kinds : [...kinds].reverse();
      for (const kind of order) {
        const store =
          kind === 'satchel'
            ? await satchelSortStore(systems, `shuffle-${round}`, options.tier, records * RECORD_BYTES, options.mappers)
            : redisSortStore(systems, spec.prefix);
        try {
          const run = await runSort(systems.poolFor(store.target), store, spec, (what) => progress.step(what));
          outcome.results.push({ ...run.row, round });
          outcome.timelines.push({
            ...run.timeline,
            system: options.rounds > 1 ? `${run.timeline.system} #${round + 1}` : run.timeline.system,
          });
        } finally {
          await store.release();
        }
      }
    }
    progress.end();
    return outcome;
  } finally {
    await systems.stop();
  }
}
