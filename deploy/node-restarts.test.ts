import test from 'ava';
import { nextRestartDelay } from './node-restarts.ts';

test('restart waits: 1 s first, doubling while the node dies within a minute of its start, at most 60 s; a minute lived starts over', (t) => {
  const now = 1_000_000;
  t.is(nextRestartDelay(undefined, undefined, now), 1_000, 'the first restart');
  t.is(nextRestartDelay(1_000, now - 5_000, now), 2_000, 'died 5 s after its restart');
  t.is(nextRestartDelay(32_000, now - 100, now), 60_000, 'capped');
  t.is(nextRestartDelay(60_000, now - 100, now), 60_000);
  t.is(nextRestartDelay(60_000, now - 60_000, now), 1_000, 'lived a minute');
});
