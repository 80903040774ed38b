/**
 * A single-copy job's placement that marks this node lost (it restarted since the job was placed on it) makes its
 * keys a final error here; anything else stays TRYAGAIN (resp-foreign.ts, resp-errors.ts).
 */
import test from 'ava';
import type { AnnouncedPlacement } from '../../proto/index.ts';
import { newJobTraffic } from '../metrics.ts';
import { respErrorText, respFinalErrorText } from './resp-errors.ts';
import { lostKeys, lostOwner } from './resp-foreign.ts';

function view(placement: AnnouncedPlacement | null) {
  return {
    epoch: placement?.epoch ?? 0,
    moved: false,
    replicated: (placement?.replicas ?? 1) > 1,
    copyingUntil: 0,
    traffic: newJobTraffic(),
    placement,
    foreign: true as const,
  };
}

const placement = (replicas: number, lost: boolean): AnnouncedPlacement => ({
  epoch: 4,
  replicas,
  generations: [
    [
      { id: 'dram-1', resp: '127.0.0.1:7002', weight: 1 },
      { id: 'dram-2', resp: '127.0.0.1:7003', weight: 1 },
    ],
    [{ id: 'dram-0', resp: '127.0.0.1:7001', weight: 1, ...(lost ? { lost: true as const } : {}) }],
  ],
});

test('lostOwner: only a single-copy job’s placement marking this very node lost, in any generation', (t) => {
  t.true(lostOwner(view(placement(1, true)), 'dram-0'));
  t.false(lostOwner(view(placement(1, true)), 'dram-1'), 'another node is marked');
  t.false(lostOwner(view(placement(1, false)), 'dram-0'), 'not marked: an announcement may be on its way');
  t.false(lostOwner(view(placement(2, true)), 'dram-0'), 'a replicated job: its copies are restored elsewhere');
  t.false(lostOwner(view(null), 'dram-0'));
});

test('the final error is ERR with the Satchel code, never a prefix cluster clients retry', (t) => {
  const text = respFinalErrorText('UNAVAILABLE', lostKeys('dram-0', 'job-1'));
  t.is(
    text,
    'ERR node dram-0 restarted since job job-1 was placed on it: the keys it held are gone, and the job keeps one copy [UNAVAILABLE]',
  );
  t.notRegex(text, /^(TRYAGAIN|MOVED|ASK|CLUSTERDOWN)\b/);
  t.regex(respErrorText('UNAVAILABLE', 'x'), /^TRYAGAIN /, 'UNAVAILABLE is otherwise retried');
  t.is(respFinalErrorText('TIMEOUT', 'a\r\nb'), 'ERR a b [TIMEOUT]', 'one line');
});
