import test from 'ava';
import { pino } from 'pino';
import {
  Autoscaler,
  type AutoscalerConfig,
  DEFAULT_AUTOSCALER,
  decideScaling,
  freshMemory,
  type NodeLoad,
  STEP_SHARE,
  type TierMemory,
  tierUtilization,
} from './autoscaler.ts';

const config: AutoscalerConfig = { ...DEFAULT_AUTOSCALER, minNodes: { dram: 1, ssd: 0, hdd: 0 }, maxNodes: { dram: 3, ssd: 2, hdd: 2 } };

function nodes(...loads: [cpu: number, network: number, capacity: number][]): NodeLoad[] {
  return loads.map(([cpu, network, capacity], i) => ({ id: `n${i}`, cpu, network, capacity, used: (i + 1) * 1000 }));
}

/** Runs the policy once a second from t=0 to `seconds` with the same load; returns the decisions. */
function run(load: NodeLoad[], seconds: number, memory: TierMemory = freshMemory(), tier: 'dram' | 'ssd' = 'dram') {
  const out = [];
  for (let s = 0; s <= seconds; s++) out.push(decideScaling(tier, load, memory, config, s * 1000));
  return out;
}

test('the tier utilization is the highest of the mean CPU, network and capacity', (t) => {
  const u = tierUtilization(nodes([0.9, 0.1, 0.2], [0.5, 0.3, 0.2]));
  t.is(u.resource, 'cpu');
  t.is(Math.round(u.value * 100), 70);
  t.is(tierUtilization(nodes([0.1, 0.1, 0.95])).resource, 'capacity');
  t.is(tierUtilization([]).value, 0);
});

/**
 * Band decisions under a steady load: [name, tier, each node's (cpu, network, capacity), the second the decision
 * is due, the action then, what its reason says]. Every decision before that second is `none`: a launch waits
 * for upAfterMs (2 s) above the band, a drain for downAfterMs (20 s) below it. The band is 60–80 %, DRAM has a
 * minimum of 1 and a maximum of 3 nodes, SSD a minimum of 0.
 */
const bandCases: [string, 'dram' | 'ssd', [number, number, number][], number, 'none' | 'launch' | 'drain', RegExp][] = [
  ['inside the band: nothing', 'dram', [[0.7, 0.1, 0.1]], 60, 'none', /dram cpu 70 % inside the band/],
  // Just inside each edge (at exactly 80 % or 60 % the window's mean rounds either way).
  ['just under the top (79 %): inside', 'dram', [[0.79, 0, 0]], 60, 'none', /inside the band/],
  [
    'just over the bottom (61 %): inside',
    'dram',
    [
      [0.61, 0, 0],
      [0.61, 0, 0],
    ],
    60,
    'none',
    /inside the band/,
  ],
  ['CPU above the band for 2 s: launch', 'dram', [[0.95, 0.2, 0.1]], 2, 'launch', /dram cpu 95 % > 80 % over 2 s/],
  ['network above the band: launch', 'dram', [[0.1, 0.9, 0.2]], 2, 'launch', /dram network 90 % > 80 %/],
  ['capacity above the band: launch', 'dram', [[0.1, 0.1, 0.85]], 2, 'launch', /dram capacity 85 % > 80 %/],
  [
    'the mean over the nodes decides: one hot node of two is no launch',
    'dram',
    [
      [0.99, 0, 0],
      [0.5, 0, 0],
    ],
    60,
    'none',
    /dram cpu 75 % inside the band/,
  ],
  [
    'above the band at the maximum of nodes: nothing',
    'dram',
    [
      [0.99, 0, 0],
      [0.99, 0, 0],
      [0.99, 0, 0],
    ],
    10,
    'none',
    /above the band, but at the maximum of 3 nodes/,
  ],
  [
    // 50 % on three nodes is 75 % on two: under the band's top, over its middle (not far below: the whole window).
    'below the band for 20 s, the others staying under it: drain',
    'dram',
    [
      [0.55, 0.1, 0.1],
      [0.45, 0.1, 0.1],
      [0.5, 0.1, 0.1],
    ],
    20,
    'drain',
    /dram cpu 50 % < 60 % over 20 s; one node fewer: 75 %/,
  ],
  [
    // 15 % on three nodes is 22 % on two: at most the band's middle in every second of a quarter window.
    'far below the band for a quarter window (5 s): drain',
    'dram',
    [
      [0.2, 0.1, 0.1],
      [0.1, 0.1, 0.1],
      [0.15, 0.1, 0.1],
    ],
    5,
    'drain',
    /dram cpu at most 15 % over 5 s, far below 60 %; one node fewer: 2[23] %/,
  ],
  [
    'below the band, but one node fewer would be above it: nothing',
    'dram',
    [
      [0.55, 0, 0],
      [0.55, 0, 0],
    ],
    40,
    'none',
    /one node fewer would be 110 %/,
  ],
  ['below the band at the minimum: nothing', 'dram', [[0.01, 0, 0]], 60, 'none', /inside the band|below/],
  ['the last node of a tier with no minimum stays: nothing', 'ssd', [[0.01, 0, 0]], 60, 'none', /one node fewer would be/],
  [
    'no node of a tier with a minimum, within the grace: nothing',
    'dram',
    [],
    59,
    'none',
    /fewer than the minimum: waiting for nodes to register/,
  ],
  ['no node of a tier with a minimum, past the grace: launch', 'dram', [], 60, 'launch', /0 dram nodes, fewer than the minimum of 1/],
];

for (const [name, tier, loads, due, action, reason] of bandCases) {
  test(`band: ${name}`, (t) => {
    const decisions = run(nodes(...loads), due, freshMemory(), tier);
    const last = decisions.at(-1)!;
    t.is(last.action, action, last.reason);
    t.regex(last.reason, reason);
    t.true(
      decisions.slice(0, -1).every((d) => d.action === 'none'),
      'nothing decided before it was due',
    );
  });
}

test('above the band: a launch only after upAfterMs, and then not again until the node joins', (t) => {
  const memory = freshMemory();
  const load = nodes([0.95, 0.2, 0.1]);
  const decisions = run(load, 1, memory);
  t.deepEqual(
    decisions.map((d) => d.action),
    ['none', 'none'],
    'one second above is not enough',
  );
  const launch = decideScaling('dram', load, memory, config, 2000);
  t.is(launch.action, 'launch');
  t.regex(launch.reason, /dram cpu 95 % > 80 % over 2 s/);
  memory.lastActionAt = 2000;
  memory.pendingLaunch = { nodes: 1, launched: 1, at: 2000 };
  t.is(decideScaling('dram', load, memory, config, 20_000).reason, 'waiting for the launched node to join');
  // The node joined; the two are still hot: measured afresh for two seconds with two nodes, then launch again.
  const two = nodes([0.95, 0.2, 0.1], [0.9, 0.2, 0.1]);
  t.is(decideScaling('dram', two, memory, config, 21_000).action, 'none');
  t.is(decideScaling('dram', two, memory, config, 22_000).action, 'none');
  t.is(decideScaling('dram', two, memory, config, 23_000).action, 'launch');
});

test('a launch that never joins stops holding decisions back after launchTimeoutMs', (t) => {
  const memory = freshMemory();
  memory.pendingLaunch = { nodes: 1, launched: 1, at: 0 };
  memory.lastActionAt = 0;
  for (let s = 0; s < config.launchTimeoutMs / 1000; s++) {
    t.is(decideScaling('dram', nodes([0.95, 0, 0]), memory, config, s * 1000).action, 'none');
  }
  t.is(decideScaling('dram', nodes([0.95, 0, 0]), memory, config, config.launchTimeoutMs + 1).action, 'launch');
});

test('below the band: a drain only after downAfterMs, and only if the rest stay under the band', (t) => {
  const cool = nodes([0.5, 0.1, 0.1], [0.5, 0.1, 0.1], [0.5, 0.1, 0.1]);
  const decisions = run(cool, config.downAfterMs / 1000);
  t.true(decisions.slice(0, -1).every((d) => d.action === 'none'));
  t.is(decisions.at(-1)!.action, 'drain');
  t.regex(decisions.at(-1)!.reason, /dram cpu 50 % < 60 % over 20 s; one node fewer: 75 %/);
  // 55 % on two nodes would be 110 % on one: keep both.
  const warm = run(nodes([0.55, 0, 0], [0.55, 0, 0]), 40);
  t.true(warm.every((d) => d.action === 'none'));
  t.regex(warm.at(-1)!.reason, /one node fewer would be 110 %/);
});

test('decisions follow the mean over the window: one odd second neither triggers nor blocks one', (t) => {
  const memory = freshMemory();
  // 36 % of two nodes would be 72 % on one: a drain, but only after the whole window (not far below).
  const cold = nodes([0.36, 0, 0], [0.36, 0, 0]);
  for (let s = 0; s < 20; s++) {
    const load = s === 12 ? nodes([0.9, 0, 0], [0.9, 0, 0]) : cold;
    t.is(decideScaling('dram', load, memory, config, s * 1000).action, 'none', `second ${s}: a spike above the band is no launch`);
  }
  t.is(decideScaling('dram', cold, memory, config, 20_000).action, 'drain', 'a mean of 39 % over 20 s');
  // Bursty load averaging above the band launches although single seconds dip below it.
  const noisy = freshMemory();
  const at = (s: number, cpu: number) => decideScaling('dram', nodes([cpu, 0, 0]), noisy, config, s * 1000);
  t.is(at(0, 0.95).action, 'none');
  t.is(at(1, 0.7).action, 'none');
  t.is(at(2, 0.95).action, 'launch');
});

test('far below the band: every second of the quarter window must say so, and not within a window of a launch', (t) => {
  // A stalled load generator: mostly 30 % of three nodes (45 % on two), every fourth second 50 % (75 % on two).
  const memory = freshMemory();
  const decisions = [];
  for (let s = 0; s <= 20; s++)
    decisions.push(decideScaling('dram', nodes(...Array(3).fill([s % 4 === 0 ? 0.5 : 0.3, 0, 0])), memory, config, s * 1000));
  t.true(
    decisions.slice(0, -1).every((d) => d.action === 'none'),
    'one second over the middle in every quarter window holds the quick drain back',
  );
  t.is(decisions.at(-1)!.action, 'drain');
  t.regex(decisions.at(-1)!.reason, /< 60 % over 20 s/, 'the whole window decided');
  // Just launched: the new node is still filling, so a falling load waits the whole window.
  const launched = freshMemory();
  launched.lastLaunchAt = 0;
  const after = [];
  for (let s = 1; s <= 20; s++) after.push(decideScaling('dram', nodes([0.2, 0, 0], [0.2, 0, 0], [0.2, 0, 0]), launched, config, s * 1000));
  t.true(after.slice(0, -1).every((d) => d.action === 'none'));
  t.regex(after.at(-1)!.reason, /dram cpu at most 20 % over 5 s, far below/, 'quick again once a window has passed');
  // On its own a drain does not hold the quick rule back: a drain leaves the load on fewer nodes.
  const drained = freshMemory();
  drained.lastActionAt = 0;
  const next = run(nodes([0.2, 0, 0], [0.2, 0, 0]), 20, drained).findIndex((d) => d.action === 'drain');
  t.is(next, config.cooldownMs / 1000, 'the first second after the cool-down');
});

test('a node joining or leaving starts the measurement afresh', (t) => {
  const memory = freshMemory();
  for (let s = 0; s < 19; s++) decideScaling('dram', nodes([0.1, 0, 0], [0.1, 0, 0]), memory, config, s * 1000);
  t.is(decideScaling('dram', nodes([0.1, 0, 0], [0.1, 0, 0], [0.1, 0, 0]), memory, config, 19_000).action, 'none');
  t.is(
    decideScaling('dram', nodes([0.1, 0, 0], [0.1, 0, 0], [0.1, 0, 0]), memory, config, 20_000).action,
    'none',
    'one second of three nodes is not 20 s',
  );
});

test('never below the minimum, never the last node; below the minimum, launch', (t) => {
  t.true(
    run(nodes([0.01, 0, 0]), 60).every((d) => d.action === 'none'),
    'one DRAM node (the minimum) stays',
  );
  t.true(
    run(nodes([0.01, 0, 0]), 60, freshMemory(), 'ssd').every((d) => d.action === 'none'),
    'the last SSD node stays although the minimum is 0',
  );
  const memory = freshMemory();
  t.is(decideScaling('dram', [], memory, config, 0).action, 'none', 'nodes may still be registering');
  const empty = decideScaling('dram', [], memory, config, config.minGraceMs);
  t.is(empty.action, 'launch');
  t.regex(empty.reason, /fewer than the minimum of 1/);
});

test('nothing while a drain runs, and nothing during the cool-down', (t) => {
  const memory = freshMemory();
  memory.draining = true;
  t.is(decideScaling('dram', nodes([0.99, 0, 0]), memory, config, 100_000).reason, 'a drain is in progress');
  memory.draining = false;
  memory.lastActionAt = 100_000;
  for (let s = 0; s < 5; s++) decideScaling('dram', nodes([0.99, 0, 0]), memory, config, 101_000 + s * 1000);
  t.is(decideScaling('dram', nodes([0.99, 0, 0]), memory, config, 100_000 + config.cooldownMs - 1).reason, 'cooling down');
});

test('ticks that are not exactly a second apart still complete the window: a drain after ~20 s below the band', (t) => {
  const memory = freshMemory();
  const load = nodes([0.38, 0, 0], [0.38, 0, 0]);
  let at = 0;
  let decided: number | null = null;
  // A timer tick of 1003 ms, as setInterval gives under load: the history never lands on now - 20 000 exactly.
  for (let i = 0; i < 40 && decided === null; i++, at += 1003) {
    if (decideScaling('dram', load, memory, config, at).action === 'drain') decided = at;
  }
  t.not(decided, null, 'a drain was decided');
  t.true(decided! >= config.downAfterMs && decided! <= config.downAfterMs + 1003, `decided at ${decided} ms`);
});

test('a large tier far below the band drains a twentieth of its nodes at once; one of up to 20 nodes at a time', (t) => {
  const many = (count: number, cpu: number) =>
    Array.from({ length: count }, (_, i) => ({ id: `n${i}`, cpu, network: 0, capacity: 0, used: i }));
  const big = { ...config, minNodes: { dram: 1, ssd: 0, hdd: 0 }, maxNodes: { dram: 2_000, ssd: 0, hdd: 0 } };
  const decide = (count: number, cpu: number, cfg = big) => {
    const memory = freshMemory();
    let last = decideScaling('dram', many(count, cpu), memory, cfg, 0);
    for (let s = 1; s <= cfg.downAfterMs / 1000; s++) last = decideScaling('dram', many(count, cpu), memory, cfg, s * 1000);
    return last;
  };
  const thousand = decide(1_000, 0.1);
  t.is(thousand.action, 'drain');
  t.is(thousand.action === 'drain' && thousand.nodes, 1_000 * STEP_SHARE);
  t.regex(thousand.reason, /50 nodes fewer: 11 %/);
  const twenty = decide(20, 0.1);
  t.is(twenty.action === 'drain' && twenty.nodes, 1);
  t.regex(twenty.reason, /one node fewer/);
  t.is(decide(21, 0.1).action === 'drain' && (decide(21, 0.1) as { nodes: number }).nodes, 2);
  // Never past the middle of the band: with a band of 44–48 %, 43.9 % on 2,000 nodes leaves 91 fewer (46 %), not 100.
  const narrow = { ...big, low: 0.44, high: 0.48 };
  const wide = decide(2_000, 0.439, narrow);
  t.is(wide.action === 'drain' && wide.nodes, 91, wide.reason);
  // Never below the minimum.
  const floor = decide(30, 0.01, { ...big, minNodes: { dram: 29, ssd: 0, hdd: 0 } });
  t.is(floor.action === 'drain' && floor.nodes, 1);
});

test('the Autoscaler removes every node of a many-node drain, emptiest first, and decides again only after all are gone', async (t) => {
  const removed: string[] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const loads = Array.from({ length: 40 }, (_, i) => ({ id: `n${i}`, cpu: 0.1, network: 0, capacity: 0, used: 40 - i }));
  const autoscaler = new Autoscaler(
    {
      loads: (tier) => (tier === 'dram' ? loads.filter((n) => !removed.includes(n.id)) : []),
      launchNode: async () => {},
      pickForRemoval: (_tier, candidates) => candidates[0] ?? null,
      removeNode: async (node) => {
        removed.push(node);
        await gate;
      },
      scaleEvent: () => {},
    },
    { ...config, maxNodes: { dram: 100, ssd: 0, hdd: 0 } },
    pino({ level: 'silent' }),
  );
  for (let s = 0; s <= config.downAfterMs / 1000; s++) autoscaler.tick(s * 1000);
  t.deepEqual(removed, ['n39', 'n38'], 'two of 40, the emptiest');
  for (let s = 21; s < 60; s++) autoscaler.tick(s * 1000);
  t.is(removed.length, 2, 'nothing more while they drain');
  release();
  await new Promise((resolve) => setImmediate(resolve));
});

test('a large tier far above the band launches up to a twentieth of its nodes at once, and waits for all of them', (t) => {
  const many = (count: number, cpu: number) =>
    Array.from({ length: count }, (_, i) => ({ id: `n${i}`, cpu, network: 0, capacity: 0, used: i }));
  const big = { ...config, maxNodes: { dram: 2_000, ssd: 0, hdd: 0 } };
  const memory = freshMemory();
  decideScaling('dram', many(100, 0.95), memory, big, 0);
  decideScaling('dram', many(100, 0.95), memory, big, 1_000);
  const launch = decideScaling('dram', many(100, 0.95), memory, big, 2_000);
  t.is(launch.action === 'launch' && launch.nodes, 5, launch.reason);
  t.regex(launch.reason, /5 nodes more: 90 %/);
  memory.lastActionAt = 2_000;
  memory.pendingLaunch = { nodes: 100, launched: 5, at: 2_000 };
  t.is(decideScaling('dram', many(104, 0.95), memory, big, 20_000).reason, 'waiting for the launched nodes to join', 'four of five joined');
  t.not(decideScaling('dram', many(105, 0.95), memory, big, 21_000).reason, 'waiting for the launched nodes to join');
  // Just above the band: only as many as bring it to the middle (band 68–70 %, 72 % on 1,000 nodes: 44 bring it
  // to 69 %, where 50 may).
  const near = freshMemory();
  const narrow = { ...big, low: 0.68, high: 0.7 };
  for (let s = 0; s < 2; s++) decideScaling('dram', many(1_000, 0.72), near, narrow, s * 1_000);
  const one = decideScaling('dram', many(1_000, 0.72), near, narrow, 2_000);
  t.is(one.action === 'launch' && one.nodes, 44, one.reason);
  // Small tiers launch one at a time; never past the maximum.
  const small = freshMemory();
  for (let s = 0; s < 2; s++) decideScaling('dram', many(20, 0.95), small, big, s * 1_000);
  const single = decideScaling('dram', many(20, 0.95), small, big, 2_000);
  t.is(single.action === 'launch' && single.nodes, 1);
  const capped = freshMemory();
  const top = { ...big, maxNodes: { dram: 102, ssd: 0, hdd: 0 } };
  for (let s = 0; s < 2; s++) decideScaling('dram', many(100, 0.95), capped, top, s * 1_000);
  const two = decideScaling('dram', many(100, 0.95), capped, top, 2_000);
  t.is(two.action === 'launch' && two.nodes, 2);
});

test("a many-node drain takes the provisioner's picks in turn, each out of the candidates once picked", (t) => {
  const removed: string[] = [];
  const asked: number[] = [];
  const loads = Array.from({ length: 40 }, (_, i) => ({ id: `n${i}`, cpu: 0.1, network: 0, capacity: 0, used: 40 - i }));
  const autoscaler = new Autoscaler(
    {
      loads: (tier) => (tier === 'dram' ? loads : []),
      launchNode: async () => {},
      // A StatefulSet's rule: the lowest ordinal here (the emptiest would be n39), whatever order they come in.
      pickForRemoval: (_tier, candidates) => {
        asked.push(candidates.length);
        return [...candidates].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))[0] ?? null;
      },
      removeNode: async (node) => {
        removed.push(node);
      },
      scaleEvent: () => {},
    },
    { ...config, maxNodes: { dram: 100, ssd: 0, hdd: 0 } },
    pino({ level: 'silent' }),
  );
  for (let s = 0; s <= config.downAfterMs / 1000; s++) autoscaler.tick(s * 1000);
  t.deepEqual(removed, ['n0', 'n1']);
  t.deepEqual(asked, [40, 39]);
});
