import test from 'ava';
import { fdsFlat } from './soak-report.ts';

test('fdsFlat: drift within 8 or 10 %, or within what the clients can hold open under load; a leak is not', (t) => {
  t.true(fdsFlat(23, 24), 'idle before and after');
  t.true(fdsFlat(23, 31));
  t.false(fdsFlat(23, 32), 'nine more when idle is a leak');
  t.true(fdsFlat(200, 220), '10 % of a busy server');
  t.false(fdsFlat(200, 221));
  t.true(fdsFlat(45, 69, 68), 'connected functions come and go under load');
  t.false(fdsFlat(45, 45 + 69, 68), 'more than every client could hold open');
});
