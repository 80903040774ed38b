import test from 'ava';
import { type AnomalyKind, type CheckReport, checkHistory, formatCheckSummary } from './checker.ts';
import type { FaultEvent, History, HistoryOp } from './history.ts';

type Outcome = HistoryOp['outcome'];

function op(fields: Partial<HistoryOp> & Pick<HistoryOp, 'op' | 'invokeMs' | 'completeMs'>): HistoryOp {
  return { process: 'p0', job: 'r2', replicas: 2, key: 'k', outcome: 'ok', ...fields };
}
const put = (value: string, invokeMs: number, completeMs: number, outcome: Outcome = 'ok'): HistoryOp =>
  op({
    op: 'put',
    value,
    invokeMs,
    completeMs,
    outcome,
    ...(outcome === 'ok' ? {} : { errorCode: outcome === 'info' ? 'TIMEOUT' : 'FULL' }),
  });
const del = (invokeMs: number, completeMs: number, outcome: Outcome = 'ok'): HistoryOp =>
  op({ op: 'delete', invokeMs, completeMs, outcome, ...(outcome === 'ok' ? {} : { errorCode: 'TIMEOUT' }) });
const get = (result: string | number | null, invokeMs: number, completeMs: number, final = false): HistoryOp =>
  op({ op: 'get', result, invokeMs, completeMs, ...(final ? { final } : {}) });
const wait = (result: string, invokeMs: number, completeMs: number): HistoryOp => op({ op: 'wait', result, invokeMs, completeMs });
const incr = (amount: number, result: number | null, invokeMs: number, completeMs: number, outcome: Outcome = 'ok'): HistoryOp =>
  op({ op: 'incr', key: 'c', amount, invokeMs, completeMs, outcome, ...(outcome === 'ok' ? { result } : { errorCode: 'TIMEOUT' }) });
const getC = (result: string | number | null, invokeMs: number, completeMs: number, final = false): HistoryOp =>
  op({ op: 'get', key: 'c', result, invokeMs, completeMs, ...(final ? { final } : {}) });

function history(ops: HistoryOp[], faults: FaultEvent[] = []): History {
  return { startedAt: '2026-01-02T03:04:05.000Z', durationMs: 10_000, ops, faults };
}

function counts(report: CheckReport): Record<string, number> {
  const s = report.summary.byReplicas;
  const sum = (f: 'wrong' | 'stale' | 'null' | 'lost' | 'countersOff'): number => s['1'][f] + s['2'][f] + s['3'][f];
  return {
    wrong: sum('wrong'),
    stale: sum('stale'),
    null: sum('null'),
    lost: sum('lost'),
    counters: sum('countersOff'),
    malformed: report.summary.malformed,
  };
}

const NONE = { wrong: 0, stale: 0, null: 0, lost: 0, counters: 0, malformed: 0 };

/** Each case: a history and exactly the anomalies it must produce (all other kinds must be 0). */
const cases: { name: string; ops: HistoryOp[]; expect: Partial<Record<AnomalyKind, number>> }[] = [
  // Registers: legal histories.
  { name: 'concurrent writes: the first value is legal', ops: [put('a', 0, 10), put('b', 2, 8), get('a', 20, 21)], expect: {} },
  { name: 'concurrent writes: the second value is legal', ops: [put('a', 0, 10), put('b', 2, 8), get('b', 20, 21)], expect: {} },
  { name: 'read overlapping a write: the old value is legal', ops: [put('a', 0, 1), put('b', 10, 20), get('a', 15, 16)], expect: {} },
  { name: 'read overlapping a write: the new value is legal', ops: [put('a', 0, 1), put('b', 10, 20), get('b', 15, 16)], expect: {} },
  {
    name: 'a write completing as the read begins is not definitely before it',
    ops: [put('a', 0, 1), put('b', 2, 5), get('a', 5, 6)],
    expect: {},
  },
  { name: 'a write invoked as another completes is concurrent with it', ops: [put('a', 0, 2), put('b', 2, 3), get('a', 4, 5)], expect: {} },
  { name: 'a put invoked as the read completes is not from the future', ops: [get('a', 0, 5), put('a', 5, 6)], expect: {} },
  {
    name: 'null: a delete completing as a later put is invoked may be the latest',
    ops: [put('a', 0, 1), del(2, 3), put('b', 3, 4), get(null, 5, 6)],
    expect: {},
  },
  {
    name: 'null: a long delete may land after a later put',
    ops: [put('a', 0, 1), del(2, 20), del(3, 4), put('b', 5, 6), get(null, 25, 26)],
    expect: {},
  },
  { name: 'null before any write completed is legal', ops: [put('a', 0, 10), get(null, 2, 5)], expect: {} },
  { name: 'null of a key never written is legal', ops: [get(null, 2, 5)], expect: {} },
  { name: 'null after an acked delete is legal', ops: [put('a', 0, 1), del(2, 3), get(null, 4, 5)], expect: {} },
  { name: 'null after an acked put then an info delete is legal', ops: [put('a', 0, 1), del(2, 30, 'info'), get(null, 5, 6)], expect: {} },
  { name: 'null overlapping an acked delete is legal', ops: [put('a', 0, 1), del(5, 20), get(null, 3, 6)], expect: {} },
  { name: 'an info put is readable', ops: [put('a', 0, 100, 'info'), get('a', 200, 201)], expect: {} },
  {
    name: 'an info put may land after a later acked overwrite',
    ops: [put('a', 0, 5, 'info'), put('b', 10, 11), get('a', 20, 21)],
    expect: {},
  },
  { name: 'an info put does not supersede', ops: [put('a', 0, 1), put('b', 2, 3, 'info'), get('a', 10, 11)], expect: {} },
  { name: 'wait returns a value written while it waited', ops: [wait('a', 0, 50), put('a', 40, 45)], expect: {} },
  { name: 'a final read of the last acked value is legal', ops: [put('a', 0, 1), put('b', 2, 3), get('b', 100, 101, true)], expect: {} },
  { name: 'a final null after an acked delete is legal', ops: [put('a', 0, 1), del(2, 3), get(null, 100, 101, true)], expect: {} },
  { name: 'a numeric result names the string written', ops: [put('7', 0, 1), get(7, 2, 3)], expect: {} },
  // Registers: anomalies.
  { name: 'the old value after an acked overwrite is stale', ops: [put('a', 0, 1), put('b', 2, 3), get('a', 4, 5)], expect: { stale: 1 } },
  {
    name: 'stale when the superseding write is not the last to complete',
    ops: [put('a', 0, 3), put('b', 4, 5), put('c', 1, 10), get('a', 11, 12)],
    expect: { stale: 1 },
  },
  { name: 'the old value after an acked delete is stale', ops: [put('a', 0, 1), del(2, 3), get('a', 4, 5)], expect: { stale: 1 } },
  { name: 'a wait returning an overwritten value is stale', ops: [put('a', 0, 1), put('b', 2, 3), wait('a', 4, 5)], expect: { stale: 1 } },
  { name: 'null after an acked put', ops: [put('a', 0, 1), get(null, 2, 3)], expect: { null: 1 } },
  {
    name: 'null after an acked put, the info delete invoked after the read',
    ops: [put('a', 0, 1), get(null, 2, 3), del(4, 30, 'info')],
    expect: { null: 1 },
  },
  {
    name: 'null after an acked put that superseded an acked delete',
    ops: [put('a', 0, 1), del(2, 3), put('b', 4, 5), get(null, 6, 7)],
    expect: { null: 1 },
  },
  { name: 'null after a failed delete', ops: [put('a', 0, 1), del(2, 3, 'fail'), get(null, 6, 7)], expect: { null: 1 } },
  { name: 'a value never written is wrong', ops: [put('a', 0, 1), get('zzz', 2, 3)], expect: { wrong: 1 } },
  { name: 'a value from a write invoked after the read completed is wrong', ops: [get('a', 0, 5), put('a', 6, 7)], expect: { wrong: 1 } },
  { name: "a failed put's value is wrong", ops: [put('a', 0, 1, 'fail'), get('a', 2, 3)], expect: { wrong: 1 } },
  { name: 'a final null missing an acked put is lost', ops: [put('a', 0, 1), get(null, 100, 101, true)], expect: { lost: 1 } },
  {
    name: 'a final old value missing an acked overwrite is lost',
    ops: [put('a', 0, 1), put('b', 2, 3), get('a', 100, 101, true)],
    expect: { lost: 1 },
  },
  { name: 'a final value never written is wrong, not lost', ops: [put('a', 0, 1), get('x', 100, 101, true)], expect: { wrong: 1 } },
  // Counters: legal histories.
  {
    name: 'counter: sequential increments',
    ops: [incr(1, 1, 0, 1), incr(2, 3, 2, 3), getC('3', 4, 5), getC(3, 100, 101, true)],
    expect: {},
  },
  {
    name: 'counter: concurrent increments in either order',
    ops: [incr(1, 2, 0, 10), incr(1, 1, 1, 9), getC('2', 20, 21, true)],
    expect: {},
  },
  {
    name: 'counter: an info increment may or may not land',
    ops: [incr(1, 1, 0, 1), incr(1, null, 2, 3, 'info'), getC('2', 100, 101, true)],
    expect: {},
  },
  {
    name: 'counter: an info increment that did not land',
    ops: [incr(1, 1, 0, 1), incr(1, null, 2, 3, 'info'), getC('1', 100, 101, true)],
    expect: {},
  },
  { name: 'counter: null before any increment completed', ops: [incr(1, 1, 0, 10), getC(null, 2, 3)], expect: {} },
  { name: 'counter: no final read, the largest total covers the acked sum', ops: [incr(1, 1, 0, 1), incr(1, 2, 2, 3)], expect: {} },
  { name: 'counter: a decrement', ops: [incr(5, 5, 0, 1), incr(-2, 3, 2, 3), getC('3', 10, 11, true)], expect: {} },
  // Counters: anomalies.
  {
    name: 'counter: an acked increment missing from the final value',
    ops: [incr(1, 1, 0, 1), incr(1, 2, 2, 3), getC('1', 100, 101, true)],
    expect: { counters: 1 },
  },
  {
    name: 'counter: a final value above acked + info',
    ops: [incr(1, 1, 0, 1), incr(1, null, 2, 3, 'info'), getC('3', 100, 101, true)],
    expect: { counters: 1 },
  },
  { name: 'counter: a final null after acked increments', ops: [incr(1, 1, 0, 1), getC(null, 100, 101, true)], expect: { counters: 1 } },
  { name: 'counter: duplicate totals', ops: [incr(1, 1, 0, 1), incr(1, 1, 2, 3)], expect: { counters: 3 } }, // the duplicate; the second incr below its bound; largest total under the acked sum
  {
    name: 'counter: concurrent duplicate totals',
    ops: [incr(1, 1, 0, 10), incr(1, 1, 1, 9), getC('2', 20, 21, true)],
    expect: { counters: 1 },
  },
  {
    name: 'counter: a total that ignores an acked increment before it',
    ops: [incr(1, 1, 0, 1), incr(1, 1, 2, 3), incr(1, 3, 4, 5), getC('3', 10, 11, true)],
    expect: { counters: 2 },
  },
  {
    name: 'counter: a total counting an increment not yet invoked',
    ops: [incr(1, 2, 0, 1), incr(1, 1, 2, 3), getC('2', 10, 11, true)],
    expect: { counters: 2 },
  },
  {
    name: 'counter: an acked increment missing with no final read',
    ops: [incr(1, 1, 0, 1), incr(1, null, 2, 3), incr(5, 2, 4, 5)],
    expect: { counters: 3 },
  }, // null total; 2 below its bound; largest total under the acked sum
  {
    name: "counter: a decrement's total leaving it out",
    ops: [incr(5, 5, 0, 1), incr(-2, 5, 2, 3), getC('3', 10, 11, true)],
    expect: { counters: 1 },
  },
  { name: 'counter: a read of a non-number is wrong', ops: [incr(1, 1, 0, 1), getC('one', 2, 3)], expect: { wrong: 1 } },
  { name: 'counter: a read beyond every increment is wrong', ops: [incr(1, 1, 0, 1), getC('5', 2, 3)], expect: { wrong: 1 } },
  { name: 'counter: null after an acked increment', ops: [incr(1, 1, 0, 1), getC(null, 2, 3)], expect: { null: 1 } },
  // Input the checker cannot judge.
  { name: 'an op completing before its invoke is malformed', ops: [put('a', 5, 1), get(null, 6, 7)], expect: { malformed: 1 } },
  { name: 'a wall-clock time is malformed', ops: [put('a', Date.now(), Date.now() + 1), get(null, 6, 7)], expect: { malformed: 1 } },
  { name: 'a negative time is malformed', ops: [put('a', -5, 1), get(null, 6, 7)], expect: { malformed: 1 } },
  {
    name: 'a key mixing put and incr is malformed',
    ops: [put('a', 0, 1), op({ op: 'incr', amount: 1, result: 1, invokeMs: 2, completeMs: 3 })],
    expect: { malformed: 1 },
  },
];

for (const c of cases) {
  test(`checker: ${c.name}`, (t) => {
    const report = checkHistory(history(c.ops));
    t.deepEqual(counts(report), { ...NONE, ...c.expect }, formatCheckSummary(report));
    for (const [kind, n] of Object.entries(c.expect)) t.is(report.anomalies[kind as AnomalyKind].length, n);
    // The order of ops in the history means nothing: only their times do.
    t.deepEqual(counts(checkHistory(history([...c.ops].reverse()))), { ...NONE, ...c.expect }, 'reversed');
  });
}

test('checker: a stale read names the value read and the write that superseded it', (t) => {
  const a = put('a', 0, 1);
  const b = put('b', 2, 3);
  const read = get('a', 4, 5);
  const [anomaly] = checkHistory(history([a, b, read])).anomalies.stale;
  t.like(anomaly, { kind: 'stale', job: 'r2', replicas: 2, key: 'k', atMs: 5 });
  t.is(anomaly!.op, read);
  t.is(anomaly!.write, a);
  t.is(anomaly!.expected, b);
});

test('checker: a lost write names the key and the acknowledged write missing', (t) => {
  const a = put('a', 0, 1);
  const b = put('b', 2, 3);
  const final = get(null, 100, 101, true);
  const [anomaly] = checkHistory(history([a, b, final])).anomalies.lost;
  t.is(anomaly!.key, 'k');
  t.is(anomaly!.expected, b);
  t.regex(anomaly!.message, /"b"/);
});

test('checker: availability, error codes and UNAVAILABLE apart, per job and per replicas setting', (t) => {
  const r1 = (outcome: Outcome, errorCode?: string): HistoryOp =>
    op({
      job: 'r1',
      replicas: 1,
      op: 'get',
      result: outcome === 'ok' ? null : undefined,
      outcome,
      invokeMs: 0,
      completeMs: 1,
      ...(errorCode ? { errorCode } : {}),
    });
  const ops = [
    ...Array.from({ length: 7 }, () => r1('ok')),
    r1('fail', 'UNAVAILABLE'),
    r1('fail', 'UNAVAILABLE'),
    r1('info', 'TIMEOUT'),
    op({ job: 'r1', replicas: 1, op: 'get', outcome: 'fail', invokeMs: 100, completeMs: 101, final: true, errorCode: 'UNAVAILABLE' }),
    ...Array.from({ length: 4 }, (_, i) => op({ job: 'r3', replicas: 3, op: 'put', value: `v${i}`, invokeMs: i, completeMs: i + 0.5 })),
    op({ job: 'r3b', replicas: 3, op: 'put', value: 'x', invokeMs: 0, completeMs: 1, outcome: 'info' }),
  ];
  const faults: FaultEvent[] = [
    { kind: 'kill', target: 'node-1', startMs: 1000, endMs: 3000 },
    { kind: 'kill', target: 'node-2', startMs: 4000, endMs: 5000 },
    { kind: 'stop', target: 'node-3', startMs: 6000, endMs: 9000 },
  ];
  const report = checkHistory(history(ops, faults));
  const one = report.summary.byReplicas['1'];
  t.is(one.ops, 10, 'the final read is not counted');
  t.is(one.ok, 7);
  t.is(one.availability, 0.7);
  t.deepEqual(one.errors, { UNAVAILABLE: 2, TIMEOUT: 1 });
  t.is(one.unavailable, 2);
  t.is(one.otherFailures, 1);
  t.is(one.finalReads, 1);
  t.is(one.finalUnread, 1);
  t.is(report.jobs.r1!.availability, 0.7);
  t.is(report.jobs.r3!.availability, 1);
  t.is(report.jobs.r3b!.availability, 0);
  const three = report.summary.byReplicas['3'];
  t.like(three, { jobs: 2, ops: 5, ok: 4, availability: 0.8, errors: { none: 1 }, otherFailures: 1 });
  t.is(report.summary.byReplicas['2'].availability, null, 'no ops');
  t.is(report.summary.ops, ops.length);
  t.deepEqual(report.summary.faultsByKind, { kill: 2, stop: 1 });
  t.is(report.summary.faults, 3);
  t.is(report.timeline.buckets, 10);
  t.is(report.timeline.byReplicas['1'].ok[0], 7);
  t.is(report.timeline.byReplicas['1'].failed[0], 3);
  const text = formatCheckSummary(report);
  t.regex(text, /^replicas\s+ops\s+avail/);
  t.regex(text, /\n1\s+10\s+70\.0%/);
  t.regex(text, /kill 2, stop 1/);
  t.regex(text, /verdict: no anomalies/);
});

test('checker: examples are capped at the earliest, counts are not', (t) => {
  const ops: HistoryOp[] = [];
  for (let i = 0; i < 300; i++) {
    const base = (299 - i) * 10; // in reverse time order, so the earliest come last
    ops.push(
      { ...put(`a${i}`, base, base + 1), key: `k${i}` },
      { ...put(`b${i}`, base + 2, base + 3), key: `k${i}` },
      { ...get(`a${i}`, base + 4, base + 5), key: `k${i}` },
    );
  }
  const report = checkHistory(history(ops), { examples: 20 });
  t.is(report.summary.byReplicas['2'].stale, 300);
  t.is(report.jobs.r2!.stale, 300);
  t.is(report.anomalies.stale.length, 20);
  t.deepEqual(
    report.anomalies.stale.map((a) => a.atMs),
    Array.from({ length: 20 }, (_, i) => i * 10 + 5),
  );
  t.is(
    report.timeline.anomalies.stale.reduce((a, b) => a + b, 0),
    300,
  );
  t.regex(formatCheckSummary(report), /verdict: 300 anomalies\n {2}stale r2\/k299 at /);
});

// ---- randomized: a linearizable register and counter, simulated ----

/** mulberry32: a small seeded PRNG, so a failure reproduces. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A history a linearizable store could produce: each op takes effect at one random instant inside its
 * [invoke, complete] window (an info write: maybe never, maybe any time after its invoke; a failed one never),
 * reads return the state at that instant. Then every key is read back (final) after everything landed.
 */
function simulate(seed: number, count: number): History {
  const rnd = random(seed);
  const jobs = [
    { job: 'r1', replicas: 1 as const },
    { job: 'r2', replicas: 2 as const },
    { job: 'r3', replicas: 3 as const },
  ];
  const keys = ['k0', 'k1', 'k2', 'c'];
  const processes = 8;
  const clock = new Array<number>(processes).fill(0);
  const events: { at: number; op: HistoryOp; apply: boolean }[] = [];
  let written = 0;
  for (let i = 0; i < count; i++) {
    const p = i % processes;
    const invokeMs = clock[p]! + rnd() * 3;
    const completeMs = invokeMs + 0.05 + (rnd() < 0.05 ? rnd() * 60 : rnd() * 8);
    clock[p] = completeMs;
    const { job, replicas } = jobs[Math.floor(rnd() * jobs.length)]!;
    const key = keys[Math.floor(rnd() * keys.length)]!;
    const base = { process: `p${p}`, job, replicas, key, invokeMs, completeMs };
    const dice = rnd();
    const fate = rnd();
    const outcome: Outcome = fate < 0.8 ? 'ok' : fate < 0.9 ? 'info' : 'fail';
    let op: HistoryOp;
    if (key === 'c')
      op = dice < 0.6 ? { ...base, op: 'incr', amount: 1 + Math.floor(rnd() * 3), outcome } : { ...base, op: 'get', outcome: 'ok' };
    else if (dice < 0.35) op = { ...base, op: 'put', value: `v${written++}`, outcome };
    else if (dice < 0.45) op = { ...base, op: 'delete', outcome };
    else if (dice < 0.5) op = { ...base, op: 'wait', outcome: 'ok' };
    else op = { ...base, op: 'get', outcome: fate < 0.95 ? 'ok' : 'fail' };
    if (op.outcome !== 'ok') op.errorCode = op.outcome === 'info' ? 'TIMEOUT' : 'UNAVAILABLE';
    const isWrite = op.op !== 'get' && op.op !== 'wait';
    let at = invokeMs + rnd() * (completeMs - invokeMs);
    let apply = op.outcome === 'ok' || (isWrite && op.outcome === 'info' && rnd() < 0.5);
    if (isWrite && op.outcome === 'info') at = invokeMs + rnd() * (completeMs - invokeMs + 40);
    if (!isWrite && op.outcome !== 'ok') apply = false;
    events.push({ at, op, apply });
  }
  events.sort((a, b) => a.at - b.at);
  const state = new Map<string, string | null>();
  const counters = new Map<string, number>();
  for (const { op, apply } of events) {
    if (!apply) continue;
    const id = `${op.job}/${op.key}`;
    if (op.op === 'put') state.set(id, op.value!);
    else if (op.op === 'delete') state.set(id, null);
    else if (op.op === 'incr') {
      const total = (counters.get(id) ?? 0) + op.amount!;
      counters.set(id, total);
      if (op.outcome === 'ok') op.result = total;
    } else {
      const now = op.key === 'c' ? (counters.has(id) ? String(counters.get(id)) : null) : (state.get(id) ?? null);
      if (op.op === 'wait' && now === null) {
        // A wait on an absent key would still be waiting: it times out.
        op.outcome = 'info';
        op.errorCode = 'TIMEOUT';
      } else op.result = now;
    }
  }
  const end = Math.max(...events.map((e) => Math.max(e.at, e.op.completeMs))) + 10;
  const ops = events.map((e) => e.op).sort((a, b) => a.invokeMs - b.invokeMs);
  for (const { job, replicas } of jobs) {
    for (const key of keys) {
      const id = `${job}/${key}`;
      const result = key === 'c' ? (counters.has(id) ? String(counters.get(id)) : null) : (state.get(id) ?? null);
      ops.push({ process: 'final', job, replicas, op: 'get', key, invokeMs: end, completeMs: end + 1, outcome: 'ok', result, final: true });
    }
  }
  return { startedAt: '2026-01-02T03:04:05.000Z', durationMs: end + 1, ops, faults: [] };
}

/**
 * The definitions at the top of checker.ts, written the slow obvious way (every write against every other
 * for every read): what a register read must be classified as, or undefined when it is admissible.
 */
function oracle(ops: HistoryOp[], read: HistoryOp): AnomalyKind | undefined {
  const same = ops.filter((o) => o.job === read.job && o.key === read.key && (o.op === 'put' || o.op === 'delete') && o.outcome !== 'fail');
  const acked = same.filter((o) => o.outcome === 'ok');
  const superseded = (w: HistoryOp): boolean =>
    w.outcome === 'ok' && acked.some((w2) => w2 !== w && w.completeMs < w2.invokeMs && w2.completeMs < read.invokeMs);
  const candidates = same.filter((w) => w.invokeMs <= read.completeMs && !superseded(w));
  const initial = !acked.some((w) => w.completeMs < read.invokeMs);
  if (read.result === null) {
    return initial || candidates.some((w) => w.op === 'delete') ? undefined : read.final ? 'lost' : 'null';
  }
  const puts = same.filter((w) => w.op === 'put' && w.value === String(read.result));
  if (puts.length === 0 || puts.every((w) => w.invokeMs > read.completeMs)) return 'wrong';
  return puts.some((w) => candidates.includes(w)) ? undefined : read.final ? 'lost' : 'stale';
}

const flagged = (report: CheckReport): Map<HistoryOp, AnomalyKind> =>
  new Map(Object.values(report.anomalies).flatMap((list) => list.map((a) => [a.op, a.kind] as const)));

test('checker: a simulated linearizable history of 5,000 ops has no anomalies', (t) => {
  const h = simulate(42, 5000);
  const report = checkHistory(h);
  t.is(report.summary.anomalies, 0, formatCheckSummary(report));
  t.is(report.summary.malformed, 0);
  const s = report.summary.byReplicas;
  t.true(s['1'].ops > 1000 && s['2'].ops > 1000 && s['3'].ops > 1000);
  // The history exercises what it should: stale-able overwrites, deletes, info writes, counters, final reads.
  t.true(h.ops.some((o) => o.op === 'put' && o.outcome === 'info'));
  t.true(h.ops.some((o) => o.op === 'incr' && o.outcome === 'info'));
  t.true(h.ops.some((o) => o.op === 'get' && o.result === null && !o.final));
  t.true(h.ops.some((o) => o.op === 'wait' && o.outcome === 'ok'));
  t.is(report.summary.finalReads, 12);
});

test('checker: one corrupted read in a simulated history is flagged, and only it', (t) => {
  const h = simulate(7, 3000);
  const reads = h.ops.filter((o) => o.op === 'get' && o.outcome === 'ok' && o.key !== 'c' && !o.final);
  // A read that could only see the latest acked write: give it the value before that (stale).
  const target = reads.find((r) => {
    const older = h.ops.find(
      (w) =>
        w.op === 'put' && w.job === r.job && w.key === r.key && w.outcome === 'ok' && w.value !== r.result && w.completeMs < r.invokeMs,
    );
    return older !== undefined && oracle(h.ops, { ...r, result: older.value! }) === 'stale';
  })!;
  const older = h.ops.find(
    (w) =>
      w.op === 'put' &&
      w.job === target.job &&
      w.key === target.key &&
      w.outcome === 'ok' &&
      w.value !== target.result &&
      w.completeMs < target.invokeMs &&
      oracle(h.ops, { ...target, result: w.value! }) === 'stale',
  )!;
  target.result = older.value!;
  const report = checkHistory(h);
  t.is(report.summary.anomalies, 1, formatCheckSummary(report));
  t.is(report.anomalies.stale.length, 1);
  t.is(report.anomalies.stale[0]!.op, target);
  t.is(report.anomalies.stale[0]!.write, older);

  // And a counter total made a duplicate of the one before it.
  const incrs = h.ops.filter((o) => o.op === 'incr' && o.outcome === 'ok' && o.job === 'r2');
  incrs[incrs.length - 1]!.result = incrs[incrs.length - 2]!.result!;
  t.true(checkHistory(h).summary.byReplicas['2'].countersOff >= 1);
});

test('checker: the fast checks agree with the definitions checked the slow way, on many corrupted reads', (t) => {
  const h = simulate(1234, 3000);
  const rnd = random(99);
  // Each key's puts in invoke order (h.ops is sorted by invoke), so a corruption can pick a value written
  // around the read's time: the boundary cases, not just values long overwritten.
  const puts = new Map<string, HistoryOp[]>();
  for (const o of h.ops) if (o.op === 'put') puts.set(`${o.job}/${o.key}`, [...(puts.get(`${o.job}/${o.key}`) ?? []), o]);
  const reads = h.ops.filter((o) => (o.op === 'get' || o.op === 'wait') && o.outcome === 'ok' && o.key !== 'c');
  for (const r of reads) {
    if (rnd() < 0.5) continue;
    const choices = puts.get(`${r.job}/${r.key}`) ?? [];
    const at = choices.findIndex((w) => w.invokeMs > r.invokeMs);
    const near = Math.min(choices.length - 1, Math.max(0, (at < 0 ? choices.length : at) + Math.floor(rnd() * 10) - 7));
    const pick = rnd();
    r.result = pick < 0.2 ? null : pick < 0.25 ? 'never-written' : (choices[near]?.value ?? null);
  }
  const expected = new Map<HistoryOp, AnomalyKind>();
  for (const r of reads) {
    const kind = oracle(h.ops, r);
    if (kind) expected.set(r, kind);
  }
  // Shuffled: the checker must sort what it needs, not trust the history's order.
  for (let i = h.ops.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [h.ops[i], h.ops[j]] = [h.ops[j]!, h.ops[i]!];
  }
  const report = checkHistory(h, { examples: 1_000_000 });
  const got = flagged(report);
  for (const kind of ['stale', 'null', 'wrong', 'lost'] as const)
    t.true([...expected.values()].includes(kind), `the corruption produces ${kind}`);
  t.is(got.size, expected.size);
  for (const [r, kind] of expected) t.is(got.get(r), kind, JSON.stringify(r));
  t.is(report.summary.anomalies, expected.size);
});
