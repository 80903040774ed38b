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
  t.is(keysLostIn(job(both, false)), null, 'a single-copy job: its lost node answers for itself (resp-foreign.ts)');
  t.is(keysLostIn(undefined), null);
});
