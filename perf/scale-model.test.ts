import test from 'ava';
import { jobBytesAt, NodeModel, planCluster, RAMP_SHARE, shareOf, TimeIntegral } from './scale-model.ts';
import { generateTrace, type TraceJob } from './scale-trace.ts';

const MiB = 1024 * 1024;

function job(overrides: Partial<TraceJob> = {}): TraceJob {
  return {
    arriveMs: 0,
    durationMs: 10_000,
    latencySensitive: true,
    capacityHint: 200 * MiB,
    throughputHint: 10 * MiB,
    replicas: 1,
    usedBytes: 100 * MiB,
    bytesPerS: 10 * MiB,
    ...overrides,
  };
}

test('a job ramps up over the first share of its life, then holds', (t) => {
  const j = job();
  t.is(jobBytesAt(j, 0), 0);
  t.is(jobBytesAt(j, -5), 0);
  t.is(jobBytesAt(j, (j.durationMs * RAMP_SHARE) / 2), 50 * MiB);
  t.is(jobBytesAt(j, j.durationMs * RAMP_SHARE), 100 * MiB);
  t.is(jobBytesAt(j, j.durationMs * 10), 100 * MiB);
});

test('a node holds its weight share of the newest generation naming it, times the copies, at most all', (t) => {
  const placement = {
    epoch: 3,
    replicas: 1,
    generations: [
      [
        { id: 'a', resp: '', weight: 1 },
        { id: 'b', resp: '', weight: 3 },
      ],
      [{ id: 'c', resp: '', weight: 1 }],
    ],
  };
  t.is(shareOf('a', placement), 0.25);
  t.is(shareOf('b', placement), 0.75);
  t.is(shareOf('c', placement), 1);
  t.is(shareOf('d', placement), 0);
  t.is(shareOf('a', { ...placement, replicas: 2 }), 0.5);
  t.is(shareOf('b', { ...placement, replicas: 2 }), 1);
});

test('a node reports its jobs bytes and counters that advance at the modelled rate', (t) => {
  const node = new NodeModel('a', 'dram', 1024 * MiB, 1e9);
  const placement = {
    epoch: 1,
    replicas: 1,
    generations: [
      [
        { id: 'a', resp: '', weight: 1 },
        { id: 'b', resp: '', weight: 1 },
      ],
    ],
  };
  node.announce('j1', 1, placement, false);
  node.announce('j2', 1, null, false); // no placement: no share yet
  const jobs = new Map([['j1', { trace: job(), registeredAtMs: 0 }]]);
  const first = node.report(jobs, 10_000, 1);
  t.is(first.used, 50 * MiB);
  t.is(first.capacity, 1024 * MiB);
  t.deepEqual(
    first.jobs.map((j) => [j.jobId, j.bytes, j.epoch]),
    [
      ['j1', 50 * MiB, 1],
      ['j2', 0, 1],
    ],
  );
  // 5 MiB/s for 2 s: 10 MiB, half in and half out.
  const second = node.report(jobs, 12_000, 2);
  t.is(second.bytesIn - first.bytesIn, 5 * MiB);
  t.is(second.bytesOut - first.bytesOut, 5 * MiB);
  t.true(second.cpu > 0 && second.cpu < 1);
  // A newer epoch whose newest generation leaves the node out keeps its share until it is told the job moved.
  node.announce('j1', 2, { ...placement, epoch: 2, generations: [[{ id: 'b', resp: '', weight: 1 }], ...placement.generations] }, false);
  t.is(node.report(jobs, 12_000, 1).jobs.find((j) => j.jobId === 'j1')?.epoch, 2);
  t.is(node.drop('j1', jobs.get('j1'), 12_000), 50 * MiB);
  t.false(node.has('j1'));
  t.is(node.drop('nope', undefined, 12_000), 0);
});

test('the starting cluster splits nodes by each tier’s peak and sizes them so the peak fills 70 %', (t) => {
  const trace = generateTrace({ jobs: 2_000, seed: 7 });
  const plan = planCluster(trace, 100);
  t.is(plan.nodes.dram + plan.nodes.ssd + plan.nodes.hdd, 100);
  for (const tier of ['dram', 'ssd', 'hdd'] as const) {
    if (plan.peakReservedBytes[tier] === 0) {
      t.is(plan.nodes[tier], 0);
      continue;
    }
    t.true(plan.nodes[tier] >= 1);
    const fill = plan.peakReservedBytes[tier] / (plan.nodes[tier] * plan.capacity[tier]);
    t.true(fill <= 0.7 && fill > 0.3, `${tier} fill ${fill}`);
  }
  // A third of the jobs are latency-sensitive: DRAM gets nodes, and so does the bulk (SSD).
  t.true(plan.nodes.dram > 0 && plan.nodes.ssd > 0);
});

test('a time integral is the area under the steps, with its span and peak', (t) => {
  const x = new TimeIntegral();
  x.add(0, 2);
  x.add(10, 4);
  x.add(15, 0);
  t.is(x.total, 2 * 10 + 4 * 5);
  t.is(x.span, 15);
  t.is(x.peak, 4);
});
