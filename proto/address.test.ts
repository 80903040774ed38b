import test from 'ava';
import { advertisedAddress, isHostPort } from './address.ts';

test('the advertised host replaces the bound one and keeps the bound port', (t) => {
  t.is(advertisedAddress('0.0.0.0:7070', 'satchel-controller.satchel.svc'), 'satchel-controller.satchel.svc:7070');
  t.is(advertisedAddress('[::]:41234', 'satchel-dram-0.satchel-dram'), 'satchel-dram-0.satchel-dram:41234');
  t.is(advertisedAddress('127.0.0.1:5000', undefined), '127.0.0.1:5000');
  t.is(advertisedAddress('127.0.0.1:5000', ''), '127.0.0.1:5000');
});

test('isHostPort: what a node or metadata server may register as its address', (t) => {
  for (const ok of ['127.0.0.1:7070', 'satchel-dram-0.satchel-dram:41234', '[::1]:7000', 'localhost:1', 'a:65535'])
    t.true(isHostPort(ok), ok);
  for (const bad of [
    '',
    ':',
    '127.0.0.1',
    '127.0.0.1:0',
    'h:65536',
    'h:-1',
    'h: 80',
    '::::%%',
    'http://h:80',
    'h:80/x',
    '::1:7000',
    'a b:1',
    5,
    null,
    `${'h'.repeat(400)}:1`,
  ]) {
    t.false(isHostPort(bad), String(bad));
  }
});
