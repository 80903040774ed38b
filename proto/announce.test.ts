import test from 'ava';
import { decodeAnnounceBody, encodeAnnounceBody } from './announce.ts';

const placement = {
  epoch: 7,
  replicas: 2,
  generations: [
    [
      { id: 'dram-0', resp: '127.0.0.1:7001', weight: 1 },
      { id: 'dram-1', resp: '', weight: 0.5 },
    ],
    [{ id: 'dram-0', resp: '127.0.0.1:7001', weight: 1 }],
  ],
};

test('an announce body carries the boot id and the placement, and reads back', (t) => {
  t.deepEqual(decodeAnnounceBody(encodeAnnounceBody('boot-1', placement)!.toString()), { bootId: 'boot-1', placement });
  t.deepEqual(decodeAnnounceBody(encodeAnnounceBody('', placement)!.toString()), { bootId: null, placement });
});

test('a body without a placement is the boot id alone, as before the RESP front door', (t) => {
  t.is(encodeAnnounceBody('', null), null);
  t.is(encodeAnnounceBody('boot-1', null)!.toString(), 'boot-1');
  t.deepEqual(decodeAnnounceBody('boot-1'), { bootId: 'boot-1', placement: null });
  t.deepEqual(decodeAnnounceBody(''), { bootId: null, placement: null });
});

test('a placement that does not parse or has the wrong shape is no placement; the boot id still counts', (t) => {
  for (const bad of ['{', '[]', 'null', '{"epoch":1,"replicas":0,"generations":[]}', '{"epoch":1,"replicas":1,"generations":[[{"id":1}]]}'])
    t.deepEqual(decodeAnnounceBody(`boot-1\n${bad}`), { bootId: 'boot-1', placement: null }, bad);
});
