import test from 'ava';
import { idleReading } from './soak-servers.ts';

/** A reader that hands out `fds` one reading at a time (the last one for ever after), rss 100 each time. */
function scripted(fds: number[]): { read: (pid: number) => Promise<[number, number]>; calls: () => number } {
  let n = 0;
  return {
    read: async () => [100, fds[Math.min(n++, fds.length - 1)]!],
    calls: () => n,
  };
}

/** What the descriptors are: read once, at the end. */
const describe = async () => ['/tmp/x', 'socket'];

test('a quiet reading is the median of three', async (t) => {
  const reader = scripted([30, 41, 29, 50]);
  t.deepEqual(await idleReading(7, { read: reader.read, describe, pauseMs: 0 }), { rss: 100, fds: 30, targets: ['/tmp/x', 'socket'] });
  t.is(reader.calls(), 3);
});

test('settling: readings go on until the last three agree, and those count', async (t) => {
  // What a node did after a soak: its jobs' files and connections closed over a few seconds.
  const reader = scripted([41, 37, 33, 29, 29, 29, 29]);
  t.deepEqual(await idleReading(7, { read: reader.read, describe, pauseMs: 0, settleMs: 10_000 }), {
    rss: 100,
    fds: 29,
    targets: ['/tmp/x', 'socket'],
  });
  t.is(reader.calls(), 6);
});

test('settling stops at its deadline when the count keeps moving', async (t) => {
  const reader = scripted(Array.from({ length: 1000 }, (_, i) => i));
  const reading = await idleReading(7, { read: reader.read, describe, pauseMs: 5, settleMs: 50 });
  t.true(reader.calls() >= 3 && reader.calls() < 100, `${reader.calls()} readings`);
  t.is(reading.fds, reader.calls() - 2, 'the median of the last three');
});

test('no process, no reading', async (t) => {
  t.deepEqual(await idleReading(null, { settleMs: 10_000 }), { rss: null, fds: null, targets: null });
});
