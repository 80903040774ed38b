import test from 'ava';
import { countRelaunches, loadShape } from './elasticity.ts';

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
