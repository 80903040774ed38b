import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test from 'ava';
import { pino } from 'pino';
import { HeapTrimmer } from './heap-trim.ts';

const logger = pino({ level: 'silent' });

test('the trimmer calls its trim on its period and stops when closed', async (t) => {
  let calls = 0;
  const trimmer = await HeapTrimmer.start({ logger, everyMs: 20, trim: () => calls++ });
  t.true(trimmer.active);
  for (let waited = 0; calls < 2 && waited < 5_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  trimmer.close();
  const seen = calls;
  t.true(seen >= 2, `${seen} calls`);
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.is(calls, seen, 'none after close');
});

test('a slow trim pushes the next one back: at most a thousandth of the time in trims, within the bounds', async (t) => {
  let clock = 0;
  let takes = 0;
  const trimmer = await HeapTrimmer.start({
    logger,
    everyMs: 3_600_000, // the timer stays out of the way: trims are called here
    maxEveryMs: 7_200_000,
    trim: () => {
      clock += takes;
    },
    now: () => clock,
  });
  t.teardown(() => trimmer.close());
  t.is(trimmer.nextWaitMs, 3_600_000, 'before any trim: the period');
  takes = 0.4;
  trimmer.trim();
  t.is(trimmer.lastTrimMs, 0.4);
  t.is(trimmer.nextWaitMs, 3_600_000, 'a quick trim keeps the period');
  takes = 5_000;
  trimmer.trim();
  t.is(trimmer.nextWaitMs, 5_000_000, '5 s of trim: the next 5,000 s later');
  takes = 60_000;
  trimmer.trim();
  t.is(trimmer.nextWaitMs, 7_200_000, 'never past the longest wait');
  t.is(trimmer.calls, 3);
});

test('with the default bounds a 40 ms trim puts the next 40 s away, a 1 ms one 10 s', async (t) => {
  let clock = 0;
  let takes = 40;
  const trimmer = await HeapTrimmer.start({ logger, trim: () => (clock += takes), now: () => clock });
  t.teardown(() => trimmer.close());
  trimmer.trim();
  t.is(trimmer.nextWaitMs, 40_000);
  takes = 1;
  trimmer.trim();
  t.is(trimmer.nextWaitMs, 10_000);
  takes = 500;
  trimmer.trim();
  t.is(trimmer.nextWaitMs, 120_000);
});

test('on Linux with glibc, a trim gives back heap memory freed below the top', async (t) => {
  if (process.platform !== 'linux') {
    t.pass('not Linux');
    return;
  }
  const trimmer = await HeapTrimmer.start({ logger, everyMs: 3_600_000 });
  t.teardown(() => trimmer.close());
  t.true(trimmer.active, 'malloc_trim found through koffi');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // 120 MB of 60 KB buffers (under glibc's mmap threshold: on the heap), then one kept above them so glibc
  // cannot simply lower the top once they are freed.
  let buffers: Buffer[] | null = Array.from({ length: 2000 }, () => Buffer.allocUnsafeSlow(60_000).fill(1));
  const pin = Buffer.allocUnsafeSlow(100).fill(2);
  t.is(buffers.length, 2000);
  buffers = null;
  gc();
  await new Promise((resolve) => setTimeout(resolve, 200)); // V8 frees array buffers off the main thread
  const before = process.memoryUsage().rss;
  trimmer.trim();
  const after = process.memoryUsage().rss;
  t.is(pin[0], 2);
  t.true(before - after > 50 * 1024 * 1024, `RSS ${Math.round(before / 1e6)} → ${Math.round(after / 1e6)} MB`);
});
