import test from 'ava';
import { SatchelError } from '../../proto/index.ts';
import { type DeviceEmulation, EmulatedDevice } from './device.ts';

test('no emulation unless asked for: no device at all, so the engine skips the call', (t) => {
  for (const options of [undefined, {}, { seekMs: 0, bandwidthBytesPerSec: 0 }])
    t.is(EmulatedDevice.from(options), null, JSON.stringify(options));
  for (const options of [{ seekMs: 1 }, { bandwidthBytesPerSec: 1 }])
    t.true(EmulatedDevice.from(options) instanceof EmulatedDevice, JSON.stringify(options));
});

test('negative or NaN emulation settings are BAD_REQUEST', (t) => {
  for (const options of [{ seekMs: -1 }, { bandwidthBytesPerSec: -1 }, { seekMs: Number.NaN }] as DeviceEmulation[]) {
    t.is(t.throws(() => EmulatedDevice.from(options), { instanceOf: SatchelError })?.code, 'BAD_REQUEST', JSON.stringify(options));
  }
});

test('transfers queue behind one head: each pays its seek and its bytes at the set rate after the ones before', async (t) => {
  const device = EmulatedDevice.from({ seekMs: 20, bandwidthBytesPerSec: 1_000_000 })!;
  const start = performance.now();
  const finished: number[] = [];
  // 20 ms seek each, plus 30 ms for 30 kB at 1 MB/s: 50, 100, 150 ms.
  await Promise.all([0, 1, 2].map(() => device.transfer(30_000).then(() => finished.push(performance.now() - start))));
  t.true(finished[2]! >= 148, `the third finished after ${finished[2]!.toFixed(0)} ms`);
  t.true(finished[0]! >= 48, `the first finished after ${finished[0]!.toFixed(0)} ms`);
});
