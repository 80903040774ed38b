/**
 * What the checker reports (checker.ts judges, check-summary.ts prints, report-html.ts draws): the anomaly kinds,
 * the counts per job and per replicas setting, the timeline. Types only, and the empty counts.
 */
import type { HistoryOp } from './history.ts';

export const ANOMALY_KINDS = ['wrong', 'stale', 'null', 'lost', 'counters', 'malformed'] as const;

/**
 * wrong: a read returned something no write could have produced (never written, written only by a failed put,
 * from a put invoked after the read completed; on a counter, a non-number or a total outside what the
 * increments allow). stale: an old value after an acknowledged overwrite or delete had completed. null: absent
 * after an acknowledged put, with no delete that could be the latest. lost: a final read-back that is stale or
 * null. counters: a counter whose totals contradict its increments. malformed: an op the checker cannot judge
 * (a driver bug); it is left out of every other count.
 */
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

export type ReplicasLabel = '1' | '2' | '3';

export interface Anomaly {
  kind: AnomalyKind;
  job: string;
  replicas: number;
  key: string;
  /** When the anomalous answer arrived (the op's completeMs): where the timeline marks it. */
  atMs: number;
  message: string;
  /** The op judged: the read, or the incr whose total is off. */
  op: HistoryOp;
  /** The write whose value the read returned, when there is one. */
  write?: HistoryOp;
  /**
   * An acknowledged write the read should have reflected and did not: for a stale value, the write that
   * definitely superseded it; for null, the latest acknowledged put before the read.
   */
  expected?: HistoryOp;
  /** counters: the other incr with the same total. */
  other?: HistoryOp;
}

/** Counts for one job, or summed over the jobs with one replicas setting. Final reads are not in ops. */
export interface CheckCounts {
  jobs: number;
  keys: number;
  counterKeys: number;
  ops: number;
  ok: number;
  /** ok / ops; null when there were no ops. */
  availability: number | null;
  /** Non-ok ops by error code ('none' when the driver recorded no code). */
  errors: Record<string, number>;
  /** Non-ok ops with code UNAVAILABLE: with replicas 1, what the keys of a dead node must give. */
  unavailable: number;
  /** Non-ok ops with any other code (or none). */
  otherFailures: number;
  finalReads: number;
  /** Final reads that did not answer (not ok): keys that could not be verified. */
  finalUnread: number;
  lost: number;
  null: number;
  stale: number;
  wrong: number;
  countersOff: number;
}

export interface JobCheck extends CheckCounts {
  job: string;
  replicas: number;
}

/** Ops and anomalies per time bucket, so a report can draw the run without the history. */
export interface CheckTimeline {
  bucketMs: number;
  buckets: number;
  /** Non-final ops by the bucket of their completeMs. */
  byReplicas: Record<ReplicasLabel, { ok: number[]; failed: number[] }>;
  anomalies: Record<AnomalyKind, number[]>;
}

export interface CheckReport {
  summary: {
    /** Every op in the history, final reads and malformed ones included. */
    ops: number;
    finalReads: number;
    faults: number;
    faultsByKind: Record<string, number>;
    malformed: number;
    /** Total of lost, null, stale, wrong and counters off: the run passes iff this is 0 (and malformed is 0). */
    anomalies: number;
    byReplicas: Record<ReplicasLabel, CheckCounts>;
  };
  jobs: Record<string, JobCheck>;
  /** The earliest `examplesCap` of each kind (counts are in the summaries). */
  anomalies: Record<AnomalyKind, Anomaly[]>;
  examplesCap: number;
  timeline: CheckTimeline;
}

export interface CheckOptions {
  /** Examples kept per anomaly kind (default 50). */
  examples?: number;
  /** Timeline bucket (default: 1 s, coarser so that a run has at most 3,600 buckets). */
  bucketMs?: number;
}

export const REPLICAS_LABELS: readonly ReplicasLabel[] = ['1', '2', '3'];

export function emptyCounts(): CheckCounts {
  return {
    jobs: 0,
    keys: 0,
    counterKeys: 0,
    ops: 0,
    ok: 0,
    availability: null,
    errors: {},
    unavailable: 0,
    otherFailures: 0,
    finalReads: 0,
    finalUnread: 0,
    lost: 0,
    null: 0,
    stale: 0,
    wrong: 0,
    countersOff: 0,
  };
}
