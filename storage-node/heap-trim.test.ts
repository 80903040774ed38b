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
