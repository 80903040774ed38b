/**
 * The anomalies the models find, kept as the report needs them; and the one-line description of an op that every
 * message and report uses.
 */
import type { Anomaly, AnomalyKind, JobCheck } from './check-types.ts';
import type { HistoryOp } from './history.ts';

/** Where findings go: counts per job, the timeline, and a bounded set of the earliest examples. */
export class Findings {
  readonly examples: Record<AnomalyKind, Anomaly[]> = { wrong: [], stale: [], null: [], lost: [], counters: [], malformed: [] };
  readonly timeline: Record<AnomalyKind, number[]> = { wrong: [], stale: [], null: [], lost: [], counters: [], malformed: [] };
  malformed = 0;

  constructor(
    readonly cap: number,
    readonly bucketMs: number,
  ) {}

  add(anomaly: Anomaly, job: JobCheck | undefined): void {
    if (job) {
      if (anomaly.kind === 'counters') job.countersOff++;
      else if (anomaly.kind !== 'malformed') job[anomaly.kind]++;
    }
    if (anomaly.kind === 'malformed') this.malformed++;
    else bump(this.timeline[anomaly.kind], bucketOf(anomaly.atMs, this.bucketMs));
    const list = this.examples[anomaly.kind];
    list.push(anomaly);
    // Keep the earliest: trim to the cap whenever the list doubles (amortized O(log) per anomaly).
    if (list.length >= 2 * this.cap) this.trim(anomaly.kind);
  }

  trim(kind: AnomalyKind): void {
    const list = this.examples[kind];
    list.sort(byTime);
    list.length = Math.min(list.length, this.cap);
  }
}

function byTime(a: Anomaly, b: Anomaly): number {
  return a.atMs - b.atMs || (a.job < b.job ? -1 : a.job > b.job ? 1 : 0) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

export function bucketOf(ms: number, bucketMs: number): number {
  return ms > 0 ? Math.floor(ms / bucketMs) : 0;
}

export function bump(series: number[], index: number): void {
  while (series.length <= index) series.push(0);
  series[index]!++;
}

/** Short text for an op in messages: `put "v1" ok [10.0–12.5 ms] by p3`. */
export function describeOp(op: HistoryOp): string {
  let what: string = op.op;
  if (op.op === 'put') what += ` ${JSON.stringify(op.value)}`;
  if (op.op === 'incr') what += ` +${op.amount ?? 1}`;
  if ((op.op === 'get' || op.op === 'wait' || op.op === 'incr') && op.outcome === 'ok') {
    what += ` → ${op.result === null || op.result === undefined ? 'null' : JSON.stringify(op.result)}`;
  }
  const outcome = op.outcome === 'ok' ? 'ok' : `${op.outcome}${op.errorCode ? ` ${op.errorCode}` : ''}`;
  return `${what} ${outcome} [${op.invokeMs.toFixed(1)}–${op.completeMs.toFixed(1)} ms]${op.final ? ' final' : ''} by ${op.process}`;
}

export function anomaly(
  kind: AnomalyKind,
  job: JobCheck,
  key: string,
  op: HistoryOp,
  message: string,
  extra: Partial<Anomaly> = {},
): Anomaly {
  return { kind, job: job.job, replicas: job.replicas, key, atMs: op.completeMs, message, op, ...extra };
}
