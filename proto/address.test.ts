import test from 'ava';
import { advertisedAddress } from './address.ts';

test('the advertised host replaces the bound one and keeps the bound port', (t) => {
  t.is(advertisedAddress('0.0.0.0:7070', 'satchel-controller.satchel.svc'), 'satchel-controller.satchel.svc:7070');
  t.is(advertisedAddress('[::]:41234', 'satchel-dram-0.satchel-dram'), 'satchel-dram-0.satchel-dram:41234');
  t.is(advertisedAddress('127.0.0.1:5000', undefined), '127.0.0.1:5000');
  t.is(advertisedAddress('127.0.0.1:5000', ''), '127.0.0.1:5000');
});
