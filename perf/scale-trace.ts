/**
 * Job traces for `satchel bench scale` (issue 20): when each serverless analytics job arrives, how long it runs,
 * what it tells the controller (its hints) and what it really does (bytes held, bytes/s). Either generated from a
 * seed, or read from a CSV file (`--trace`).
 *
 * The generator's distributions, and where their shapes come from:
 * - Arrivals: a Poisson process whose rate switches between a base rate and bursts of 8× it (a two-state
 *   Markov-modulated Poisson process; bursts last 20 s on average, calm spells 100 s). Serverless invocations
 *   arrive in bursts: Shahrad et al., "Serverless in the Wild" (USENIX ATC 2020, the Azure Functions trace).
 *   The base rate is set so that `jobs` arrive over `spanS` seconds.
 * - Duration: log-normal, median 60 s, σ 1.2 (p99 ≈ 16 min). Azure's function and application durations are
 *   heavy-tailed and close to log-normal (same paper); a job is minutes of functions.
 * - Bytes held at the peak: log-normal, median 256 MiB, σ 1.6 (p99 ≈ 10 GiB). Pocket (Klimovic et al., OSDI
 *   2018) measured ephemeral data of serverless analytics jobs from MBs (a video frame batch) to 100s of GB (a
 *   TPC-DS query's shuffle); its sort runs 100 GB.
 * - Bytes/s: the bytes held, read and written `touches` times over the job's life, `touches` log-normal (median 4,
 *   σ 0.8): a shuffle writes its data once and reads it once or twice, iterative jobs more.
 * - Hints: a third latency-sensitive (Pocket's latency-sensitive class: DRAM), the rest bulk; the capacity hint
 *   is the bytes held times U(1, 3) (drivers overestimate: what rightsizing is for), 10 % of jobs give no
 *   capacity hint; 10 % ask for 2 copies.
 */
import { SatchelError } from '../proto/index.ts';

export interface TraceJob {
  /** Arrival, ms after the trace starts. */
  arriveMs: number;
  /** How long it runs (registered → deregistered), ms. */
  durationMs: number;
  /** What it tells the controller. */
  latencySensitive: boolean;
  /** Capacity hint in bytes; 0: none given. */
  capacityHint: number;
  /** Throughput hint in bytes/s. */
  throughputHint: number;
  replicas: number;
  /** What it really holds at its peak, and really moves per second. */
  usedBytes: number;
  bytesPerS: number;
}

export interface TraceOptions {
  jobs: number;
  seed: number;
  /** Over how many seconds the jobs arrive (default: jobs / 10, so 10,000 jobs arrive over ~17 minutes). */
  spanS?: number;
}

/** xoshiro128** (Blackman and Vigna): a small, seedable generator whose streams do not repeat in any run here. */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 spreads one seed over the four words.
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result / 4294967296;
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Log-normal with the given median and σ of its logarithm. */
  logNormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const MiB = 1024 * 1024;
const BURST_FACTOR = 8;
const MEAN_BURST_S = 20;
const MEAN_CALM_S = 100;

/** A seeded trace of `jobs` jobs (the same seed, the same trace). */
export function generateTrace(options: TraceOptions): TraceJob[] {
  if (!Number.isInteger(options.jobs) || options.jobs < 1) throw new SatchelError('BAD_REQUEST', 'a trace needs at least one job');
  const random = new Random(options.seed);
  const spanS = options.spanS ?? options.jobs / 10;
  if (!(spanS > 0)) throw new SatchelError('BAD_REQUEST', 'a trace spans more than 0 seconds');
  // The base rate that brings `jobs` over `spanS`, given the time spent in bursts.
  const burstShare = MEAN_BURST_S / (MEAN_BURST_S + MEAN_CALM_S);
  const baseRate = options.jobs / spanS / (1 - burstShare + burstShare * BURST_FACTOR);
  const jobs: TraceJob[] = [];
  let nowS = 0;
  let bursting = false;
  let switchAtS = random.exponential(MEAN_CALM_S);
  while (jobs.length < options.jobs) {
    const rate = bursting ? baseRate * BURST_FACTOR : baseRate;
    const gap = random.exponential(1 / rate);
    if (nowS + gap > switchAtS) {
      // Memoryless: the next arrival is drawn afresh at the new rate from the switch.
      nowS = switchAtS;
      bursting = !bursting;
      switchAtS = nowS + random.exponential(bursting ? MEAN_BURST_S : MEAN_CALM_S);
      continue;
    }
    nowS += gap;
    jobs.push(jobAt(random, nowS));
  }
  return jobs;
}

function jobAt(random: Random, arriveS: number): TraceJob {
  const durationS = Math.min(random.logNormal(60, 1.2), 24 * 3600);
  const usedBytes = Math.round(Math.min(Math.max(random.logNormal(256 * MiB, 1.6), 64 * 1024), 1024 ** 4));
  const touches = random.logNormal(4, 0.8);
  const bytesPerS = Math.round((usedBytes * touches) / durationS);
  const latencySensitive = random.next() < 1 / 3;
  const capacityHint = random.next() < 0.1 ? 0 : Math.round(usedBytes * (1 + 2 * random.next()));
  const replicas = random.next() < 0.1 ? 2 : 1;
  return {
    arriveMs: Math.round(arriveS * 1000),
    durationMs: Math.max(1000, Math.round(durationS * 1000)),
    latencySensitive,
    capacityHint,
    throughputHint: bytesPerS,
    replicas,
    usedBytes,
    bytesPerS,
  };
}

/** The CSV header `--trace` files carry (and `traceToCsv` writes). */
export const TRACE_COLUMNS = [
  'arrive_ms',
  'duration_ms',
  'latency_sensitive',
  'capacity_hint',
  'throughput_hint',
  'replicas',
  'used_bytes',
  'bytes_per_s',
] as const;

export function traceToCsv(jobs: readonly TraceJob[]): string {
  const lines = [TRACE_COLUMNS.join(',')];
  for (const j of jobs)
    lines.push(
      [j.arriveMs, j.durationMs, j.latencySensitive ? 1 : 0, j.capacityHint, j.throughputHint, j.replicas, j.usedBytes, j.bytesPerS].join(
        ',',
      ),
    );
  return `${lines.join('\n')}\n`;
}

/**
 * A CSV trace: the header names the columns (any order; TRACE_COLUMNS all required, others ignored), one job a
 * line, blank lines and `#` comments skipped, arrivals in any order (sorted here). A bad line is BAD_REQUEST
 * naming its line number and column.
 */
export function parseTrace(text: string): TraceJob[] {
  const lines = text.split(/\r?\n/);
  let header: string[] | null = null;
  const jobs: TraceJob[] = [];
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const cells = line.split(',').map((c) => c.trim());
    if (header === null) {
      header = cells;
      const missing = TRACE_COLUMNS.filter((c) => !cells.includes(c));
      if (missing.length > 0) throw new SatchelError('BAD_REQUEST', `trace line ${index + 1}: the header lacks ${missing.join(', ')}`);
      return;
    }
    const at = (name: (typeof TRACE_COLUMNS)[number], min: number, max: number): number => {
      const text = cells[header!.indexOf(name)] ?? '';
      const value = Number(text);
      if (text === '' || !Number.isFinite(value) || value < min || value > max)
        throw new SatchelError(
          'BAD_REQUEST',
          `trace line ${index + 1}: ${name} ${JSON.stringify(text)} is not a number from ${min} to ${max}`,
        );
      return value;
    };
    jobs.push({
      arriveMs: at('arrive_ms', 0, Number.MAX_SAFE_INTEGER),
      durationMs: at('duration_ms', 1, Number.MAX_SAFE_INTEGER),
      latencySensitive: at('latency_sensitive', 0, 1) === 1,
      capacityHint: at('capacity_hint', 0, 2 ** 50),
      throughputHint: at('throughput_hint', 0, 2 ** 50),
      replicas: at('replicas', 1, 3),
      usedBytes: at('used_bytes', 0, 2 ** 50),
      bytesPerS: at('bytes_per_s', 0, 2 ** 50),
    });
  });
  if (header === null) throw new SatchelError('BAD_REQUEST', 'the trace is empty: a header line and one job a line');
  if (jobs.length === 0) throw new SatchelError('BAD_REQUEST', 'the trace has a header and no job');
  return jobs.sort((a, b) => a.arriveMs - b.arriveMs);
}
