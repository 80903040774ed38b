import test from 'ava';
import { DEFAULT_BAND, jobLevel, nodeLevel } from './levels.ts';

const MiB = 1024 * 1024;

test('a job holding what its reservation follows (1.25 × held, reset outside [held, 1.5 × held]) is ok, not red', (t) => {
  // Right after a reset: 80 %; at both ends of the range the controller leaves alone.
  t.is(jobLevel(100 * MiB, 125 * MiB), 'ok');
  t.is(jobLevel(100 * MiB, 100 * MiB), 'ok');
  t.is(jobLevel(100 * MiB, 150 * MiB), 'ok');
  // Reserved well above use: before it writes (the hints' reservation), or until the next check trims it.
  t.is(jobLevel(0, 64 * MiB), 'slack');
  t.is(jobLevel(100 * MiB, 151 * MiB), 'slack');
  // More held than reserved: the controller is about to raise the reservation.
  t.is(jobLevel(101 * MiB, 100 * MiB), 'warn');
  t.is(jobLevel(5, 0), 'none', 'nothing reserved');
});

test("a node's load is coloured against the autoscaler's band", (t) => {
  t.is(nodeLevel(null), 'none');
  t.is(nodeLevel(0.1), 'ok', 'below the band: nothing wrong with an idle node');
  t.is(nodeLevel(DEFAULT_BAND.high), 'ok');
  t.is(nodeLevel(0.81), 'warn', 'above the band: a node is about to be added');
  t.is(nodeLevel(0.96), 'hot');
  t.is(nodeLevel(1.4), 'hot', 'CPU past one core');
  t.is(nodeLevel(0.85, { low: 0.7, high: 0.9 }), 'ok', 'a band set with --band');
});
