import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/** A latency row's percentiles, in microseconds: what every benchmark's JSON carries for each system. */
export interface LatencySummary {
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
}

/**
 * Latencies as an HDR histogram (Node's `perf_hooks.createHistogram`, the HdrHistogram C library: 3 significant
 * digits from 1 ns to an hour), recorded in nanoseconds: fixed memory however long the run, ~35 ns a sample here,
 * and p99.9 and max as exact as p50 (a sorted copy of every sample was 8 bytes a sample and a sort per read).
 */
export class LatencyRecorder {
  private readonly histogram: RecordableHistogram = createHistogram({ lowest: 1, highest: 3_600_000_000_000, figures: 3 });

  get count(): number {
    return this.histogram.count;
  }

  add(micros: number): void {
    this.histogram.record(Math.min(3_600_000_000_000, Math.max(1, Math.round(micros * 1000))));
  }

  /** Adds every sample of `other` (a run's recorders merged). */
  merge(other: LatencyRecorder): void {
    this.histogram.add(other.histogram);
  }

  /** Percentile (0..100), in microseconds; 0 with no samples. */
  percentile(p: number): number {
    return this.count === 0 ? 0 : this.histogram.percentile(p) / 1000;
  }

  get max(): number {
    return this.count === 0 ? 0 : this.histogram.max / 1000;
  }

  /** p50, p99, p99.9 and max, rounded to 0.1 µs. */
  summary(): LatencySummary {
    return {
      p50_us: round(this.percentile(50)),
      p99_us: round(this.percentile(99)),
      p999_us: round(this.percentile(99.9)),
      max_us: round(this.max),
    };
  }
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
