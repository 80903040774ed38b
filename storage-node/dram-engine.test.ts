// What only the DRAM engine promises. The behaviour every engine shares (put/get/list/capacity/usage) is
// checked once for all of them in engine-conformance.ts.
import test from 'ava';
import { DramEngine } from './dram-engine.ts';
import { entryCost } from './engine.ts';

const MiB = 1024 * 1024;
const buf = (text: string) => Buffer.from(text);

test('answers synchronously: the node hot path never waits a tick on DRAM', (t) => {
  const engine = new DramEngine(MiB);
  const put = engine.put('job', 'k', buf('v'), 0);
  t.false(put instanceof Promise);
  t.deepEqual(put, { ok: true, replaced: undefined, seq: 1 });
  const got = engine.get('job', 'k');
  t.false((got as unknown) instanceof Promise);
  t.deepEqual(got?.value, buf('v'));
  t.is(engine.used, entryCost('k', 1));
  let calls = 0;
  const update = engine.update('job', 'k', (old) => {
    calls++;
    return Buffer.concat([old!.value, buf('w')]);
  });
  t.false(update instanceof Promise);
  t.is(calls, 1, 'compute ran before update returned, once');
  t.deepEqual(update, { ok: true, replaced: { value: buf('v'), flags: 0, epoch: 0, seq: 1 }, seq: 2 });
  t.deepEqual(engine.get('job', 'k'), { value: buf('vw'), flags: 0, epoch: 0, seq: 2 });
});

test('close frees everything', (t) => {
  const engine = new DramEngine(MiB);
  engine.put('job', 'k', buf('v'), 0);
  engine.close();
  t.is(engine.used, 0);
  t.is(engine.get('job', 'k'), undefined);
});
