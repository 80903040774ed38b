/**
 * What `bench soak`'s driver (perf/soak.ts) and its client processes (perf/soak-worker.ts) say to each other
 * over IPC, and the latency histogram they merge: an interval's samples from every process, without shipping
 * every sample.
 */

/** How one client process runs. */
export interface SoakWorkerConfig {
  /** Index of this process, for job names and its random stream. */
  worker: number;
  controller: string;
  /** The tenant key its jobs are registered with. */
  key: string;
  /** Requests in flight (each lane one at a time). */
  lanes: number;
  /** Lanes that share one job (its "functions"); the process runs lanes / lanesPerJob jobs at a time. */
  lanesPerJob: number;
  /** Mean lifetime of a job, seconds (each is drawn from 0.5× to 1.5× of it). */
  jobSeconds: number;
  /** Mean time one function handle is used before it is closed and the ticket attached again, seconds. */
  invocationSeconds: number;
  /** Target operations per second of this process (0: as fast as the lanes go). */
  opsPerSecond: number;
  /** Tiers of the jobs, in turn. */
  tiers: ('dram' | 'ssd')[];
  /** Keys each lane cycles through in its job (its own prefix). */
  keysPerLane: number;
  /** Fraction of operations that write a value over the block size (1 MiB), which is split into blocks. */
  largeFraction: number;
  /** Reservation hint of each job, bytes. */
  jobCapacity: number;
}

export type ToWorker = { start: SoakWorkerConfig } | { tick: number } | { stop: true };

export type ToDriver = { ready: true } | { tick: number; stats: SoakStats } | { final: SoakStats } | { fatal: string };

/** Operation kinds, each with its own latency histogram. */
export type SoakOp =
  | 'put'
  | 'put_large'
  | 'get'
  | 'get_large'
  | 'stat'
  | 'delete'
  | 'list'
  | 'incr'
  | 'wait'
  | 'register'
  | 'deregister'
  | 'verify'
  /** The baseline's round trips (soak-floor.ts), not Satchel's. */
  | 'floor';

/** Operations that go to the storage nodes: the ones the interval's p50/p99 are over. */
export const DATA_OPS: readonly SoakOp[] = ['put', 'put_large', 'get', 'get_large', 'stat', 'delete', 'list', 'incr', 'wait'];

/** One process's counts since the last tick. Histograms are sparse: bucket index → count. */
export interface SoakStats {
  ops: Partial<Record<SoakOp, Record<number, number>>>;
  byTier: Partial<Record<string, Record<number, number>>>;
  errors: number;
  lost: number;
  /** A few of each, for the report (the first ones seen). */
  errorSamples: string[];
  lostSamples: string[];
  /** Values read and compared with what was written (including a job's final read-back). */
  verified: number;
  bytesWritten: number;
  bytesRead: number;
  jobsRegistered: number;
  jobsDeregistered: number;
  attaches: number;
}

export function emptyStats(): SoakStats {
  return {
    ops: {},
    byTier: {},
    errors: 0,
    lost: 0,
    errorSamples: [],
    lostSamples: [],
    verified: 0,
    bytesWritten: 0,
    bytesRead: 0,
    jobsRegistered: 0,
    jobsDeregistered: 0,
    attaches: 0,
  };
}

/** Samples kept per kind in a report. */
export const SAMPLES_KEPT = 5;

/** Log-scale buckets 2 % wide: a percentile read from them is within 1 % of the sample's value. */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);

export function bucketOf(micros: number): number {
  return micros <= 1 ? 0 : Math.ceil(Math.log(micros) / LOG_GROWTH);
}

export function addSample(histogram: Record<number, number>, micros: number): void {
  const bucket = bucketOf(micros);
  histogram[bucket] = (histogram[bucket] ?? 0) + 1;
}

export function mergeInto(target: Record<number, number>, source: Record<number, number> | undefined): void {
  if (source === undefined) return;
  for (const [bucket, count] of Object.entries(source)) target[Number(bucket)] = (target[Number(bucket)] ?? 0) + count;
}

export function countOf(histogram: Record<number, number>): number {
  let n = 0;
  for (const count of Object.values(histogram)) n += count;
  return n;
}

/** Percentile (0..100) by nearest rank, µs: the geometric middle of the bucket holding that rank. */
export function percentileOf(histogram: Record<number, number>, p: number): number {
  const buckets = Object.keys(histogram)
    .map(Number)
    .sort((a, b) => a - b);
  const total = countOf(histogram);
  if (total === 0) return 0;
  const rank = Math.min(total, Math.max(1, Math.ceil((p / 100) * total)));
  let seen = 0;
  for (const bucket of buckets) {
    seen += histogram[bucket]!;
    if (seen >= rank) return bucket === 0 ? 1 : GROWTH ** (bucket - 0.5);
  }
  return GROWTH ** (buckets[buckets.length - 1]! - 0.5);
}

/** Adds one process's stats to the interval's. */
export function mergeStats(into: SoakStats, from: SoakStats): void {
  for (const [op, histogram] of Object.entries(from.ops)) mergeInto((into.ops[op as SoakOp] ??= {}), histogram);
  for (const [tier, histogram] of Object.entries(from.byTier)) mergeInto((into.byTier[tier] ??= {}), histogram);
  into.errors += from.errors;
  into.lost += from.lost;
  for (const s of from.errorSamples) if (into.errorSamples.length < SAMPLES_KEPT) into.errorSamples.push(s);
  for (const s of from.lostSamples) if (into.lostSamples.length < SAMPLES_KEPT) into.lostSamples.push(s);
  into.verified += from.verified;
  into.bytesWritten += from.bytesWritten;
  into.bytesRead += from.bytesRead;
  into.jobsRegistered += from.jobsRegistered;
  into.jobsDeregistered += from.jobsDeregistered;
  into.attaches += from.attaches;
}

/** A small value's size, as the soak writes them (and its baseline sends them): log-uniform from 16 B to 64 KiB. */
export function smallValueSize(): number {
  return Math.round(16 * 4096 ** Math.random());
}

/** A lane's pacing: `period` ms between operation starts (0: none), catching up at most a second. */
export class Pacer {
  private next = performance.now();
  constructor(private readonly period: number) {}

  async wait(): Promise<void> {
    if (this.period === 0) return;
    const now = performance.now();
    this.next = Math.max(this.next + this.period, now - 1000);
    if (this.next > now) await new Promise((resolve) => setTimeout(resolve, this.next - now));
  }
}

/** What a driven process's lanes share: the counts since the last tick, and whether to go on. */
export interface LaneState {
  stats: SoakStats;
  running: boolean;
}

/**
 * Answers the driver's start, tick and stop over IPC for a driven process (a client process, the baseline), and
 * reports a crash as fatal. `start` starts the lanes (`done` settles once they stopped after `state.running`
 * turned false); `close` lets go of what the process holds once they have.
 */
export function answerDriver(
  name: string,
  state: LaneState,
  start: (config: SoakWorkerConfig) => Promise<{ done: Promise<void> }>,
  close: () => void,
): void {
  const send = (message: ToDriver) => process.send!(message);
  const take = () => {
    const taken = state.stats;
    state.stats = emptyStats();
    return taken;
  };
  let work: Promise<void> | null = null;
  let stopping = false;
  // A driver gone without saying stop (killed, crashed) leaves nobody to read the counts: lanes would run for ever.
  process.on('disconnect', () => {
    if (!stopping) process.exit(1);
  });
  process.on('message', (message: ToWorker) => {
    if ('start' in message) {
      start(message.start).then(
        (started) => {
          work = started.done;
          send({ ready: true });
        },
        (error: unknown) => send({ fatal: `${name} start: ${(error as Error).message}` }),
      );
    } else if ('tick' in message) {
      send({ tick: message.tick, stats: take() });
    } else {
      stopping = true;
      state.running = false;
      void (work ?? Promise.resolve()).then(
        () => {
          close();
          send({ final: take() });
          process.disconnect();
        },
        (error: unknown) => send({ fatal: `${name} stop: ${(error as Error).message}` }),
      );
    }
  });
  process.on('uncaughtException', (error) => send({ fatal: `${name}: uncaught: ${error.stack ?? error.message}` }));
  process.on('unhandledRejection', (error) => send({ fatal: `${name}: unhandled rejection: ${(error as Error)?.stack ?? String(error)}` }));
}
