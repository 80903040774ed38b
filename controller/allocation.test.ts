import test from 'ava';
import type { JobHints } from '../proto/index.ts';
import {
  allocateJob,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_CAPACITY,
  DEFAULT_MAX_VALUE_BYTES,
  growJob,
  type NodeState,
  rightsizeReservation,
} from './allocation.ts';

const GiB = 1024 ** 3;
const node = (id: string, tier: string, capacity = 8 * GiB, reserved = 0, bandwidth = 1e9): NodeState => ({
  id,
  tier,
  address: `127.0.0.1:${1000 + id.length}`,
  capacity,
  bandwidth,
  reserved,
});
const oneOfEach = [node('dram-a', 'dram'), node('ssd-a', 'ssd'), node('hdd-a', 'hdd')];

const tierCases: [string, JobHints, readonly NodeState[], string][] = [
  ['no hints → DRAM', {}, oneOfEach, 'dram'],
  ['latency-sensitive → DRAM', { latencySensitive: true, capacity: 4 * GiB }, oneOfEach, 'dram'],
  ['not latency-sensitive → SSD', { latencySensitive: false }, oneOfEach, 'ssd'],
  ['throughput-heavy, not latency-sensitive → SSD', { latencySensitive: false, capacity: GiB, peakThroughput: GiB }, oneOfEach, 'ssd'],
  ['capacity-heavy, little throughput → HDD', { capacity: 100 * GiB, peakThroughput: 10e6 }, oneOfEach, 'hdd'],
  [
    'latency-sensitive wins over little throughput',
    { latencySensitive: true, capacity: 100 * GiB, peakThroughput: 10e6 },
    oneOfEach,
    'dram',
  ],
  ['no SSD nodes → DRAM, the nearest', { latencySensitive: false }, [node('dram-a', 'dram'), node('hdd-a', 'hdd')], 'dram'],
  ['no HDD nodes → SSD', { capacity: 100 * GiB, peakThroughput: 1e6 }, [node('dram-a', 'dram'), node('ssd-a', 'ssd')], 'ssd'],
  ['only HDD nodes → HDD even for a latency-sensitive job', { latencySensitive: true }, [node('hdd-a', 'hdd')], 'hdd'],
];

for (const [name, hints, nodes, tier] of tierCases) {
  test(`tier: ${name}`, (t) => {
    const allocation = allocateJob(hints, nodes);
    t.is(allocation.tier as string, tier);
    t.true(allocation.nodes.length > 0);
    t.truthy(allocation.reason);
  });
}

const reservationCases: [string, JobHints, readonly NodeState[], number][] = [
  ['no capacity hint → the default', {}, [node('dram-a', 'dram')], DEFAULT_CAPACITY],
  ['capacity hint taken as it is', { capacity: 3 * GiB }, [node('dram-a', 'dram')], 3 * GiB],
  // 2 nodes × 1 GB/s, 16 GiB in all: 0.5 GB/s is a quarter of the bandwidth, so a quarter of the capacity.
  [
    'throughput share of the capacity when larger',
    { capacity: GiB, peakThroughput: 0.5e9 },
    [node('dram-a', 'dram'), node('dram-b', 'dram')],
    4 * GiB,
  ],
  [
    'capacity when larger than the throughput share',
    { capacity: 6 * GiB, peakThroughput: 0.5e9 },
    [node('dram-a', 'dram'), node('dram-b', 'dram')],
    6 * GiB,
  ],
];

for (const [name, hints, nodes, reservation] of reservationCases) {
  test(`reservation: ${name}`, (t) => {
    t.is(allocateJob(hints, nodes).reservation, reservation);
  });
}

/**
 * How many nodes and which, for given hints and nodes: [name, hints, nodes, expected [node, weight] pairs]. Best
 * fit takes the nodes with the least free room that still hold an equal share; ties go by id.
 */
const fourSsd = ['a', 'b', 'c', 'd'].map((x) => node(`ssd-${x}`, 'ssd', 8 * GiB, 0, 500e6));
const threeDram = ['a', 'b', 'c'].map((x) => node(`dram-${x}`, 'dram', 4 * GiB));
const nodeCases: [string, JobHints, readonly NodeState[], [string, number][]][] = [
  [
    'a small job: one node, the fullest that still fits (best fit)',
    { capacity: GiB },
    [node('dram-a', 'dram', 8 * GiB, 1 * GiB), node('dram-b', 'dram', 8 * GiB, 6 * GiB), node('dram-c', 'dram', 8 * GiB, 7.9 * GiB)],
    [['dram-b', 1]],
  ],
  ['equal room: the first by id', { capacity: GiB }, threeDram, [['dram-a', 1]]],
  [
    'the throughput hint: enough nodes at their bandwidth (1.2 GB/s over 0.5 GB/s nodes: 3)',
    { latencySensitive: false, capacity: GiB, peakThroughput: 1.2e9 },
    fourSsd,
    [
      ['ssd-a', 1],
      ['ssd-b', 1],
      ['ssd-c', 1],
    ],
  ],
  [
    'more throughput than the tier carries: every node of it',
    { latencySensitive: false, capacity: GiB, peakThroughput: 5e9 },
    fourSsd,
    [
      ['ssd-a', 1],
      ['ssd-b', 1],
      ['ssd-c', 1],
      ['ssd-d', 1],
    ],
  ],
  [
    'a reservation no single node holds: split over as many as it takes',
    { capacity: 7 * GiB },
    threeDram,
    [
      ['dram-a', 1],
      ['dram-b', 1],
    ],
  ],
  [
    'a tier short of room: every node of it, weighted by free room',
    { capacity: 10 * GiB },
    [node('dram-a', 'dram', 4 * GiB, 3 * GiB), node('dram-b', 'dram', 4 * GiB, 1 * GiB)],
    [
      ['dram-a', 0.25],
      ['dram-b', 0.75],
    ],
  ],
  [
    'a full tier: its nodes still, not another tier (a write there gets FULL, and the job grows)',
    { capacity: GiB },
    [node('dram-a', 'dram', GiB, GiB), node('ssd-a', 'ssd')],
    [['dram-a', 1]],
  ],
  ['no nodes at all: none (the job is placed when one registers)', {}, [], []],
  [
    '2 replicas: two nodes of the tier, best fit',
    { capacity: GiB, replicas: 2 },
    [node('dram-a', 'dram', 8 * GiB, 0), node('dram-b', 'dram', 8 * GiB, 5 * GiB), node('dram-c', 'dram', 8 * GiB, 4 * GiB)],
    [
      ['dram-b', 1],
      ['dram-c', 1],
    ],
  ],
  [
    '2 replicas, one DRAM node: the roomiest node of the nearest tier joins',
    { replicas: 2 },
    [node('dram-a', 'dram'), node('ssd-a', 'ssd', 4 * GiB), node('ssd-b', 'ssd', 8 * GiB), node('hdd-a', 'hdd', 100 * GiB)],
    [
      ['dram-a', 1],
      ['ssd-b', 1],
    ],
  ],
  [
    '3 replicas, two nodes in all: both (fewer than copies: the controller refuses the job)',
    { replicas: 3 },
    [node('dram-a', 'dram'), node('dram-b', 'dram')],
    [
      ['dram-a', 1],
      ['dram-b', 1],
    ],
  ],
];

for (const [name, hints, nodes, expected] of nodeCases) {
  test(`nodes: ${name}`, (t) => {
    const allocation = allocateJob(hints, nodes);
    t.deepEqual(
      allocation.nodes.map((n) => [n.id, n.weight]),
      expected,
    );
    for (const n of allocation.nodes) t.is(n.address, nodes.find((m) => m.id === n.id)!.address);
  });
}

test('beside the table: a short tier and a borrowed one say so in the reason; no nodes still names a tier', (t) => {
  t.regex(
    allocateJob({ capacity: 10 * GiB }, [node('dram-a', 'dram', 4 * GiB, 3 * GiB), node('dram-b', 'dram', 4 * GiB, 1 * GiB)]).reason,
    /short of room/,
  );
  t.regex(allocateJob({ replicas: 2 }, [node('dram-a', 'dram'), node('ssd-a', 'ssd')]).reason, /2 replicas, so also on ssd/);
  t.is(allocateJob({}, []).tier, 'dram');
});

test('block size and value limit: defaults, and the hint when given (zero means no hint)', (t) => {
  const d = allocateJob({}, oneOfEach);
  t.is(d.blockSize, DEFAULT_BLOCK_SIZE);
  t.is(d.maxValueBytes, DEFAULT_MAX_VALUE_BYTES);
  t.is(allocateJob({ maxValueBytes: 4096 }, oneOfEach).maxValueBytes, 4096);
  t.is(allocateJob({ maxValueBytes: 0 }, oneOfEach).maxValueBytes, DEFAULT_MAX_VALUE_BYTES);
});

test('growth: the job tier first, the roomiest node, weights by free room so the full node takes nothing new', (t) => {
  const nodes = [
    node('dram-a', 'dram', 4 * GiB, 4 * GiB),
    node('dram-b', 'dram', 4 * GiB, 1 * GiB),
    node('dram-c', 'dram', 4 * GiB, 0),
    node('ssd-a', 'ssd', 100 * GiB, 0),
  ];
  const g = growJob([{ id: 'dram-a', address: '' }], 'dram', nodes, (n) => n.capacity - n.reserved, GiB)!;
  t.deepEqual(g.added, ['dram-c']);
  t.deepEqual(
    g.nodes.map((n) => [n.id, n.weight]),
    [['dram-c', 1]],
  );
  t.is(g.extraReservation, GiB);
});

test('growth: DRAM full → the job spills to SSD, then HDD; nothing with room anywhere → null', (t) => {
  const full = (id: string, tier: string) => node(id, tier, GiB, GiB);
  const dramOnly = [node('dram-a', 'dram', GiB, GiB), full('dram-b', 'dram')];
  const withSsd = [...dramOnly, node('ssd-a', 'ssd', 10 * GiB, 0), node('hdd-a', 'hdd', 10 * GiB, 0)];
  const room = (n: NodeState) => n.capacity - n.reserved;
  t.deepEqual(growJob([{ id: 'dram-a', address: '' }], 'dram', withSsd, room, GiB)!.added, ['ssd-a']);
  t.deepEqual(
    growJob(
      [
        { id: 'dram-a', address: '' },
        { id: 'ssd-a', address: '' },
      ],
      'dram',
      [...dramOnly, full('ssd-a', 'ssd'), node('hdd-a', 'hdd', 10 * GiB, 0)],
      room,
      GiB,
    )!.added,
    ['hdd-a'],
  );
  t.is(growJob([{ id: 'dram-a', address: '' }], 'dram', dramOnly, room, GiB), null);
});

test('growth: a node with less than a block free counts as full: two nearly full DRAM nodes do not take turns, the job spills to SSD', (t) => {
  const MiB = 1024 * 1024;
  // dram-a answered FULL (the caller gives it 0); dram-b, the job's newest before, has 300 KB left.
  const nodes = [
    node('dram-a', 'dram', GiB, GiB - 300 * 1024),
    node('dram-b', 'dram', GiB, GiB - 300 * 1024),
    node('ssd-a', 'ssd', 10 * GiB, 0),
  ];
  const room = (n: NodeState) => (n.id === 'dram-a' ? 0 : n.capacity - n.reserved);
  const g = growJob([{ id: 'dram-a', address: '' }], 'dram', nodes, room, GiB, MiB)!;
  t.deepEqual(g.added, ['ssd-a']);
  t.deepEqual(
    g.nodes.map((n) => n.id),
    ['ssd-a'],
  );
  t.deepEqual(
    growJob([{ id: 'dram-a', address: '' }], 'dram', nodes, room, GiB)!.added,
    ['dram-b'],
    'without the floor: the nearly full one',
  );
});

test('growth: no new node, but another of the job has room → the same nodes reweighted', (t) => {
  const nodes = [node('dram-a', 'dram', GiB, GiB), node('dram-b', 'dram', GiB, GiB / 2)];
  const g = growJob(
    [
      { id: 'dram-a', address: '' },
      { id: 'dram-b', address: '' },
    ],
    'dram',
    nodes,
    (n) => n.capacity - n.reserved,
    GiB,
  )!;
  t.deepEqual(g.added, []);
  t.deepEqual(
    g.nodes.map((n) => [n.id, n.weight]),
    [['dram-b', 1]],
  );
});

const rightsizeCases: [string, number, number, number][] = [
  ['nothing held yet: the hint stands', 8 * GiB, 0, 8 * GiB],
  ['within [used, 1.5 × used]: unchanged', 1.375 * GiB, GiB, 1.375 * GiB],
  ['over-reserved: down to 1.25 × used', 8 * GiB, GiB, 1.25 * GiB],
  ['outgrown: up to 1.25 × used', GiB, 2 * GiB, 2.5 * GiB],
  ['tiny use: at least 1 MiB', 64 * 1024 * 1024, 1000, 1024 * 1024],
];
for (const [name, reservation, usage, expected] of rightsizeCases) {
  test(`rightsizing: ${name}`, (t) => {
    t.is(rightsizeReservation(reservation, usage), Math.ceil(expected));
  });
}

test('the fewest nodes with room for an equal share, the tightest of them: as a count-by-count search would pick', (t) => {
  // The search allocateCopies replaced (a filter of every node per count), the reference for random clusters.
  const reference = (capacity: number, nodes: NodeState[]): string[] => {
    const byFreeRoom = [...nodes].sort((a, b) => a.capacity - a.reserved - (b.capacity - b.reserved) || (a.id < b.id ? -1 : 1));
    for (let count = 1; count <= nodes.length; count++) {
      const fitting = byFreeRoom.filter((n) => n.capacity - n.reserved >= capacity / count);
      if (fitting.length >= count) return fitting.slice(0, count).map((n) => n.id);
    }
    return [];
  };
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  let spread = 0;
  for (let round = 0; round < 300; round++) {
    const nodes = Array.from({ length: 1 + Math.floor(random() * 60) }, (_, i) =>
      // Whole GiB free rooms, so shares tie with them at times.
      node(`n${String(i).padStart(2, '0')}`, 'dram', 8 * GiB, Math.floor(random() * 9) * GiB),
    );
    // In no particular order: the pick must not lean on the order nodes come in.
    for (let i = nodes.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [nodes[i], nodes[j]] = [nodes[j]!, nodes[i]!];
    }
    const capacity = Math.ceil(random() * 40) * GiB;
    const want = reference(capacity, nodes);
    if (want.length === 0) continue; // nothing fits whole: spread by free room, another rule
    const got = allocateJob({ capacity }, nodes);
    t.deepEqual(
      got.nodes.map((n) => n.id),
      want,
      `round ${round}`,
    );
    if (want.length > 1) spread++;
  }
  t.true(spread > 50, `${spread} rounds over several nodes`);
});
