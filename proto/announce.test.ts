import test from 'ava';
import { announcedPlacement, decodeAnnounceBody, encodeAnnounceBody } from './announce.ts';

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

test('a node lost to a single-copy job is marked so from the wire placement through an announcement; the others are not', (t) => {
  const announced = announcedPlacement({
    jobId: 'j',
    epoch: 3,
    generations: [
      {
        nodes: [
          { id: 'dram-0', address: '127.0.0.1:6001', weight: 1, respAddress: '127.0.0.1:7001', lost: true },
          { id: 'dram-1', address: '127.0.0.1:6002', weight: 1, lost: false },
        ],
      },
    ],
    blockSize: 1,
    maxValueBytes: 1,
  });
  t.deepEqual(announced.generations[0], [
    { id: 'dram-0', resp: '127.0.0.1:7001', address: '127.0.0.1:6001', weight: 1, lost: true },
    { id: 'dram-1', resp: '', address: '127.0.0.1:6002', weight: 1 },
  ]);
  t.deepEqual(decodeAnnounceBody(encodeAnnounceBody('boot-1', announced)!.toString()).placement, announced);
});
