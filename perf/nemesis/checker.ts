/**
 * The judge of a nemesis run: reads a History (history.ts) and reports what no correct Satchel could have
 * answered. It knows nothing of clients, servers or placement — only operations, their real-time windows and
 * their outcomes — so a bug in the code under test cannot bend its verdict. It imports nothing but the types.
 *
 * Every key is its own object: a register (put/delete/get/wait) or a counter (incr/get/wait). The checks are
 * the real-time part of linearizability, per key, made cheap by a fact of this workload: every value written
 * to a key is unique, so a read names the write it saw, and it is enough to ask whether that write could still
 * have been the latest when the read happened. (No search over orders, as Knossos or Porcupine do in general:
 * this is sound for what it reports — every anomaly is a real violation — and catches stale, lost and
 * invented values, which are the failures a replicated store has. It does not catch, say, two reads that each
 * are fine but disagree on the order of two concurrent writes.)
 *
 * Definitions, for a read R (an ok get or wait) of a register key:
 * - Writes are puts and deletes whose outcome is `ok` (acknowledged) or `info` (may have happened, at any time
 *   after their invoke); `fail` writes never happened and are never a candidate.
 * - An acknowledged write W2 *definitely supersedes* W before R if W.completeMs < W2.invokeMs and
 *   W2.completeMs < R.invokeMs. `info` writes never definitely supersede anything, and are never definitely
 *   superseded (they may take effect arbitrarily late).
 * - The *candidates* (possible latest writes) for R are the writes W with W.invokeMs ≤ R.completeMs that are
 *   not definitely superseded before R; the initial absent state is a candidate iff no acknowledged write
 *   completed before R.invokeMs.
 * - null is admissible iff a delete or the initial state is a candidate; a value v is admissible iff its put
 *   is a candidate.
 * Ties count as concurrent (≤ where the definitions order two events, strict < where one must be definitely
 * before the other), so a coarse clock can only hide anomalies, never invent them.
 *
 * Complexity: one pass to group ops by (job, key); then per key with n ops, sorts of its writes (O(n log n))
 * and a binary search per read over the acknowledged writes sorted by completeMs with the prefix maximum of
 * their invokeMs — "the latest invoke among writes completed before t" is what decides whether a write is
 * definitely superseded. Counters use prefix sums the same way. O(N log N) overall, O(N) memory.
 */
import type { FaultEvent, History, HistoryOp } from './history.ts';

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

const REPLICAS_LABELS: readonly ReplicasLabel[] = ['1', '2', '3'];

function emptyCounts(): CheckCounts {
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

interface KeyGroup {
  key: string;
  ops: HistoryOp[];
}

interface JobState {
  check: JobCheck;
  keys: Map<string, KeyGroup>;
}

/** Where findings go: counts per job, the timeline, and a bounded set of the earliest examples. */
class Findings {
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

function bucketOf(ms: number, bucketMs: number): number {
  return ms > 0 ? Math.floor(ms / bucketMs) : 0;
}

function bump(series: number[], index: number): void {
  while (series.length <= index) series.push(0);
  series[index]!++;
}

/** Why an op cannot be judged, or undefined when it can. */
function malformation(op: HistoryOp, jobReplicas: number | undefined): string | undefined {
  if (typeof op.job !== 'string' || typeof op.key !== 'string') return 'job and key must be strings';
  if (op.replicas !== 1 && op.replicas !== 2 && op.replicas !== 3) return `replicas ${String(op.replicas)} is not 1, 2 or 3`;
  if (jobReplicas !== undefined && op.replicas !== jobReplicas) return `job ${op.job} has replicas ${jobReplicas} elsewhere`;
  if (!Number.isFinite(op.invokeMs) || !Number.isFinite(op.completeMs)) return 'times must be finite numbers';
  if (op.completeMs < op.invokeMs) return 'completeMs before invokeMs';
  if (op.outcome !== 'ok' && op.outcome !== 'fail' && op.outcome !== 'info') return `outcome ${String(op.outcome)}`;
  switch (op.op) {
    case 'put':
      if (typeof op.value !== 'string') return 'put without a string value';
      break;
    case 'incr':
      if (op.amount !== undefined && !Number.isFinite(op.amount)) return 'incr amount must be a finite number';
      break;
    case 'get':
    case 'wait':
      if (op.outcome === 'ok' && op.result === undefined) return `ok ${op.op} without a result`;
      break;
    case 'delete':
      break;
    default:
      return `unknown op ${String(op.op)}`;
  }
  if (op.final && op.op !== 'get' && op.op !== 'wait') return 'only reads can be final';
  return undefined;
}

/** Short text for an op in messages: `put "v1" ok [10.0–12.5 ms] by p3`. */
export function describeOp(op: HistoryOp): string {
  let what: string = op.op;
  if (op.op === 'put') what += ` ${JSON.stringify(op.value)}`;
  if (op.op === 'incr') what += ` +${op.amount ?? 1}`;
  if ((op.op === 'get' || op.op === 'wait' || op.op === 'incr') && op.outcome === 'ok') {
    what += ` → ${op.result === null ? 'null' : JSON.stringify(op.result)}`;
  }
  const outcome = op.outcome === 'ok' ? 'ok' : `${op.outcome}${op.errorCode ? ` ${op.errorCode}` : ''}`;
  return `${what} ${outcome} [${op.invokeMs.toFixed(1)}–${op.completeMs.toFixed(1)} ms]${op.final ? ' final' : ''} by ${op.process}`;
}

/** Number of leading entries of an ascending array that are < t (strict) or ≤ t. */
function countBelow(sorted: Float64Array, t: number, inclusive: boolean): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (inclusive ? sorted[mid]! <= t : sorted[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function byComplete(a: HistoryOp, b: HistoryOp): number {
  return a.completeMs - b.completeMs;
}

function byInvoke(a: HistoryOp, b: HistoryOp): number {
  return a.invokeMs - b.invokeMs;
}

function anomaly(kind: AnomalyKind, job: JobCheck, key: string, op: HistoryOp, message: string, extra: Partial<Anomaly> = {}): Anomaly {
  return { kind, job: job.job, replicas: job.replicas, key, atMs: op.completeMs, message, op, ...extra };
}

/** The checks on a register key (puts, deletes, reads); see the definitions at the top. */
function checkRegister(group: KeyGroup, job: JobCheck, findings: Findings): void {
  const acked: HistoryOp[] = [];
  const okDeletes: HistoryOp[] = [];
  let infoDeleteInvoke = Infinity;
  const puts = new Map<string, HistoryOp | HistoryOp[]>();
  const reads: HistoryOp[] = [];
  for (const op of group.ops) {
    if (op.op === 'put') {
      const value = op.value!;
      const seen = puts.get(value);
      if (seen === undefined) puts.set(value, op);
      else if (Array.isArray(seen)) seen.push(op);
      else puts.set(value, [seen, op]);
      if (op.outcome === 'ok') acked.push(op);
    } else if (op.op === 'delete') {
      if (op.outcome === 'ok') {
        acked.push(op);
        okDeletes.push(op);
      } else if (op.outcome === 'info') infoDeleteInvoke = Math.min(infoDeleteInvoke, op.invokeMs);
    } else if (op.outcome === 'ok') reads.push(op);
  }
  if (reads.length === 0) return;

  // Acknowledged writes by completion, with the latest invoke among the first i: a write W is definitely
  // superseded before time t iff that maximum over the writes completed before t exceeds W.completeMs.
  acked.sort(byComplete);
  const ackedComplete = new Float64Array(acked.length);
  const maxInvoke = new Float64Array(acked.length);
  const maxInvokeAt = new Int32Array(acked.length);
  for (let i = 0; i < acked.length; i++) {
    const w = acked[i]!;
    ackedComplete[i] = w.completeMs;
    if (i > 0 && maxInvoke[i - 1]! >= w.invokeMs) {
      maxInvoke[i] = maxInvoke[i - 1]!;
      maxInvokeAt[i] = maxInvokeAt[i - 1]!;
    } else {
      maxInvoke[i] = w.invokeMs;
      maxInvokeAt[i] = i;
    }
  }
  // Acknowledged deletes by invoke, with the latest completion among the first i: is any delete invoked
  // before the read completed also not superseded?
  okDeletes.sort(byInvoke);
  const deleteInvoke = new Float64Array(okDeletes.length);
  const deleteMaxComplete = new Float64Array(okDeletes.length);
  for (let i = 0; i < okDeletes.length; i++) {
    const d = okDeletes[i]!;
    deleteInvoke[i] = d.invokeMs;
    deleteMaxComplete[i] = i > 0 ? Math.max(deleteMaxComplete[i - 1]!, d.completeMs) : d.completeMs;
  }

  for (const read of reads) {
    const before = countBelow(ackedComplete, read.invokeMs, false);
    const supersededBelow = before === 0 ? -Infinity : maxInvoke[before - 1]!;
    if (read.result === null) {
      if (before === 0 || infoDeleteInvoke <= read.completeMs) continue;
      const deletes = countBelow(deleteInvoke, read.completeMs, true);
      if (deletes > 0 && deleteMaxComplete[deletes - 1]! >= supersededBelow) continue;
      const latest = acked[before - 1]!;
      const kind = read.final ? 'lost' : 'null';
      findings.add(
        anomaly(kind, job, group.key, read, `${read.op} returned null after ${describeOp(latest)}, with no delete that could be the latest`, {
          expected: latest,
        }),
        job,
      );
      continue;
    }
    const value = String(read.result);
    const seen = puts.get(value);
    const candidates = seen === undefined ? [] : Array.isArray(seen) ? seen : [seen];
    let written: HistoryOp | undefined;
    let past: HistoryOp | undefined;
    let admissible = false;
    for (const put of candidates) {
      if (put.outcome === 'fail') continue;
      written = put;
      if (put.invokeMs > read.completeMs) continue;
      past = put;
      if (put.outcome === 'info' || put.completeMs >= supersededBelow) {
        admissible = true;
        break;
      }
    }
    if (admissible) continue;
    const final = read.final ? ' (final read)' : '';
    if (written === undefined) {
      const why = candidates.length > 0 ? `written only by a failed put (${describeOp(candidates[0]!)})` : 'never written';
      findings.add(anomaly('wrong', job, group.key, read, `${read.op} returned ${JSON.stringify(value)}, ${why}${final}`, candidates.length > 0 ? { write: candidates[0]! } : {}), job);
    } else if (past === undefined) {
      findings.add(
        anomaly('wrong', job, group.key, read, `${read.op} returned ${JSON.stringify(value)} from the future: ${describeOp(written)}${final}`, { write: written }),
        job,
      );
    } else {
      const superseding = acked[maxInvokeAt[before - 1]!]!;
      const kind = read.final ? 'lost' : 'stale';
      findings.add(
        anomaly(kind, job, group.key, read, `${read.op} returned ${JSON.stringify(value)} of ${describeOp(past)}, superseded by ${describeOp(superseding)} before the read began`, {
          write: past,
          expected: superseding,
        }),
        job,
      );
    }
  }
}

/** A counter's total as read or returned: a finite number, or undefined for anything else. */
function total(result: HistoryOp['result']): number | undefined {
  if (typeof result === 'number') return Number.isFinite(result) ? result : undefined;
  if (typeof result === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(result)) return Number(result);
  return undefined;
}

/**
 * The checks on a counter key (incrs and reads). For an observation in [invoke, complete], the total must lie
 * between the sum of the acknowledged increments completed before invoke (plus any negative amounts that may
 * have landed) and that sum plus every other positive amount invoked before complete — an incr's own amount
 * always counted. Ok totals must be distinct when every amount is positive. The final value (a final read, or
 * failing that the largest ok total) must lie between the acknowledged sum and that plus the `info` amounts.
 */
function checkCounter(group: KeyGroup, job: JobCheck, findings: Findings): void {
  const okIncrs: HistoryOp[] = [];
  const maybeIncrs: HistoryOp[] = [];
  const reads: HistoryOp[] = [];
  for (const op of group.ops) {
    if (op.op === 'incr') {
      if (op.outcome === 'ok') okIncrs.push(op);
      if (op.outcome !== 'fail') maybeIncrs.push(op);
    } else if (op.outcome === 'ok') reads.push(op);
  }
  const amount = (op: HistoryOp): number => op.amount ?? 1;
  okIncrs.sort(byComplete);
  const okComplete = new Float64Array(okIncrs.length);
  const okSum = new Float64Array(okIncrs.length + 1);
  const okPos = new Float64Array(okIncrs.length + 1);
  const okNeg = new Float64Array(okIncrs.length + 1);
  for (let i = 0; i < okIncrs.length; i++) {
    const a = amount(okIncrs[i]!);
    okComplete[i] = okIncrs[i]!.completeMs;
    okSum[i + 1] = okSum[i]! + a;
    okPos[i + 1] = okPos[i]! + Math.max(0, a);
    okNeg[i + 1] = okNeg[i]! + Math.min(0, a);
  }
  maybeIncrs.sort(byInvoke);
  const maybeInvoke = new Float64Array(maybeIncrs.length);
  const maybePos = new Float64Array(maybeIncrs.length + 1);
  const maybeNeg = new Float64Array(maybeIncrs.length + 1);
  let allPositive = true;
  for (let i = 0; i < maybeIncrs.length; i++) {
    const a = amount(maybeIncrs[i]!);
    if (!(a > 0)) allPositive = false;
    maybeInvoke[i] = maybeIncrs[i]!.invokeMs;
    maybePos[i + 1] = maybePos[i]! + Math.max(0, a);
    maybeNeg[i + 1] = maybeNeg[i]! + Math.min(0, a);
  }
  /** [lowest, highest] total an observation in [invoke, complete] may see; `self`: the incr observed. */
  const bounds = (op: HistoryOp, self: number | undefined): [number, number, number] => {
    const d = countBelow(okComplete, op.invokeMs, false);
    const p = countBelow(maybeInvoke, op.completeMs, true);
    const definite = okSum[d]!;
    let lo = definite + maybeNeg[p]! - okNeg[d]!;
    let hi = definite + maybePos[p]! - okPos[d]!;
    if (self !== undefined) {
      lo += Math.max(0, self);
      hi += Math.min(0, self);
    }
    return [lo, hi, d];
  };
  const okTotal = okSum[okIncrs.length]!;

  const totals: { value: number; op: HistoryOp }[] = [];
  for (const op of okIncrs) {
    const value = total(op.result);
    if (value === undefined) {
      findings.add(anomaly('counters', job, group.key, op, `incr returned ${JSON.stringify(op.result ?? null)}, not a number`), job);
      continue;
    }
    totals.push({ value, op });
    const [lo, hi] = bounds(op, amount(op));
    if (value < lo || value > hi) {
      findings.add(anomaly('counters', job, group.key, op, `incr returned ${value}, outside [${lo}, ${hi}] allowed by the increments around it`), job);
    }
  }
  if (allPositive) {
    totals.sort((a, b) => a.value - b.value);
    for (let i = 1; i < totals.length; i++) {
      if (totals[i]!.value === totals[i - 1]!.value) {
        const [a, b] = [totals[i - 1]!.op, totals[i]!.op];
        findings.add(anomaly('counters', job, group.key, b, `two incrs returned the same total ${totals[i]!.value}: ${describeOp(a)} and ${describeOp(b)}`, { other: a }), job);
      }
    }
  }

  let finalRead = false;
  for (const read of reads) {
    if (read.final) finalRead = true;
    const [lo, hi, definite] = bounds(read, undefined);
    if (read.result === null) {
      if (definite === 0) continue;
      const message = `${read.op} returned null after ${definite} acknowledged incrs (sum ${okSum[definite]})`;
      if (read.final) findings.add(anomaly('counters', job, group.key, read, `final value null, acknowledged increments sum to ${okTotal}`), job);
      else findings.add(anomaly('null', job, group.key, read, message, { expected: okIncrs[definite - 1]! }), job);
      continue;
    }
    const value = total(read.result);
    if (value !== undefined && value >= lo && value <= hi) continue;
    const what = value === undefined ? 'not a number' : `outside [${lo}, ${hi}] allowed by the increments`;
    if (read.final) {
      findings.add(anomaly('counters', job, group.key, read, `final value ${JSON.stringify(read.result)} ${what} (acknowledged sum ${okTotal})`), job);
    } else findings.add(anomaly('wrong', job, group.key, read, `${read.op} of a counter returned ${JSON.stringify(read.result)}, ${what}`), job);
  }
  if (!finalRead && allPositive && totals.length > 0) {
    // No final read answered: the largest acknowledged total stands in for the final value. The last acked
    // incr to land saw every acked amount, so it is at least their sum; and nothing beyond acked + info.
    const largest = totals[totals.length - 1]!;
    const hi = maybePos[maybeIncrs.length]!;
    if (largest.value < okTotal || largest.value > hi) {
      findings.add(anomaly('counters', job, group.key, largest.op, `largest incr total ${largest.value} outside [${okTotal}, ${hi}] (acknowledged sum, plus info amounts)`), job);
    }
  }
}

/**
 * Judges a history: per job (and summed per replicas setting) availability, error codes and anomalies, with the
 * earliest examples of each. Pure; O(N log N) in the number of ops.
 */
export function checkHistory(history: History, options: CheckOptions = {}): CheckReport {
  const cap = options.examples ?? 50;
  const bucketMs = options.bucketMs ?? Math.max(1000, Math.ceil(history.durationMs / 3600 / 1000) * 1000);
  const findings = new Findings(cap, bucketMs);
  const jobs = new Map<string, JobState>();
  const series = {} as Record<ReplicasLabel, { ok: number[]; failed: number[] }>;
  for (const r of REPLICAS_LABELS) series[r] = { ok: [], failed: [] };
  let finalReads = 0;

  for (const op of history.ops) {
    let state = typeof op.job === 'string' ? jobs.get(op.job) : undefined;
    const bad = malformation(op, state?.check.replicas);
    if (bad !== undefined) {
      findings.add(
        {
          kind: 'malformed',
          job: String(op.job),
          replicas: op.replicas,
          key: String(op.key),
          atMs: Number.isFinite(op.completeMs) ? op.completeMs : 0,
          message: bad,
          op,
        },
        undefined,
      );
      continue;
    }
    if (state === undefined) {
      state = { check: { job: op.job, ...emptyCounts(), replicas: op.replicas, jobs: 1 }, keys: new Map() };
      jobs.set(op.job, state);
    }
    const check = state.check;
    let group = state.keys.get(op.key);
    if (group === undefined) {
      group = { key: op.key, ops: [] };
      state.keys.set(op.key, group);
    }
    group.ops.push(op);
    if (op.final) {
      finalReads++;
      check.finalReads++;
      if (op.outcome !== 'ok') check.finalUnread++;
      continue;
    }
    check.ops++;
    const bucket = bucketOf(op.completeMs, bucketMs);
    const line = series[String(op.replicas) as ReplicasLabel];
    if (op.outcome === 'ok') {
      check.ok++;
      bump(line.ok, bucket);
    } else {
      bump(line.failed, bucket);
      const code = op.errorCode ?? 'none';
      check.errors[code] = (check.errors[code] ?? 0) + 1;
      if (code === 'UNAVAILABLE') check.unavailable++;
      else check.otherFailures++;
    }
  }

  for (const { check, keys } of jobs.values()) {
    check.keys = keys.size;
    for (const group of keys.values()) {
      let incrs = false;
      let writes = false;
      for (const op of group.ops) {
        if (op.op === 'incr') incrs = true;
        else if (op.op === 'put' || op.op === 'delete') writes = true;
      }
      if (incrs && writes) {
        const first = group.ops.find((op) => op.op === 'incr')!;
        findings.add(anomaly('malformed', check, group.key, first, 'key mixes incr with put/delete: neither a counter nor a register, not checked'), check);
      } else if (incrs) {
        check.counterKeys++;
        checkCounter(group, check, findings);
      } else checkRegister(group, check, findings);
    }
    check.availability = check.ops > 0 ? check.ok / check.ops : null;
  }

  const byReplicas = {} as Record<ReplicasLabel, CheckCounts>;
  for (const r of REPLICAS_LABELS) byReplicas[r] = emptyCounts();
  const jobReport: Record<string, JobCheck> = {};
  for (const [name, { check }] of [...jobs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    jobReport[name] = check;
    const sum = byReplicas[String(check.replicas) as ReplicasLabel];
    for (const field of ['jobs', 'keys', 'counterKeys', 'ops', 'ok', 'unavailable', 'otherFailures', 'finalReads', 'finalUnread', 'lost', 'null', 'stale', 'wrong', 'countersOff'] as const) {
      sum[field] += check[field];
    }
    for (const [code, n] of Object.entries(check.errors)) sum.errors[code] = (sum.errors[code] ?? 0) + n;
  }
  for (const r of REPLICAS_LABELS) {
    const sum = byReplicas[r];
    sum.availability = sum.ops > 0 ? sum.ok / sum.ops : null;
  }

  const faultsByKind: Record<string, number> = {};
  for (const fault of history.faults) faultsByKind[fault.kind] = (faultsByKind[fault.kind] ?? 0) + 1;

  // One length for every series, long enough for the run and for whatever completed after it.
  const lastFault = history.faults.reduce((m: number, f: FaultEvent) => Math.max(m, Number.isFinite(f.endMs) ? f.endMs : 0), 0);
  let buckets = Math.ceil(Math.max(history.durationMs, lastFault) / bucketMs);
  const allSeries = [...REPLICAS_LABELS.flatMap((r) => [series[r].ok, series[r].failed]), ...ANOMALY_KINDS.map((k) => findings.timeline[k])];
  for (const s of allSeries) buckets = Math.max(buckets, s.length);
  for (const s of allSeries) while (s.length < buckets) s.push(0);

  for (const kind of ANOMALY_KINDS) findings.trim(kind);
  let anomalies = 0;
  for (const r of REPLICAS_LABELS) {
    const s = byReplicas[r];
    anomalies += s.lost + s.null + s.stale + s.wrong + s.countersOff;
  }

  return {
    summary: {
      ops: history.ops.length,
      finalReads,
      faults: history.faults.length,
      faultsByKind,
      malformed: findings.malformed,
      anomalies,
      byReplicas,
    },
    jobs: jobReport,
    anomalies: findings.examples,
    examplesCap: cap,
    timeline: { bucketMs, buckets, byReplicas: series, anomalies: findings.timeline },
  };
}

function percent(share: number | null): string {
  return share === null ? '—' : `${(share * 100).toFixed(share < 0.9995 && share > 0.99 ? 2 : 1)}%`;
}

function topErrors(errors: Record<string, number>, n: number): string {
  const sorted = Object.entries(errors).sort(([, a], [, b]) => b - a);
  const shown = sorted.slice(0, n).map(([code, count]) => `${code} ${count}`);
  if (sorted.length > n) shown.push('…');
  return shown.join(', ') || '—';
}

/** A short table for the terminal: one row per replicas setting, then the faults and the verdict. */
export function formatCheckSummary(report: CheckReport): string {
  const head = ['replicas', 'ops', 'avail', 'lost', 'null', 'stale', 'wrong', 'ctr off', 'unavail', 'other fail', 'final unread', 'errors'];
  const rows = REPLICAS_LABELS.filter((r) => report.summary.byReplicas[r].jobs > 0).map((r) => {
    const s = report.summary.byReplicas[r];
    return [r, String(s.ops), percent(s.availability), String(s.lost), String(s.null), String(s.stale), String(s.wrong), String(s.countersOff), String(s.unavailable), String(s.otherFailures), `${s.finalUnread}/${s.finalReads}`, topErrors(s.errors, 3)];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [line(head), ...rows.map(line)];
  const faults = Object.entries(report.summary.faultsByKind).map(([kind, n]) => `${kind} ${n}`);
  out.push(`faults: ${report.summary.faults}${faults.length > 0 ? ` (${faults.join(', ')})` : ''}`);
  if (report.summary.malformed > 0) out.push(`malformed ops (not judged): ${report.summary.malformed}`);
  if (report.summary.anomalies === 0 && report.summary.malformed === 0) out.push(`verdict: no anomalies in ${report.summary.ops} ops`);
  else {
    out.push(`verdict: ${report.summary.anomalies} anomalies`);
    for (const kind of ANOMALY_KINDS) {
      for (const a of report.anomalies[kind].slice(0, 3)) out.push(`  ${kind} ${a.job}/${a.key} at ${(a.atMs / 1000).toFixed(2)} s: ${a.message}`);
    }
  }
  return out.join('\n');
}
