import test from 'ava';
import { addSample, emptyStats } from './soak-protocol.ts';
import { fdsFlat, intervalRow, soakRow, summarize } from './soak-report.ts';

test('fdsFlat: drift within 8 or 10 %, or within what the clients can hold open under load; a leak is not', (t) => {
  t.true(fdsFlat(23, 24), 'idle before and after');
  t.true(fdsFlat(23, 31));
  t.false(fdsFlat(23, 32), 'nine more when idle is a leak');
  t.true(fdsFlat(200, 220), '10 % of a busy server');
  t.false(fdsFlat(200, 221));
  t.true(fdsFlat(45, 69, 68), 'connected functions come and go under load');
  t.false(fdsFlat(45, 45 + 69, 68), 'more than every client could hold open');
});

test("the baseline's figures: its own interval field and the summary's ratio, or null when it did not run (--rate 0)", (t) => {
  const stats = (withFloor: boolean) => {
    const s = emptyStats();
    for (let i = 0; i < 100; i++) addSample((s.ops.get ??= {}), 4000);
    if (withFloor) for (let i = 0; i < 100; i++) addSample((s.ops.floor ??= {}), 1000);
    return s;
  };
  const summary = (withFloor: boolean) => {
    const rows = [1, 2].map((i) => intervalRow(i, i * 10, 10, stats(withFloor), [], []));
    return { rows, summary: summarize(0, rows, emptyStats(), [], [], [], { jobs_left: 0, orphaned_jobs_on_nodes: 0, orphaned_bytes: 0 }) };
  };
  const measured = summary(true);
  t.is(measured.rows[1]!.floor!.count, 100);
  t.false('floor' in measured.rows[1]!.by_op, "not among Satchel's operations");
  t.is(measured.rows[1]!.ops, 100, 'nor counted as its ops');
  t.true(Math.abs(measured.summary.floor_p99_last_us! - 1000) <= 10, `${measured.summary.floor_p99_last_us}`);
  t.true(Math.abs(measured.summary.p99_over_floor! - 4) <= 0.05, `${measured.summary.p99_over_floor}`);
  t.regex(soakRow(measured.rows[1]!), / (0\.99|1\.0[01]) +0\/0$/, 'the floor p99 column, ms');
  const closedLoop = summary(false);
  t.is(closedLoop.rows[1]!.floor, null);
  t.is(closedLoop.summary.floor_p99_last_us, null);
  t.is(closedLoop.summary.p99_over_floor, null);
  t.regex(soakRow(closedLoop.rows[1]!), / - +0\/0$/);
});
