import test from 'ava';
import { countRelaunches, loadShape, oracleNodeSeconds } from './elasticity.ts';

const event = (kind: 'scale-up' | 'scale-down' | 'node-joined', second: number, tier = 'dram') => ({
  kind,
  tier,
  at: new Date(Date.UTC(2026, 11, 5, 19, 0, second)).toISOString(),
});

test('a launch within the window after a drain of its tier is a relaunch; later, or of another tier, is not', (t) => {
  const events = [
    event('scale-up', 0),
    event('scale-down', 10),
    event('node-joined', 12),
    event('scale-up', 18), // 8 s after the drain: flapping
    event('scale-down', 20, 'ssd'),
    event('scale-up', 30), // 20 s after the dram drain
    event('scale-up', 31, 'hdd'), // no drain of hdd before
  ];
  t.is(countRelaunches(events, 16_000), 1);
  t.is(countRelaunches(events, 20_000), 2, 'the window is inclusive');
  t.is(countRelaunches(events, 1_000), 0);
  t.is(countRelaunches([], 16_000), 0);
});

test('the load rises, holds at the peak, falls, then idles at 5 %', (t) => {
  t.is(loadShape(0), 0);
  t.is(loadShape(0.4), 1);
  t.true(loadShape(0.7) < 1 && loadShape(0.7) > 0.05);
  t.is(loadShape(0.9), 0.05);
});

test('the oracle runs as few nodes as keep the load under the band top, on a mean over the launch window', (t) => {
  const limits = { minNodes: 1, maxNodes: 6 };
  const at = (utilization: number, nodes: number) => ({ nodes: { dram: nodes }, utilization: { dram: utilization } });
  // Loads in nodes' worth: 0.4, 1.6 (exactly two nodes at 80 %), 2.4, 0.6, then a one-second burst to 3.0.
  const samples = [at(0.4, 1), at(0.8, 2), at(0.8, 3), at(0.2, 3), at(1.0, 3)];
  // One-second window: 1, 2, 3, 1 (0.6 / 0.8), 4 (3.75).
  t.is(oracleNodeSeconds(samples, 0.8, 1, limits), 11);
  // The burst alone: a one-second window takes it whole, a two-second one averages it with the second before.
  t.is(oracleNodeSeconds(samples.slice(3), 0.8, 1, limits), 5);
  t.is(oracleNodeSeconds(samples.slice(3), 0.8, 2, limits), 4, '1 (0.75), then 3 (1.8 / 0.8 = 2.25)');
  t.is(oracleNodeSeconds([at(0, 1), at(0.1, 1)], 0.8, 2, limits), 2, 'never fewer than the minimum');
  t.is(oracleNodeSeconds([at(0, 1)], 0.8, 2, { minNodes: 0, maxNodes: 6 }), 0);
  t.is(oracleNodeSeconds(samples, 0.8, 1, { minNodes: 1, maxNodes: 3 }), 10, 'never more than the maximum: the burst holds 3');
  // Tiers add up.
  t.is(oracleNodeSeconds([{ nodes: { dram: 2, ssd: 1 }, utilization: { dram: 0.8, ssd: 0.5 } }], 0.8, 1, limits), 3);
});
