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
 * Complexity: one pass reads every op into typed columns and groups it by (job, key), a counting sort lays
 * the groups out; then per key with n ops, sorts of its writes (O(n log n)) and a binary search per read over
 * the acknowledged writes sorted by completeMs with the prefix maximum of their invokeMs — "the latest invoke
 * among writes completed before t" is what decides whether a write is definitely superseded. Counters use
 * prefix sums the same way. O(N log N) time overall however the ops spread over keys (a hot key with a million
 * ops costs the same as a million keys), O(N) memory. About a second for a million ops (see README.md).
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

// Op kinds and outcomes as small integers, so that the per-op columns are typed arrays.
const PUT = 0;
const DELETE = 1;
const GET = 2;
const WAIT = 3;
const INCR = 4;
const OK = 0;
const FAIL = 1;
const INFO = 2;

function kindCode(kind: unknown): number {
  switch (kind) {
    case 'put':
      return PUT;
    case 'delete':
      return DELETE;
    case 'get':
      return GET;
    case 'wait':
      return WAIT;
    case 'incr':
      return INCR;
    default:
      return -1;
  }
}

function outcomeCode(outcome: unknown): number {
  return outcome === 'ok' ? OK : outcome === 'fail' ? FAIL : outcome === 'info' ? INFO : -1;
}

/** One op's fields, read from the op object exactly once. */
interface OpFields {
  job: unknown;
  key: unknown;
  replicas: unknown;
  kind: number;
  outcome: number;
  invokeMs: number;
  completeMs: number;
  final: boolean;
  /** put: the value; an ok read or incr: its result. */
  datum: string | number | null | undefined;
  amount: number;
}

function readOp(op: HistoryOp): OpFields {
  const kind = kindCode(op.op);
  const outcome = outcomeCode(op.outcome);
  return {
    job: op.job,
    key: op.key,
    replicas: op.replicas,
    kind,
    outcome,
    invokeMs: op.invokeMs,
    completeMs: op.completeMs,
    final: op.final === true,
    datum: kind === PUT ? op.value : outcome === OK && kind !== DELETE ? op.result : undefined,
    amount: kind === INCR ? (op.amount ?? 1) : 0,
  };
}

/** Why an op cannot be judged, or undefined when it can. */
function malformation(op: HistoryOp, f: OpFields, jobReplicas: number | undefined, horizonMs: number): string | undefined {
  if (typeof f.job !== 'string' || typeof f.key !== 'string') return 'job and key must be strings';
  if (f.replicas !== 1 && f.replicas !== 2 && f.replicas !== 3) return `replicas ${String(f.replicas)} is not 1, 2 or 3`;
  if (jobReplicas !== undefined && f.replicas !== jobReplicas) return `job ${f.job} has replicas ${jobReplicas} elsewhere`;
  if (typeof f.invokeMs !== 'number' || typeof f.completeMs !== 'number' || !Number.isFinite(f.invokeMs) || !Number.isFinite(f.completeMs)) {
    return 'times must be finite numbers';
  }
  if (f.completeMs < f.invokeMs) return 'completeMs before invokeMs';
  // A wall-clock time (Date.now()) where ms since the start belong would also make a timeline of 10^12 ms.
  if (f.invokeMs < 0 || f.completeMs > horizonMs) return `times outside the run (0 to durationMs + 1 h): not ms since its start?`;
  if (f.outcome < 0) return `outcome ${String(op.outcome)}`;
  if (f.kind < 0) return `unknown op ${String(op.op)}`;
  if (f.kind === PUT && typeof f.datum !== 'string') return 'put without a string value';
  if (f.kind === INCR && !Number.isFinite(f.amount)) return 'incr amount must be a finite number';
  if ((f.kind === GET || f.kind === WAIT) && f.outcome === OK && f.datum === undefined) return `ok ${String(op.op)} without a result`;
  if (f.final && f.kind !== GET && f.kind !== WAIT) return 'only reads can be final';
  return undefined;
}

/**
 * The history read once into columns. Every later step reads these typed arrays, and the op objects only to
 * report an anomaly: a history's objects may come in any shape (parsed JSON, spread literals, fields added
 * later), and V8 reads a field of mixed-shape objects many times slower than an array element.
 */
class Columns {
  readonly invoke: Float64Array;
  readonly complete: Float64Array;
  readonly kind: Uint8Array;
  readonly outcome: Uint8Array;
  readonly final: Uint8Array;
  readonly amount: Float64Array;
  readonly datum: (string | number | null | undefined)[];
  readonly byComplete = (a: number, b: number): number => this.complete[a]! - this.complete[b]!;
  readonly byInvoke = (a: number, b: number): number => this.invoke[a]! - this.invoke[b]!;

  constructor(readonly ops: readonly HistoryOp[]) {
    const n = ops.length;
    this.invoke = new Float64Array(n);
    this.complete = new Float64Array(n);
    this.kind = new Uint8Array(n);
    this.outcome = new Uint8Array(n);
    this.final = new Uint8Array(n);
    this.amount = new Float64Array(n);
    this.datum = new Array<string | number | null | undefined>(n);
  }

  set(i: number, f: OpFields): void {
    this.invoke[i] = f.invokeMs;
    this.complete[i] = f.completeMs;
    this.kind[i] = f.kind;
    this.outcome[i] = f.outcome;
    this.final[i] = f.final ? 1 : 0;
    this.amount[i] = f.amount;
    this.datum[i] = f.datum;
  }
}

/** One (job, key): its ops are members[start, start + size) of the grouped order, in history order. */
interface KeyGroup {
  key: string;
  start: number;
  size: number;
}

interface JobState {
  check: JobCheck;
  keys: Map<string, KeyGroup>;
}

/** Buffers reused from key to key, sized for the largest: no allocation per key but a Map of its values. */
class Scratch {
  readonly ints: [Int32Array, Int32Array, Int32Array, Int32Array];
  readonly floats: [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];

  constructor(size: number) {
    const i = (): Int32Array => new Int32Array(size + 1);
    const f = (): Float64Array => new Float64Array(size + 1);
    this.ints = [i(), i(), i(), i()];
    this.floats = [f(), f(), f(), f(), f(), f(), f()];
  }
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

/** Number of the first `length` entries of an ascending array that are < t (strict) or ≤ t (inclusive). */
function countBelow(sorted: Float64Array, length: number, t: number, inclusive: boolean): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (inclusive ? sorted[mid]! <= t : sorted[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function anomaly(kind: AnomalyKind, job: JobCheck, key: string, op: HistoryOp, message: string, extra: Partial<Anomaly> = {}): Anomaly {
  return { kind, job: job.job, replicas: job.replicas, key, atMs: op.completeMs, message, op, ...extra };
}

/** The checks on a register key (puts, deletes, reads); see the definitions at the top. */
function checkRegister(c: Columns, members: Int32Array, group: KeyGroup, job: JobCheck, s: Scratch, findings: Findings): void {
  const [acked, deletes, reads, maxInvokeAt] = s.ints;
  const [ackedComplete, maxInvoke, deleteInvoke, deleteMaxComplete] = s.floats;
  let nAcked = 0;
  let nDeletes = 0;
  let nReads = 0;
  let infoDeleteInvoke = Infinity;
  // Value → the put that wrote it; values are unique per key, so a second put of one is rare (samePuts).
  const puts = new Map<string, number>();
  let samePuts: Map<string, number[]> | undefined;
  for (let m = group.start; m < group.start + group.size; m++) {
    const i = members[m]!;
    const kind = c.kind[i]!;
    const outcome = c.outcome[i]!;
    if (kind === PUT) {
      const value = c.datum[i] as string;
      const seen = puts.get(value);
      if (seen === undefined) puts.set(value, i);
      else {
        samePuts ??= new Map();
        const list = samePuts.get(value);
        if (list) list.push(i);
        else samePuts.set(value, [seen, i]);
      }
      if (outcome === OK) acked[nAcked++] = i;
    } else if (kind === DELETE) {
      if (outcome === OK) {
        acked[nAcked++] = i;
        deletes[nDeletes++] = i;
      } else if (outcome === INFO) infoDeleteInvoke = Math.min(infoDeleteInvoke, c.invoke[i]!);
    } else if (outcome === OK) reads[nReads++] = i;
  }
  if (nReads === 0) return;

  // Acknowledged writes by completion, with the latest invoke among the first k: a write W is definitely
  // superseded before time t iff that maximum over the writes completed before t exceeds W.completeMs.
  acked.subarray(0, nAcked).sort(c.byComplete);
  for (let k = 0; k < nAcked; k++) {
    const w = acked[k]!;
    ackedComplete[k] = c.complete[w]!;
    if (k > 0 && maxInvoke[k - 1]! >= c.invoke[w]!) {
      maxInvoke[k] = maxInvoke[k - 1]!;
      maxInvokeAt[k] = maxInvokeAt[k - 1]!;
    } else {
      maxInvoke[k] = c.invoke[w]!;
      maxInvokeAt[k] = k;
    }
  }
  // Acknowledged deletes by invoke, with the latest completion among the first k: is any delete invoked
  // before the read completed also not superseded?
  deletes.subarray(0, nDeletes).sort(c.byInvoke);
  for (let k = 0; k < nDeletes; k++) {
    const d = deletes[k]!;
    deleteInvoke[k] = c.invoke[d]!;
    deleteMaxComplete[k] = k > 0 ? Math.max(deleteMaxComplete[k - 1]!, c.complete[d]!) : c.complete[d]!;
  }

  for (let r = 0; r < nReads; r++) {
    const read = reads[r]!;
    const readInvoke = c.invoke[read]!;
    const readComplete = c.complete[read]!;
    const before = countBelow(ackedComplete, nAcked, readInvoke, false);
    const supersededBelow = before === 0 ? -Infinity : maxInvoke[before - 1]!;
    const result = c.datum[read];
    if (result === null) {
      if (before === 0 || infoDeleteInvoke <= readComplete) continue;
      const k = countBelow(deleteInvoke, nDeletes, readComplete, true);
      if (k > 0 && deleteMaxComplete[k - 1]! >= supersededBelow) continue;
      const op = c.ops[read]!;
      const latest = c.ops[acked[before - 1]!]!;
      findings.add(
        anomaly(op.final ? 'lost' : 'null', job, group.key, op, `${op.op} returned null after ${describeOp(latest)}, with no delete that could be the latest`, {
          expected: latest,
        }),
        job,
      );
      continue;
    }
    const value = typeof result === 'string' ? result : String(result);
    const first = puts.get(value);
    const all = first === undefined ? undefined : samePuts?.get(value);
    const count = first === undefined ? 0 : all ? all.length : 1;
    let written = -1;
    let past = -1;
    let admissible = false;
    for (let k = 0; k < count; k++) {
      const p = all ? all[k]! : first!;
      if (c.outcome[p] === FAIL) continue;
      written = p;
      if (c.invoke[p]! > readComplete) continue;
      past = p;
      if (c.outcome[p] === INFO || c.complete[p]! >= supersededBelow) {
        admissible = true;
        break;
      }
    }
    if (admissible) continue;
    const op = c.ops[read]!;
    const final = op.final ? ' (final read)' : '';
    if (written < 0) {
      const failed = first === undefined ? undefined : c.ops[first]!;
      const why = failed ? `written only by a failed put (${describeOp(failed)})` : 'never written';
      findings.add(anomaly('wrong', job, group.key, op, `${op.op} returned ${JSON.stringify(value)}, ${why}${final}`, failed ? { write: failed } : {}), job);
    } else if (past < 0) {
      const future = c.ops[written]!;
      findings.add(anomaly('wrong', job, group.key, op, `${op.op} returned ${JSON.stringify(value)} from the future: ${describeOp(future)}${final}`, { write: future }), job);
    } else {
      const stale = c.ops[past]!;
      const superseding = c.ops[acked[maxInvokeAt[before - 1]!]!]!;
      findings.add(
        anomaly(op.final ? 'lost' : 'stale', job, group.key, op, `${op.op} returned ${JSON.stringify(value)} of ${describeOp(stale)}, superseded by ${describeOp(superseding)} before the read began`, {
          write: stale,
          expected: superseding,
        }),
        job,
      );
    }
  }
}

/** A counter's total as read or returned: a finite number, or undefined for anything else. */
function total(result: string | number | null | undefined): number | undefined {
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
function checkCounter(c: Columns, members: Int32Array, group: KeyGroup, job: JobCheck, s: Scratch, findings: Findings): void {
  const [okIncrs, maybeIncrs, reads] = s.ints;
  const [okComplete, okSum, okPos, okNeg, maybeInvoke, maybePos, maybeNeg] = s.floats;
  let nOk = 0;
  let nMaybe = 0;
  let nReads = 0;
  for (let m = group.start; m < group.start + group.size; m++) {
    const i = members[m]!;
    const outcome = c.outcome[i]!;
    if (c.kind[i] === INCR) {
      if (outcome === OK) okIncrs[nOk++] = i;
      if (outcome !== FAIL) maybeIncrs[nMaybe++] = i;
    } else if (outcome === OK) reads[nReads++] = i;
  }
  okIncrs.subarray(0, nOk).sort(c.byComplete);
  okSum[0] = okPos[0] = okNeg[0] = 0;
  for (let k = 0; k < nOk; k++) {
    const i = okIncrs[k]!;
    const a = c.amount[i]!;
    okComplete[k] = c.complete[i]!;
    okSum[k + 1] = okSum[k]! + a;
    okPos[k + 1] = okPos[k]! + Math.max(0, a);
    okNeg[k + 1] = okNeg[k]! + Math.min(0, a);
  }
  maybeIncrs.subarray(0, nMaybe).sort(c.byInvoke);
  maybePos[0] = maybeNeg[0] = 0;
  let allPositive = true;
  for (let k = 0; k < nMaybe; k++) {
    const i = maybeIncrs[k]!;
    const a = c.amount[i]!;
    if (!(a > 0)) allPositive = false;
    maybeInvoke[k] = c.invoke[i]!;
    maybePos[k + 1] = maybePos[k]! + Math.max(0, a);
    maybeNeg[k + 1] = maybeNeg[k]! + Math.min(0, a);
  }
  /** [lowest, highest] total an observation of op i may see, and how many acked incrs completed before it. */
  const bounds = (i: number, self: number | undefined): [number, number, number] => {
    const d = countBelow(okComplete, nOk, c.invoke[i]!, false);
    const p = countBelow(maybeInvoke, nMaybe, c.complete[i]!, true);
    const definite = okSum[d]!;
    let lo = definite + maybeNeg[p]! - okNeg[d]!;
    let hi = definite + maybePos[p]! - okPos[d]!;
    if (self !== undefined) {
      lo += Math.max(0, self);
      hi += Math.min(0, self);
    }
    return [lo, hi, d];
  };
  const okTotal = okSum[nOk]!;
  const add = (kind: AnomalyKind, i: number, message: string, extra: Partial<Anomaly> = {}): void =>
    findings.add(anomaly(kind, job, group.key, c.ops[i]!, message, extra), job);

  const totalValue = new Float64Array(nOk);
  const totalOp = new Int32Array(nOk);
  let nTotals = 0;
  for (let k = 0; k < nOk; k++) {
    const i = okIncrs[k]!;
    const value = total(c.datum[i]);
    if (value === undefined) {
      add('counters', i, `incr returned ${JSON.stringify(c.datum[i] ?? null)}, not a number`);
      continue;
    }
    totalValue[nTotals] = value;
    totalOp[nTotals++] = i;
    const [lo, hi] = bounds(i, c.amount[i]!);
    if (value < lo || value > hi) add('counters', i, `incr returned ${value}, outside [${lo}, ${hi}] allowed by the increments around it`);
  }
  let largest = -1;
  for (let k = 0; k < nTotals; k++) if (largest < 0 || totalValue[k]! > totalValue[largest]!) largest = k;
  if (allPositive && nTotals > 1) {
    const order = Int32Array.from({ length: nTotals }, (_, k) => k).sort((a, b) => totalValue[a]! - totalValue[b]!);
    for (let k = 1; k < nTotals; k++) {
      const [a, b] = [order[k - 1]!, order[k]!];
      if (totalValue[a] === totalValue[b]) {
        const [x, y] = [c.ops[totalOp[a]!]!, c.ops[totalOp[b]!]!];
        add('counters', totalOp[b]!, `two incrs returned the same total ${totalValue[b]}: ${describeOp(x)} and ${describeOp(y)}`, { other: x });
      }
    }
  }

  let finalRead = false;
  for (let r = 0; r < nReads; r++) {
    const i = reads[r]!;
    const final = c.final[i] === 1;
    if (final) finalRead = true;
    const [lo, hi, definite] = bounds(i, undefined);
    const result = c.datum[i];
    const op = c.ops[i]!;
    if (result === null) {
      if (definite === 0) continue;
      if (final) add('counters', i, `final value null, acknowledged increments sum to ${okTotal}`);
      else add('null', i, `${op.op} returned null after ${definite} acknowledged incrs (sum ${okSum[definite]})`, { expected: c.ops[okIncrs[definite - 1]!]! });
      continue;
    }
    const value = total(result);
    if (value !== undefined && value >= lo && value <= hi) continue;
    const what = value === undefined ? 'not a number' : `outside [${lo}, ${hi}] allowed by the increments`;
    if (final) add('counters', i, `final value ${JSON.stringify(result)} ${what} (acknowledged sum ${okTotal})`);
    else add('wrong', i, `${op.op} of a counter returned ${JSON.stringify(result)}, ${what}`);
  }
  if (!finalRead && allPositive && largest >= 0) {
    // No final read answered: the largest acknowledged total stands in for the final value. The last acked
    // incr to land saw every acked amount, so it is at least their sum; and nothing beyond acked + info.
    const hi = maybePos[nMaybe]!;
    const value = totalValue[largest]!;
    if (value < okTotal || value > hi) {
      add('counters', totalOp[largest]!, `largest incr total ${value} outside [${okTotal}, ${hi}] (acknowledged sum, plus info amounts)`);
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
  /** Nothing happens later than this; the slack is for final reads after a run that measured only its faults. */
  const horizonMs = (Number.isFinite(history.durationMs) ? history.durationMs : 0) + 3_600_000;
  const jobs = new Map<string, JobState>();
  const series = {} as Record<ReplicasLabel, { ok: number[]; failed: number[] }>;
  for (const r of REPLICAS_LABELS) series[r] = { ok: [], failed: [] };
  let finalReads = 0;

  // Pass 1: read every op once into the columns, count availability, and give each op its (job, key) group.
  const ops = history.ops;
  const columns = new Columns(ops);
  const groupOf: (KeyGroup | undefined)[] = new Array<KeyGroup | undefined>(ops.length);
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const f = readOp(op);
    let state = typeof f.job === 'string' ? jobs.get(f.job) : undefined;
    const bad = malformation(op, f, state?.check.replicas, horizonMs);
    if (bad !== undefined) {
      const atMs = typeof f.completeMs === 'number' && Number.isFinite(f.completeMs) ? f.completeMs : 0;
      findings.add({ kind: 'malformed', job: String(f.job), replicas: Number(f.replicas), key: String(f.key), atMs, message: bad, op }, undefined);
      continue;
    }
    const job = f.job as string;
    const key = f.key as string;
    const replicas = f.replicas as 1 | 2 | 3;
    if (state === undefined) {
      state = { check: { job, ...emptyCounts(), replicas, jobs: 1 }, keys: new Map() };
      jobs.set(job, state);
    }
    let group = state.keys.get(key);
    if (group === undefined) {
      group = { key, start: 0, size: 0 };
      state.keys.set(key, group);
    }
    group.size++;
    groupOf[i] = group;
    columns.set(i, f);
    const check = state.check;
    if (f.final) {
      finalReads++;
      check.finalReads++;
      if (f.outcome !== OK) check.finalUnread++;
      continue;
    }
    check.ops++;
    const bucket = bucketOf(f.completeMs, bucketMs);
    const line = series[String(replicas) as ReplicasLabel];
    if (f.outcome === OK) {
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

  // Pass 2: lay the ops out group after group (a counting sort, history order kept within a group).
  let placed = 0;
  let largest = 0;
  for (const { keys } of jobs.values()) {
    for (const group of keys.values()) {
      group.start = placed;
      placed += group.size;
      largest = Math.max(largest, group.size);
      group.size = 0;
    }
  }
  const members = new Int32Array(placed);
  for (let i = 0; i < ops.length; i++) {
    const group = groupOf[i];
    if (group !== undefined) members[group.start + group.size++] = i;
  }

  // Pass 3: judge each key.
  const scratch = new Scratch(largest);
  for (const { check, keys } of jobs.values()) {
    check.keys = keys.size;
    for (const group of keys.values()) {
      let incrs = -1;
      let writes = false;
      for (let m = group.start; m < group.start + group.size; m++) {
        const kind = columns.kind[members[m]!];
        if (kind === INCR) incrs = incrs < 0 ? members[m]! : incrs;
        else if (kind === PUT || kind === DELETE) writes = true;
      }
      if (incrs >= 0 && writes) {
        findings.add(anomaly('malformed', check, group.key, ops[incrs]!, 'key mixes incr with put/delete: neither a counter nor a register, not checked'), check);
      } else if (incrs >= 0) {
        check.counterKeys++;
        checkCounter(columns, members, group, check, scratch, findings);
      } else checkRegister(columns, members, group, check, scratch, findings);
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
  const lastFault = history.faults.reduce((m: number, f: FaultEvent) => Math.max(m, Number.isFinite(f.endMs) && f.endMs <= horizonMs ? f.endMs : 0), 0);
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
