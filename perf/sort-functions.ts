/**
 * The functions of the sort benchmark, as a serverless platform would run them: each invocation gets a task
 * naming its store (a Satchel job ticket, or Redis shard addresses) and its slice, connects, does its work,
 * disconnects. `runSortFunction` runs in a worker process (function-worker.ts); nothing here knows about the
 * driver. Keys: `<prefix>in/<m>` (input slices), `<prefix>map/<m>/<r>` (partitions), `<prefix>out/<r>`.
 */
import { Redis } from 'ioredis';
import { Satchel, SatchelError } from '../client/index.ts';
import { forEachLimit, hashKey, mapLimit } from '../proto/index.ts';
import { generateRecords, mergeSortedRuns, partitionBounds, RECORD_BYTES, type RecordSummary, sortRecords, summarize } from './records.ts';

export type StoreTarget = { kind: 'satchel'; ticket: string } | { kind: 'redis'; shards: string[] };

export interface SortSpec {
  /** Input generator seed: the same seed gives every system the same records. */
  seed: string;
  records: number;
  mappers: number;
  reducers: number;
  /** Key prefix (Redis shards are shared by runs; Satchel jobs are not, but the keys look the same). */
  prefix: string;
  /** Per-function network cap in bytes per second (real functions get ~75 MB/s); null: none. */
  functionBytesPerSecond: number | null;
  /** Wall-clock origin (ms since 1970) of the timeline, and its interval. */
  epochMs: number;
  intervalMs: number;
}

export interface SortTask {
  fn: 'load' | 'map' | 'reduce' | 'verify';
  /** Mapper index for load and map, reducer index for reduce and verify. */
  index: number;
  target: StoreTarget;
  spec: SortSpec;
}

export interface SortResult {
  /** load: the input slice; verify: the output partition. */
  summary: RecordSummary | null;
  /** Storage operations: latencies in µs by op (map and reduce only; load and verify are not measured). */
  latencies: Record<string, number[]>;
  bytes: number;
  /** [interval index, bytes, ops] for each interval the function moved data in. */
  timeline: [number, number, number][];
  /** Seconds by part of the function's work (`map.read`, `map.sort`, …). */
  parts: Record<string, number>;
  /** Wall clock (ms since 1970) when the function started and ended. */
  startedMs: number;
  endedMs: number;
}

/** How long a reducer waits for a mapper's partition before the sort fails (a mapper died, say). */
const WAIT_MS = 600_000;

/** Requests one function keeps in flight: what a function's Promise.all over a bounded pool would do. */
const IN_FLIGHT = 16;

interface FunctionStore {
  put(key: string, value: Buffer): Promise<void>;
  get(key: string): Promise<Buffer | null>;
  /**
   * The value once the key exists (Satchel's waitFor): reducers read partitions with it, so they may start
   * before the mappers finish. Absent for Redis, whose reducers run after the map stage (the driver's barrier).
   */
  waitFor?(key: string): Promise<Buffer>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

export function inputKey(spec: SortSpec, mapper: number): string {
  return `${spec.prefix}in/${mapper}`;
}

export function partitionKey(spec: SortSpec, mapper: number, reducer: number): string {
  return `${spec.prefix}map/${mapper}/${reducer}`;
}

export function outputKey(spec: SortSpec, reducer: number): string {
  return `${spec.prefix}out/${reducer}`;
}

/** Records of mapper m's input slice: [first, first + count). */
export function sliceOf(spec: SortSpec, mapper: number): { first: number; count: number } {
  const first = Math.floor((mapper * spec.records) / spec.mappers);
  const next = Math.floor(((mapper + 1) * spec.records) / spec.mappers);
  return { first, count: next - first };
}

const now = () => performance.timeOrigin + performance.now();

export async function runSortFunction(task: SortTask): Promise<SortResult> {
  const { spec } = task;
  const startedMs = now();
  const meter = new Meter(spec, task.fn === 'map' || task.fn === 'reduce');
  const store = await openStore(task.target, meter, spec.functionBytesPerSecond);
  let summary: RecordSummary | null = null;
  try {
    switch (task.fn) {
      case 'load': {
        const { first, count } = sliceOf(spec, task.index);
        const records = generateRecords(spec.seed, first, count);
        summary = summarize(records);
        await store.put(inputKey(spec, task.index), records);
        break;
      }
      case 'map':
        await map(task.index, spec, store, meter);
        break;
      case 'reduce':
        await reduce(task.index, spec, store, meter);
        break;
      case 'verify': {
        const output = await store.get(outputKey(spec, task.index));
        if (output === null) throw new SatchelError('BAD_REQUEST', `verification: output ${outputKey(spec, task.index)} is missing`);
        summary = summarize(output);
        break;
      }
    }
  } finally {
    await store.close();
  }
  return { summary, ...meter.result(), startedMs, endedMs: now() };
}

async function map(mapper: number, spec: SortSpec, store: FunctionStore, meter: Meter): Promise<void> {
  let t = performance.now();
  const input = await store.get(inputKey(spec, mapper));
  if (input === null) throw new SatchelError('BAD_REQUEST', `map ${mapper}: input ${inputKey(spec, mapper)} is missing`);
  t = meter.part('map.read', t);
  const sorted = sortRecords(input);
  const bounds = partitionBounds(sorted, spec.reducers);
  t = meter.part('map.sort', t);
  await forEachLimit(upTo(spec.reducers), IN_FLIGHT, (r) =>
    store.put(partitionKey(spec, mapper, r), sorted.subarray(bounds[r]! * RECORD_BYTES, bounds[r + 1]! * RECORD_BYTES)),
  );
  meter.part('map.write', t);
}

async function reduce(reducer: number, spec: SortSpec, store: FunctionStore, meter: Meter): Promise<void> {
  let t = performance.now();
  const runs = await mapLimit(upTo(spec.mappers), IN_FLIGHT, async (m) => {
    const key = partitionKey(spec, m, reducer);
    const run = store.waitFor !== undefined ? await store.waitFor(key) : await store.get(key);
    if (run === null) throw new SatchelError('BAD_REQUEST', `reduce ${reducer}: partition ${key} is missing`);
    return run;
  });
  t = meter.part('reduce.read', t);
  const merged = mergeSortedRuns(runs);
  t = meter.part('reduce.merge', t);
  await store.put(outputKey(spec, reducer), merged);
  t = meter.part('reduce.write', t);
  // Intermediate data is the job's to free as soon as it is consumed.
  await forEachLimit(upTo(spec.mappers), IN_FLIGHT, async (m) => {
    await store.delete(partitionKey(spec, m, reducer));
  });
  meter.part('reduce.delete', t);
}

/** 0, 1, …, n − 1: partitions (or mappers) as the items of a bounded pool. */
function upTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Latency, bytes and a timeline of one function's storage operations. */
class Meter {
  private readonly latencies: Record<string, number[]> = {};
  private readonly buckets = new Map<number, [number, number]>();
  private readonly parts: Record<string, number> = {};
  private bytes = 0;

  constructor(
    private readonly spec: SortSpec,
    private readonly measured: boolean,
  ) {}

  op(name: string, startedAt: number, bytes: number): void {
    if (!this.measured) return;
    const end = performance.now();
    (this.latencies[name] ??= []).push(Math.round((end - startedAt) * 1000));
    this.bytes += bytes;
    const interval = Math.floor((now() - this.spec.epochMs) / this.spec.intervalMs);
    const bucket = this.buckets.get(interval);
    if (bucket === undefined) this.buckets.set(interval, [bytes, 1]);
    else {
      bucket[0] += bytes;
      bucket[1]++;
    }
  }

  /** Adds the time since `since` to a part; returns now, the start of the next part. */
  part(name: string, since: number): number {
    const t = performance.now();
    this.parts[name] = (this.parts[name] ?? 0) + (t - since) / 1000;
    return t;
  }

  result() {
    return {
      latencies: this.latencies,
      bytes: this.bytes,
      timeline: [...this.buckets].map(([i, [bytes, ops]]) => [i, bytes, ops] as [number, number, number]),
      parts: this.parts,
    };
  }
}

/** A function's share of the network: an operation completes no sooner than its bytes could have crossed it. */
class Throttle {
  private free = 0;

  constructor(private readonly bytesPerSecond: number) {}

  async pass(bytes: number): Promise<void> {
    const t = performance.now();
    this.free = Math.max(this.free, t) + (bytes / this.bytesPerSecond) * 1000;
    const wait = this.free - t;
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

async function openStore(target: StoreTarget, meter: Meter, bytesPerSecond: number | null): Promise<FunctionStore> {
  const throttle = bytesPerSecond === null ? null : new Throttle(bytesPerSecond);
  const raw = target.kind === 'satchel' ? await satchelStore(target.ticket) : redisStore(target.shards);
  return {
    async put(key, value) {
      const t = performance.now();
      await raw.put(key, value);
      await throttle?.pass(value.length);
      meter.op('put', t, value.length);
    },
    async get(key) {
      const t = performance.now();
      const value = await raw.get(key);
      await throttle?.pass(value?.length ?? 0);
      meter.op('get', t, value?.length ?? 0);
      return value;
    },
    async delete(key) {
      const t = performance.now();
      await raw.delete(key);
      meter.op('delete', t, 0);
    },
    // Metered as its own op: its time includes waiting for a mapper, not only the storage round trip.
    waitFor:
      raw.waitFor === undefined
        ? undefined
        : async (key) => {
            const t = performance.now();
            const value = await raw.waitFor!(key);
            await throttle?.pass(value.length);
            meter.op('wait', t, value.length);
            return value;
          },
    close: () => raw.close(),
  };
}

async function satchelStore(ticket: string): Promise<FunctionStore> {
  const job = await Satchel.attach(ticket);
  return {
    put: (key, value) => job.put(key, value),
    get: (key) => job.get(key),
    waitFor: (key) => job.waitFor(key, { timeoutMs: WAIT_MS }),
    delete: async (key) => {
      await job.delete(key);
    },
    close: () => job.close(),
  };
}

/** Redis as a sort would use it: one connection per shard, keys spread by hash (what a sharding client does). */
function redisStore(shards: string[]): FunctionStore {
  const clients = shards.map((address) => {
    const colon = address.lastIndexOf(':');
    return new Redis({
      host: address.slice(0, colon),
      port: Number(address.slice(colon + 1)),
      protocol: 2,
      lazyConnect: false,
      maxRetriesPerRequest: 2,
    });
  });
  const shard = (key: string) => clients[hashKey(key) % clients.length]!;
  return {
    put: async (key, value) => {
      await shard(key).set(key, value);
    },
    get: (key) => shard(key).getBuffer(key),
    delete: async (key) => {
      await shard(key).del(key);
    },
    close: async () => {
      await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
