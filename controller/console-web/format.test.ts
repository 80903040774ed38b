import test from 'ava';
import { fmtBytes, fmtLatency, fmtMs, logTick } from './format.ts';

test('latencies read in ms, from µs', (t) => {
  t.is(fmtLatency(42), '0.042 ms');
  t.is(fmtLatency(210), '0.21 ms');
  t.is(fmtLatency(3_400), '3.4 ms');
  t.is(fmtLatency(85_000), '85 ms');
  t.is(fmtLatency(1_234_000), '1.2 s');
  t.is(fmtLatency(null), '–');
});

test('a log axis labels 1, 2 and 5 times each power of ten, and leaves the rest blank', (t) => {
  t.deepEqual([0.01, 0.02, 0.03, 0.05, 0.1, 0.4, 1, 2, 5, 7, 10, 20, 100, 1000].map(logTick), [
    '0.01 ms',
    '0.02 ms',
    '',
    '0.05 ms',
    '0.1 ms',
    '',
    '1 ms',
    '2 ms',
    '5 ms',
    '',
    '10 ms',
    '20 ms',
    '100 ms',
    '1.0 s',
  ]);
  t.is(fmtMs(0.2), '0.2 ms');
});

test('sizes in binary units', (t) => {
  t.is(fmtBytes(98), '98 B');
  t.is(fmtBytes(8 * 1024 * 1024), '8.00 MiB');
  t.is(fmtBytes(3.75 * 1024 * 1024), '3.75 MiB');
  t.is(fmtBytes(12 * 1024 ** 3), '12.0 GiB');
  t.is(fmtBytes(undefined), '–');
});
