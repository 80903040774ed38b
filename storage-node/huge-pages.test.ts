import { readFileSync } from 'node:fs';
import test from 'ava';
import pino from 'pino';
import { HugePageSwitch } from './huge-pages.ts';

const logger = pino({ level: 'silent' });

test('huge pages go off after idleMs without a request and come back at the first one', async (t) => {
  let ops = 0;
  let clock = 0;
  const calls: boolean[] = [];
  const pages = await HugePageSwitch.start({
    logger,
    activity: () => ops,
    idleMs: 10_000,
    setDisabled: (disabled) => calls.push(disabled),
    now: () => clock,
  });
  t.teardown(() => pages.close());
  clock = 9_999;
  pages.check();
  t.deepEqual(calls, [], 'not idle long enough');
  ops++;
  clock = 15_000;
  pages.check();
  clock = 24_999;
  pages.check();
  t.deepEqual(calls, [], 'the request at 15 s restarted the wait');
  clock = 25_000;
  pages.check();
  pages.check();
  t.deepEqual(calls, [true], 'off once, at 10 s idle');
  t.false(pages.on);
  ops++;
  pages.check();
  t.deepEqual(calls, [true, false], 'back on at the first request');
  t.true(pages.on);
  t.is(pages.turnedOff, 1);
});

test('a failing switch is logged once, leaves the state as it was and is not tried again', async (t) => {
  let clock = 0;
  let tries = 0;
  const warnings: unknown[] = [];
  const pages = await HugePageSwitch.start({
    logger: { ...logger, warn: (...args: unknown[]) => warnings.push(args) } as unknown as typeof logger,
    activity: () => 0,
    idleMs: 1,
    setDisabled: () => {
      tries++;
      throw new Error('EINVAL');
    },
    now: () => clock,
  });
  t.teardown(() => pages.close());
  clock = 5;
  pages.check();
  clock = 10;
  pages.check();
  t.true(pages.on);
  t.is(pages.turnedOff, 0);
  t.is(tries, 1);
  t.is(warnings.length, 1);
});

const thpStatus = () => /^THP_enabled:\s+(\d)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];

test('on Linux it is the process flag the kernel reports (THP_enabled in /proc/self/status)', async (t) => {
  if (process.platform !== 'linux' || thpStatus() === undefined) {
    t.log('no THP_enabled line here: nothing to switch');
    t.pass();
    return;
  }
  let ops = 0;
  let clock = 0;
  const pages = await HugePageSwitch.start({ logger, activity: () => ops, idleMs: 1, now: () => clock });
  t.teardown(() => pages.close());
  t.is(thpStatus(), '1');
  clock = 2;
  pages.check();
  t.is(thpStatus(), '0');
  ops++;
  pages.check();
  t.is(thpStatus(), '1');
});
