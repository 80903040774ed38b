/**
 * The judge of a nemesis run: reads a History (history.ts) and reports what no correct Satchel could have
 * answered. It knows nothing of clients, servers or placement — only operations, their real-time windows and
 * their outcomes — so a bug in the code under test cannot bend its verdict. It imports nothing of Satchel.
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
 *
 * This file runs the passes; check-columns.ts reads the history into columns, check-models.ts holds the register
 * and counter models, check-findings.ts keeps what they find, check-types.ts has the report's types and
 * check-summary.ts prints it for the terminal.
 */
import { Columns, DELETE, INCR, type KeyGroup, malformation, OK, PUT, readOp } from './check-columns.ts';
import { anomaly, bucketOf, bump, Findings } from './check-findings.ts';
import { checkCounter, checkRegister, Scratch } from './check-models.ts';
import {
  ANOMALY_KINDS,
  type CheckCounts,
  type CheckOptions,
  type CheckReport,
  emptyCounts,
  type JobCheck,
  REPLICAS_LABELS,
  type ReplicasLabel,
} from './check-types.ts';
import type { FaultEvent, History } from './history.ts';

export { describeOp } from './check-findings.ts';
export { formatCheckSummary } from './check-summary.ts';
export {
  ANOMALY_KINDS,
  type Anomaly,
  type AnomalyKind,
  type CheckCounts,
  type CheckOptions,
  type CheckReport,
  type CheckTimeline,
  type JobCheck,
  type ReplicasLabel,
} from './check-types.ts';

interface JobState {
  check: JobCheck;
  keys: Map<string, KeyGroup>;
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
      findings.add(
        { kind: 'malformed', job: String(f.job), replicas: Number(f.replicas), key: String(f.key), atMs, message: bad, op },
        undefined,
      );
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
        findings.add(
          anomaly(
            'malformed',
            check,
            group.key,
            ops[incrs]!,
            'key mixes incr with put/delete: neither a counter nor a register, not checked',
          ),
          check,
        );
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
    for (const field of [
      'jobs',
      'keys',
      'counterKeys',
      'ops',
      'ok',
      'unavailable',
      'otherFailures',
      'finalReads',
      'finalUnread',
      'lost',
      'null',
      'stale',
      'wrong',
      'countersOff',
    ] as const) {
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
  const lastFault = history.faults.reduce(
    (m: number, f: FaultEvent) => Math.max(m, Number.isFinite(f.endMs) && f.endMs <= horizonMs ? f.endMs : 0),
    0,
  );
  let buckets = Math.ceil(Math.max(history.durationMs, lastFault) / bucketMs);
  const allSeries = [
    ...REPLICAS_LABELS.flatMap((r) => [series[r].ok, series[r].failed]),
    ...ANOMALY_KINDS.map((k) => findings.timeline[k]),
  ];
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
