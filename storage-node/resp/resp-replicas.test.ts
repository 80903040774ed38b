/** What the RESP front door knows of a replicated job's lost keys from its announced placement alone. */
import test from 'ava';
import type { AnnouncedNode, AnnouncedPlacement } from '../../proto/index.ts';
import type { AnnouncedJob } from '../job-table.ts';
import { keysLostIn } from './resp-replicas.ts';

const node = (id: string, lost = false): AnnouncedNode => ({ id, resp: `${id}:2`, weight: 1, ...(lost ? { lost: true as const } : {}) });
const job = (placement: AnnouncedPlacement, replicated = true): AnnouncedJob => ({
  epoch: placement.epoch,
  moved: false,
  replicated,
  copyingUntil: 0,
  traffic: new Float64Array(8),
  placement,
});

test('keysLostIn: a remnant where some key has every holder marked lost makes SCAN and DBSIZE an error; anything less does not', (t) => {
  const newest = [node('a'), node('b')];
  const both: AnnouncedPlacement = { epoch: 4, replicas: 2, generations: [newest, [node('x', true), node('y', true)]] };
  t.regex(keysLostIn(job(both)) ?? '', /nodes x, y restarted .* a scan would miss them/);
  t.is(keysLostIn(job(both)), keysLostIn(job(both)), 'the same answer');
  // One of three marked: every key of the remnant has a live holder (it was restored from, or will be).
  t.is(keysLostIn(job({ ...both, generations: [newest, [node('x', true), node('y'), node('z')]] })), null);
  t.is(keysLostIn(job({ ...both, generations: [newest] })), null, 'no remnant');
  // One copy: a node restarted and placed on the job again, its dead incarnation marked in the remnant under it.
  const single: AnnouncedPlacement = {
    epoch: 5,
    replicas: 1,
    generations: [
      [node('a'), node('x')],
      [node('a'), node('x', true)],
    ],
  };
  t.regex(
    keysLostIn(job(single, false)) ?? '',
    /^node x restarted since the job was placed on it, and the job keeps one copy: a scan would miss/,
  );
  t.is(keysLostIn(job({ ...single, generations: [[node('a'), node('x', true)]] }, false)), null, 'not placed again: it answers for itself');
  t.is(keysLostIn(undefined), null);
});
