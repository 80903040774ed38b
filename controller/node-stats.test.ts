import test from 'ava';
import type { NodeReport } from '../proto/index.ts';
import { IDLE_JOB, NodeStatsTable, RATES_FRESH_MS } from './node-stats.ts';

const report = (nodeId: string, n: number, jobs: [string, number][]): NodeReport => ({
  nodeId,
  token: '',
  cpu: 0.5,
  bytesIn: 1000 * n,
  bytesOut: 2000 * n,
  ops: 10 * n,
  used: 100 * n,
  capacity: 1e6,
  jobs: jobs.map(([jobId, bytes]) => ({ jobId, bytes })),
});

test('counters become rates between two reports; job usage sums over nodes', (t) => {
  const table = new NodeStatsTable();
  const first = table.record(report('a', 1, [['job-1', 50]]), 10_000);
  t.is(first.opsPerSec, 0, 'no rate from a single report');
  const second = table.record(report('a', 3, [['job-1', 70]]), 12_000);
  t.is(second.bytesInPerSec, 1000);
  t.is(second.bytesOutPerSec, 2000);
  t.is(second.opsPerSec, 10);
  table.record(
    report('b', 1, [
      ['job-1', 5],
      ['job-2', 9],
    ]),
    12_000,
  );
  t.is(table.jobUsage('job-1'), 75);
  t.is(table.jobUsage('job-2'), 9);
  t.is(table.jobUsage('job-3'), 0);
});

test('a node that restarted (counters went down) gets no negative rate', (t) => {
  const table = new NodeStatsTable();
  table.record(report('a', 5, []), 1_000);
  const after = table.record(report('a', 1, []), 2_000);
  t.is(after.opsPerSec, 0);
  t.is(table.get('a'), after);
});

/** A report of node `nodeId` whose one job, `job-1`, has served `ops` requests, each of `us` µs and 100 bytes in, 1,000 out. */
const jobReport = (nodeId: string, ops: number, us: number, extra: Partial<NodeReport> = {}): NodeReport => ({
  ...report(nodeId, ops, []),
  jobs: [{ jobId: 'job-1', bytes: 0, ops, bytesIn: 100 * ops, bytesOut: 1000 * ops, serviceUs: us * ops }],
  ...extra,
});

test("a job's counters become its rates on each node, and its figures sum over its nodes (latency weighted by ops)", (t) => {
  const table = new NodeStatsTable();
  t.deepEqual(table.record(jobReport('a', 100, 50), 10_000).jobRates.get('job-1'), IDLE_JOB, 'no rate from a single report');
  // 200 more ops in 2 s: but each op of these took 50 µs, and the first 100 too.
  const a = table.record(jobReport('a', 300, 50), 12_000).jobRates.get('job-1');
  t.deepEqual(a, { opsPerSec: 100, bytesInPerSec: 10_000, bytesOutPerSec: 100_000, latencyMeanUs: 50 });
  // Node b: 300 ops in 1 s at 250 µs each (the job's counters there from 0: it arrived since the last report).
  table.record(report('b', 1, []), 11_000);
  t.like(table.record(jobReport('b', 300, 250), 12_000).jobRates.get('job-1'), { opsPerSec: 300, latencyMeanUs: 250 });
  const job = table.jobRates('job-1', 12_500);
  t.is(job.opsPerSec, 400);
  t.is(job.bytesInPerSec, 40_000);
  t.is(job.bytesOutPerSec, 400_000);
  t.is(job.latencyMeanUs, (100 * 50 + 300 * 250) / 400, 'weighted by each node’s ops');
  t.deepEqual(table.jobRates('job-2', 12_500), IDLE_JOB, 'a job no node reports');
  // A node that stopped reporting no longer counts.
  t.is(table.jobRates('job-1', 12_000 + RATES_FRESH_MS + 1).opsPerSec, 0);
});

test("a node restart (a job's counters back down, or another boot id) gives no negative rate", (t) => {
  const table = new NodeStatsTable();
  table.record(jobReport('a', 1000, 80, { bootId: 'one', ops: 1000 }), 1_000);
  // The node-wide counters went on rising: only the job's went down.
  const down = table.record(jobReport('a', 10, 80, { bootId: 'one', ops: 5000 }), 2_000).jobRates.get('job-1')!;
  t.deepEqual(down, IDLE_JOB);
  // Another process: its counters, even higher than the last ones, say nothing of this interval.
  const reborn = table.record(jobReport('a', 3000, 80, { bootId: 'two', ops: 9000 }), 3_000).jobRates.get('job-1')!;
  t.deepEqual(reborn, IDLE_JOB);
  for (const rates of [down, reborn]) for (const value of Object.values(rates)) t.true(value === null || value >= 0);
  t.is(
    table.record(jobReport('a', 3100, 80, { bootId: 'two', ops: 9100 }), 4_000).jobRates.get('job-1')!.opsPerSec,
    100,
    'then counted again',
  );
});

test('an idle job: no ops in the interval, no latency (null), zero rates', (t) => {
  const table = new NodeStatsTable();
  table.record(jobReport('a', 500, 40), 1_000);
  const idle = table.record(jobReport('a', 500, 40), 2_000).jobRates.get('job-1');
  t.deepEqual(idle, { opsPerSec: 0, bytesInPerSec: 0, bytesOutPerSec: 0, latencyMeanUs: null });
  t.is(table.jobRates('job-1', 2_000).latencyMeanUs, null);
  // A node without per-job counters (older than them): the job is idle, not unknown.
  table.record(report('b', 1, [['job-1', 5]]), 1_000);
  t.deepEqual(table.record(report('b', 2, [['job-1', 5]]), 2_000).jobRates.get('job-1'), IDLE_JOB);
});

test("a job's usage follows its nodes' latest reports: a job a node no longer reports, and a node forgotten, count no more", (t) => {
  const table = new NodeStatsTable();
  table.record(
    report('a', 1, [
      ['job-1', 50],
      ['job-2', 7],
    ]),
    10_000,
  );
  table.record(report('b', 1, [['job-1', 5]]), 10_000);
  t.is(table.jobUsage('job-1'), 55);
  table.record(report('a', 2, [['job-1', 60]]), 11_000);
  t.is(table.jobUsage('job-1'), 65);
  t.is(table.jobUsage('job-2'), 0, 'node a dropped job-2');
  table.forget('b');
  t.is(table.jobUsage('job-1'), 60);
  table.forget('a');
  t.is(table.jobUsage('job-1'), 0);
});
