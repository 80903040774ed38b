import test from 'ava';
import type { NodeReport } from '../proto/index.ts';
import { NodeStatsTable } from './node-stats.ts';

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
