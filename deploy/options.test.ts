import test from 'ava';
import { SatchelError } from '../proto/index.ts';
import { parseBytes, parseCount, parsePort } from './options.ts';

test('parseBytes: plain numbers, SI and IEC units, any case', (t) => {
  t.is(parseBytes('1048576', '--x'), 1048576);
  t.is(parseBytes('512MiB', '--x'), 512 * 1024 ** 2);
  t.is(parseBytes('2GiB', '--x'), 2 * 1024 ** 3);
  t.is(parseBytes('1.5GB', '--x'), 1.5e9);
  t.is(parseBytes('64kib', '--x'), 65536);
  t.is(parseBytes(' 10 MB ', '--x'), 10e6);
});

test('bad sizes, ports and counts → BAD_REQUEST naming the flag', (t) => {
  for (const bad of ['', 'lots', '-1', '1XB', '1.2.3']) {
    const error = t.throws(() => parseBytes(bad, '--dram-capacity'));
    t.true(error instanceof SatchelError);
    t.is((error as SatchelError).code, 'BAD_REQUEST');
    t.regex(error!.message, /--dram-capacity/);
  }
  for (const bad of ['-1', '65536', '1.5', 'http'])
    t.throws(() => parsePort(bad, '--port'), { instanceOf: SatchelError, message: /--port/ });
  t.is(parsePort('0', '--port'), 0);
  t.is(parsePort('65535', '--port'), 65535);
  for (const bad of ['-1', '65', '1.5', 'two']) t.throws(() => parseCount(bad, '--dram'), { instanceOf: SatchelError, message: /--dram/ });
  t.is(parseCount('0', '--dram'), 0);
  t.is(parseCount('64', '--dram'), 64);
});
