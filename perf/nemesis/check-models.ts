/**
 * The two models a key is judged against (definitions at the top of checker.ts): a register (puts, deletes,
 * reads) and a counter (incrs, reads). Each reads one key's ops from the columns, sorts and sums them in the
 * shared scratch buffers, and hands what it finds to Findings.
 */
import { type Columns, DELETE, FAIL, INCR, INFO, type KeyGroup, OK, PUT } from './check-columns.ts';
import { anomaly, describeOp, type Findings } from './check-findings.ts';
import type { Anomaly, AnomalyKind, JobCheck } from './check-types.ts';

/** Buffers reused from key to key, sized for the largest: no allocation per key but a Map of its values. */
export class Scratch {
  readonly ints: [Int32Array, Int32Array, Int32Array, Int32Array];
  readonly floats: [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];

  constructor(size: number) {
    const i = (): Int32Array => new Int32Array(size + 1);
    const f = (): Float64Array => new Float64Array(size + 1);
    this.ints = [i(), i(), i(), i()];
    this.floats = [f(), f(), f(), f(), f(), f(), f()];
  }
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

/** The checks on a register key (puts, deletes, reads); see the definitions at the top of checker.ts. */
export function checkRegister(c: Columns, members: Int32Array, group: KeyGroup, job: JobCheck, s: Scratch, findings: Findings): void {
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
        anomaly(
          op.final ? 'lost' : 'null',
          job,
          group.key,
          op,
          `${op.op} returned null after ${describeOp(latest)}, with no delete that could be the latest`,
          {
            expected: latest,
          },
        ),
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
      findings.add(
        anomaly('wrong', job, group.key, op, `${op.op} returned ${JSON.stringify(value)}, ${why}${final}`, failed ? { write: failed } : {}),
        job,
      );
    } else if (past < 0) {
      const future = c.ops[written]!;
      findings.add(
        anomaly('wrong', job, group.key, op, `${op.op} returned ${JSON.stringify(value)} from the future: ${describeOp(future)}${final}`, {
          write: future,
        }),
        job,
      );
    } else {
      const stale = c.ops[past]!;
      const superseding = c.ops[acked[maxInvokeAt[before - 1]!]!]!;
      findings.add(
        anomaly(
          op.final ? 'lost' : 'stale',
          job,
          group.key,
          op,
          `${op.op} returned ${JSON.stringify(value)} of ${describeOp(stale)}, superseded by ${describeOp(superseding)} before the read began`,
          {
            write: stale,
            expected: superseding,
          },
        ),
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
export function checkCounter(c: Columns, members: Int32Array, group: KeyGroup, job: JobCheck, s: Scratch, findings: Findings): void {
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
        add('counters', totalOp[b]!, `two incrs returned the same total ${totalValue[b]}: ${describeOp(x)} and ${describeOp(y)}`, {
          other: x,
        });
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
      else
        add('null', i, `${op.op} returned null after ${definite} acknowledged incrs (sum ${okSum[definite]})`, {
          expected: c.ops[okIncrs[definite - 1]!]!,
        });
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
