import test from 'ava';
import { LatencyRecorder } from './stats.ts';

test('LatencyRecorder: percentiles, p99.9 and max within the histogram’s 3 digits; empty is 0; merged recorders count both', (t) => {
  const empty = new LatencyRecorder();
  t.deepEqual(empty.summary(), { p50_us: 0, p99_us: 0, p999_us: 0, max_us: 0 });
  const a = new LatencyRecorder();
  // 1..10,000 µs once each: p50 5,000, p99 9,900, p99.9 9,990, max 10,000.
  for (let i = 1; i <= 10_000; i++) a.add(i);
  const near = (got: number, want: number) => t.true(Math.abs(got - want) <= want * 0.001, `${got} vs ${want}`);
  near(a.percentile(50), 5_000);
  near(a.percentile(99), 9_900);
  near(a.percentile(99.9), 9_990);
  near(a.max, 10_000);
  t.is(a.count, 10_000);
  // Sub-microsecond samples keep their precision (recorded in ns); nothing is recorded below 1 ns.
  const b = new LatencyRecorder();
  b.add(0.25);
  b.add(0);
  t.is(b.max, 0.25);
  a.merge(b);
  t.is(a.count, 10_002);
  near(a.summary().p999_us, 9_989);
});
