import test from 'ava';
import type { WirePlacement } from '../proto/index.ts';
import { ClusterRegistry, type JobRecord } from './registry.ts';

const NODES = ['a', 'b', 'c', 'd', 'e'];

function placement(jobId: string, generations: [string, number][][]): WirePlacement {
  return {
    jobId,
    epoch: generations.length,
    generations: generations.map((nodes) => ({ nodes: nodes.map(([id, weight]) => ({ id, weight, host: '127.0.0.1', port: 1 })) })),
    blockSize: 0,
    maxValueBytes: 0,
    replicas: 1,
  } as unknown as WirePlacement;
}

function job(id: string, reservation: number, generations: [string, number][][]): JobRecord {
  return {
    id,
    name: id,
    hints: {},
    tier: 'dram',
    reason: 'test',
    reservation,
    createdAt: 0,
    leaseExpiresAt: 0,
    placement: placement(id, generations),
  };
}

/** What each node holds reserved, summed afresh from every job (what nodeStates computed before it was indexed). */
function summed(registry: ClusterRegistry): Map<string, number> {
  const reserved = new Map<string, number>();
  for (const j of registry.jobs.values()) {
    const nodes = j.placement.generations[0]?.nodes ?? [];
    const total = nodes.reduce((acc, n) => acc + n.weight, 0);
    for (const n of nodes) reserved.set(n.id, (reserved.get(n.id) ?? 0) + (total > 0 ? (j.reservation * n.weight) / total : 0));
  }
  return reserved;
}

test('reservedOn: a job splits its reservation over its newest generation by weight; older generations reserve nothing', (t) => {
  const registry = new ClusterRegistry();
  registry.jobs.set(
    'j',
    job('j', 300, [
      [
        ['a', 1],
        ['b', 2],
      ],
      [['c', 1]],
    ]),
  );
  t.is(registry.jobs.reservedOn('a'), 100);
  t.is(registry.jobs.reservedOn('b'), 200);
  t.is(registry.jobs.reservedOn('c'), 0);
  t.deepEqual([...registry.jobs.namedOn('c')], ['j'], 'the older generation still names c');
  registry.jobs.delete('j');
  for (const id of ['a', 'b', 'c']) t.is(registry.jobs.reservedOn(id), 0);
});

test('reservedOn follows a reservation changed in place once the job is reindexed, and a replaced placement', (t) => {
  const registry = new ClusterRegistry();
  const j = job('j', 100, [[['a', 1]]]);
  registry.jobs.set('j', j);
  j.reservation = 500;
  t.is(registry.jobs.reservedOn('a'), 100, 'not yet told');
  registry.jobs.reindex(j);
  t.is(registry.jobs.reservedOn('a'), 500);
  j.placement = placement('j', [[['b', 1]], [['a', 1]]]);
  registry.jobs.reindex(j);
  t.is(registry.jobs.reservedOn('a'), 0);
  t.is(registry.jobs.reservedOn('b'), 500);
});

test('reservedOn equals a sum over every job after many random registrations, growths, resizes and removals', (t) => {
  const registry = new ClusterRegistry();
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const pick = () => NODES[Math.floor(random() * NODES.length)] as string;
  for (let step = 0; step < 5_000; step++) {
    const id = `j${Math.floor(random() * 40)}`;
    const existing = registry.jobs.get(id);
    const roll = random();
    if (existing === undefined) {
      registry.jobs.set(id, job(id, Math.round(random() * 1e9), [[[pick(), 1 + Math.floor(random() * 3)]]]));
    } else if (roll < 0.3) {
      registry.jobs.delete(id);
    } else if (roll < 0.6) {
      existing.reservation = Math.round(random() * 1e9) / 3;
      registry.jobs.reindex(existing);
    } else {
      const grown: [string, number][][] = existing.placement.generations.map((g) => g.nodes.map((n) => [n.id, n.weight]));
      const newest: [string, number][] = [
        [pick(), 1],
        [pick(), 2],
      ];
      existing.placement = placement(id, [newest, ...grown].slice(0, 4));
      registry.jobs.reindex(existing);
    }
  }
  const expected = summed(registry);
  t.true(registry.jobs.size > 0);
  for (const id of NODES) {
    const want = expected.get(id) ?? 0;
    t.true(Math.abs(registry.jobs.reservedOn(id) - want) < Math.max(1, want * 1e-9), `${id}: ${registry.jobs.reservedOn(id)} vs ${want}`);
  }
  registry.nodes.set('a', { id: 'a', tier: 'dram', capacity: 1, bandwidth: 1, host: '127.0.0.1', port: 1, registeredAt: 0 } as never);
  t.is(registry.nodeStates()[0]?.reserved, registry.jobs.reservedOn('a'));
});
