/**
 * What a node serves and when: only jobs the controller announced to this process (job-table.ts), replicated
 * jobs only within the lease the controller grants, and writes ordered by their versions (engine.ts) — all on
 * the wire, against a real server.
 */

import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import type { NodeConnection } from '../proto/index.ts';
import { ADMIN_SUBJECT, AnnounceFlag, DROP_MOVED, DropFlag, Flag, Op, Status, signToken, splitIncrements } from '../proto/index.ts';
import { rejection } from '../test/helpers/assert.ts';
import { connect } from '../test/helpers/node-session.ts';
import { DramEngine } from './dram-engine.ts';
import { StorageServer } from './server.ts';

const secret = randomBytes(32);
const adminToken = signToken(secret, ADMIN_SUBJECT);
const logger = pino({ level: 'silent' });
const BOOT = 'boot-one';

async function startNode(t: ExecutionContext): Promise<{ server: StorageServer; address: string }> {
  const server = new StorageServer({
    id: 'dram-test',
    engine: new DramEngine(64 * 1024 * 1024),
    secret,
    logger,
    announcedJobsOnly: true,
    bootId: BOOT,
  });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  return { server, address };
}

async function announce(admin: NodeConnection, job: string, epoch: number, flags = 0, bootId = BOOT): Promise<number> {
  return (await admin.request({ op: Op.ANNOUNCE, flags, arg: epoch, key: job, value: Buffer.from(bootId) })).status;
}

test('a job the controller did not announce to this process is UNAVAILABLE, never NOT_FOUND; announced, it is served', async (t) => {
  const { address } = await startNode(t);
  const c = connect(t, address, signToken(secret, 'job-a'));
  for (const [op, value] of [
    [Op.GET, null],
    [Op.STAT, null],
    [Op.PUT, Buffer.from('v')],
    [Op.DELETE, null],
    [Op.LIST, null],
    [Op.INCR, Buffer.alloc(8)],
  ] as const) {
    const error = await rejection(t, c.request({ op, epoch: 1, key: 'k', value }));
    t.is(error.code, 'UNAVAILABLE', `op ${op}`);
    t.regex(error.message, /does not hold job job-a/);
  }
  const admin = connect(t, address, adminToken);
  // An announcement meant for another incarnation of this node id is refused: this process holds none of it.
  t.regex(
    (await rejection(t, announce(admin, 'job-a', 1, 0, 'boot-before-the-restart'))).message,
    /incarnation boot-before-the-restart; this is boot-one/,
  );
  t.is((await rejection(t, c.request({ op: Op.GET, epoch: 1, key: 'k' }))).code, 'UNAVAILABLE');
  t.is(await announce(admin, 'job-a', 1), Status.OK);
  t.is((await c.request({ op: Op.GET, epoch: 1, key: 'k' })).status, Status.NOT_FOUND);
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.from('v') })).status, Status.OK);
  t.is((await c.request({ op: Op.GET, epoch: 1, key: 'k' })).body.toString(), 'v');
  // Another job is still refused.
  const b = connect(t, address, signToken(secret, 'job-b'));
  t.is((await rejection(t, b.request({ op: Op.GET, epoch: 1, key: 'k' }))).code, 'UNAVAILABLE');
});

test('a job that moved answers STALE with its epoch; a deregistered one NO_SUCH_JOB, and an announcement cannot bring it back', async (t) => {
  const { address } = await startNode(t);
  const admin = connect(t, address, adminToken);
  t.is(await announce(admin, 'job-a', 3), Status.OK);
  t.is(await announce(admin, 'job-b', 1), Status.OK);
  const a = connect(t, address, signToken(secret, 'job-a'));
  t.is((await a.request({ op: Op.PUT, epoch: 3, key: 'k', value: Buffer.from('v') })).status, Status.OK);
  t.is(
    (await admin.request({ op: Op.ANNOUNCE, arg: 4, key: 'job-a' })).status,
    Status.OK,
    'an announcement without a boot id is taken too',
  );
  t.is((await admin.request({ op: Op.DROP_JOB, arg: 1, key: 'job-a' })).status, Status.OK);
  const stale = await a.request({ op: Op.GET, epoch: 4, key: 'k' });
  t.is(stale.status, Status.STALE, 'moved: STALE even at the current epoch, so the client looks up where it went');
  t.is(stale.epoch, 4);
  t.is(await announce(admin, 'job-a', 4), Status.OK);
  t.is(
    (await a.request({ op: Op.GET, epoch: 4, key: 'k' })).status,
    Status.STALE,
    'an announcement of the epoch it moved at does not undo the move',
  );
  t.is(await announce(admin, 'job-a', 5), Status.OK);
  t.is(
    (await a.request({ op: Op.GET, epoch: 5, key: 'k' })).status,
    Status.NOT_FOUND,
    'placed here anew at a later epoch: served, without the old data',
  );
  // Deregistered.
  t.is((await admin.request({ op: Op.DROP_JOB, key: 'job-b' })).status, Status.OK);
  t.is(await announce(admin, 'job-b', 2), Status.OK);
  const b = connect(t, address, signToken(secret, 'job-b'));
  t.is((await rejection(t, b.request({ op: Op.GET, epoch: 2, key: 'k' }))).code, 'NO_SUCH_JOB');
});

test('a replicated job is served only within the lease; a single-copy job regardless; a renewal serves it again', async (t) => {
  const { server, address } = await startNode(t);
  const admin = connect(t, address, adminToken);
  t.is(await announce(admin, 'job-r', 1, AnnounceFlag.REPLICATED), Status.OK);
  t.is(await announce(admin, 'job-s', 1), Status.OK);
  const r = connect(t, address, signToken(secret, 'job-r'));
  const s = connect(t, address, signToken(secret, 'job-s'));
  server.renewLease(Date.now(), 200);
  t.is((await r.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.from('v') })).status, Status.OK);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const error = await rejection(t, r.request({ op: Op.GET, epoch: 1, key: 'k' }));
  t.is(error.code, 'UNAVAILABLE');
  t.regex(error.message, /lease/);
  t.true(server.fenced);
  t.is(
    (await s.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.from('v') })).status,
    Status.OK,
    'a single-copy job is not moved on a loss: served',
  );
  server.renewLease(Date.now(), 10_000);
  t.false(server.fenced);
  t.is((await r.request({ op: Op.GET, epoch: 1, key: 'k' })).body.toString(), 'v');
});

test('versions on the wire: a PUT answers its seq, a REPLICA or COPY lands only when newer, GET VERSION answers it', async (t) => {
  const { address } = await startNode(t);
  const admin = connect(t, address, adminToken);
  t.is(await announce(admin, 'job-a', 2, AnnounceFlag.REPLICATED), Status.OK);
  const c = connect(t, address, signToken(secret, 'job-a'));
  t.is((await c.request({ op: Op.PUT, epoch: 2, key: 'k', value: Buffer.from('one') })).arg, 1);
  t.is((await c.request({ op: Op.PUT, epoch: 2, key: 'k', value: Buffer.from('two') })).arg, 2);
  const versioned = await c.request({ op: Op.GET, flags: Flag.VERSION, epoch: 2, key: 'k' });
  t.deepEqual([versioned.epoch, versioned.arg, versioned.body.toString()], [2, 2, 'two']);
  t.is((await c.request({ op: Op.GET, epoch: 2, key: 'k' })).arg, 3, 'without VERSION, arg is the size');
  // A replica of the primary's write 5 lands; an older one (a reordered push) does not.
  t.is((await c.request({ op: Op.PUT, flags: Flag.REPLICA, epoch: 2, arg: 5, key: 'k', value: Buffer.from('five') })).arg, 1);
  t.is((await c.request({ op: Op.PUT, flags: Flag.REPLICA, epoch: 2, arg: 4, key: 'k', value: Buffer.from('four') })).arg, 0);
  t.is((await c.request({ op: Op.GET, epoch: 2, key: 'k' })).body.toString(), 'five');
  t.is(
    (await c.request({ op: Op.PUT, flags: Flag.REPLICA, epoch: 2, key: 'k', value: Buffer.from('x') })).status,
    Status.BAD_REQUEST,
    'a replica names its version',
  );
  // A copy carries an older epoch as its version: it is not a stale placement, and lands where nothing newer is.
  t.is((await c.request({ op: Op.PUT, flags: Flag.COPY, epoch: 1, arg: 9, key: 'copied', value: Buffer.from('old') })).arg, 1);
  t.is(
    (await c.request({ op: Op.PUT, flags: Flag.COPY, epoch: 1, arg: 9, key: 'k', value: Buffer.from('old') })).arg,
    0,
    'k holds (2, 5): the copy is older',
  );
  t.is((await c.request({ op: Op.GET, epoch: 2, key: 'k' })).body.toString(), 'five');
  // A replicated job keeps tombstones: a copy read before a delete cannot bring the key back after it.
  const del = await c.request({ op: Op.DELETE, epoch: 2, key: 'copied' });
  t.is(del.flags, Flag.EXISTED);
  t.is((await c.request({ op: Op.PUT, flags: Flag.COPY, epoch: 1, arg: 9, key: 'copied', value: Buffer.from('old') })).arg, 0);
  t.is((await c.request({ op: Op.GET, epoch: 2, key: 'copied' })).status, Status.NOT_FOUND);
  // A replica of a delete, older than the value: the value stays.
  t.is((await c.request({ op: Op.DELETE, flags: Flag.REPLICA, epoch: 2, arg: 4, key: 'k' })).arg, 0);
  t.is((await c.request({ op: Op.GET, epoch: 2, key: 'k' })).body.toString(), 'five');
  // A write of an older epoch than the key's version: STALE (the writer's placement is out of date for it).
  t.is(await announce(admin, 'job-a', 3, AnnounceFlag.REPLICATED), Status.OK);
  t.is((await c.request({ op: Op.PUT, epoch: 3, key: 'k', value: Buffer.from('three') })).arg, 1);
  t.is((await c.request({ op: Op.GET, flags: Flag.VERSION, epoch: 3, key: 'k' })).epoch, 3);
  // INCR answers the total and its version's seq.
  const incr = await c.request({ op: Op.INCR, epoch: 3, key: 'n', value: Buffer.from([0, 0, 0, 0, 0, 0, 0, 7]) });
  t.is(Number(incr.body.readBigInt64BE(0)), 7);
  t.is(incr.arg, 1);
});

test('an INCR retried with its token is answered with the total it made, on the primary and on a replica told of it', async (t) => {
  const { address, server } = await startNode(t);
  const admin = connect(t, address, adminToken);
  t.is(await announce(admin, 'job-a', 1, AnnounceFlag.REPLICATED), Status.OK);
  const c = connect(t, address, signToken(secret, 'job-a'));
  const incr = (key: string, by: number, token: string, flags = 0, arg = 0) => {
    const value = Buffer.alloc(16);
    value.writeBigInt64BE(BigInt(by));
    Buffer.from(token, 'hex').copy(value, 8);
    return c.request({ op: Op.INCR, flags, epoch: 1, arg, key, value });
  };
  const total = (reply: { body: Buffer }) => Number(reply.body.readBigInt64BE(0));
  t.is(total(await incr('n', 5, '0000000000000001')), 5);
  const retried = await incr('n', 5, '0000000000000001');
  t.deepEqual([retried.status, total(retried), retried.arg], [Status.OK, 5, 1], 'the same total and version: not added again');
  t.is(total(await incr('n', 5, '0000000000000002')), 10, 'another increment adds');
  t.is((await incr('other', 1, '0000000000000002')).status, Status.BAD_REQUEST, 'a token names one increment of one key');
  // A replica takes the primary's total and its token; a retry it then receives as the new primary adds nothing.
  t.is((await incr('r', 42, '00000000000000aa', Flag.REPLICA, 7)).arg, 1);
  t.is((await c.request({ op: Op.GET, epoch: 1, key: 'r' })).body.toString(), '42');
  const asPrimary = await incr('r', 1, '00000000000000aa');
  t.deepEqual([total(asPrimary), asPrimary.arg], [42, 7]);
  t.is((await c.request({ op: Op.GET, epoch: 1, key: 'r' })).body.toString(), '42');
  // Another job's identical token is another increment.
  t.is(await announce(admin, 'job-b', 1), Status.OK);
  const b = connect(t, address, signToken(secret, 'job-b'));
  const value = Buffer.alloc(16);
  value.writeBigInt64BE(1n);
  Buffer.from('0000000000000001', 'hex').copy(value, 8);
  t.is(Number((await b.request({ op: Op.INCR, epoch: 1, key: 'n', value })).body.readBigInt64BE(0)), 1);
  t.true(server.increments.size >= 3);
  // Without a token (an older client), every INCR adds.
  const plain = Buffer.alloc(8);
  plain.writeBigInt64BE(2n);
  t.is(Number((await c.request({ op: Op.INCR, epoch: 1, key: 'p', value: plain })).body.readBigInt64BE(0)), 2);
  t.is(Number((await c.request({ op: Op.INCR, epoch: 1, key: 'p', value: plain })).body.readBigInt64BE(0)), 4);
});

test('a job moved off with KEEP is set aside: placed here again, a KEPT copy takes back the entry of the same version', async (t) => {
  const { address } = await startNode(t);
  const admin = connect(t, address, adminToken);
  t.is(await announce(admin, 'job-r', 1, AnnounceFlag.REPLICATED), Status.OK);
  t.is(await announce(admin, 'job-s', 1), Status.OK);
  const r = connect(t, address, signToken(secret, 'job-r'));
  const s = connect(t, address, signToken(secret, 'job-s'));
  t.is((await r.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.from('one') })).arg, 1);
  t.is((await r.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.from('two') })).arg, 2);
  t.is((await s.request({ op: Op.PUT, epoch: 1, key: 'x', value: Buffer.from('single') })).arg, 1);
  for (const job of ['job-r', 'job-s'])
    t.is(
      (await admin.request({ op: Op.DROP_JOB, flags: job === 'job-r' ? DropFlag.KEEP : 0, arg: DROP_MOVED, key: job })).status,
      Status.OK,
    );
  t.is((await r.request({ op: Op.GET, epoch: 1, key: 'k' })).status, Status.STALE);

  t.is(await announce(admin, 'job-r', 3, AnnounceFlag.REPLICATED), Status.OK);
  t.is((await r.request({ op: Op.GET, epoch: 3, key: 'k' })).status, Status.NOT_FOUND, 'kept aside, out of reads');
  const kept = (c: NodeConnection, epoch: number, arg: number, flags = Flag.COPY | Flag.KEPT) =>
    c.request({ op: Op.PUT, flags, epoch, arg, key: 'k', value: Buffer.alloc(0) });
  const data = connect(t, address, signToken(secret, 'job-r', Date.now() + 60_000));
  t.is((await kept(data, 1, 2)).status, Status.UNAUTHORIZED, "the controller's only");
  t.is((await kept(r, 3, 2, Flag.KEPT)).status, Status.BAD_REQUEST, 'a flag of PUT COPY');
  const other = await kept(r, 1, 1);
  t.deepEqual([other.status, other.arg], [Status.NOT_FOUND, 1], 'the kept entry is (1, 2), not (1, 1)');
  const taken = await kept(r, 1, 2);
  t.deepEqual([taken.status, taken.arg], [Status.OK, 1], 'stored as a copy of version (1, 2)');
  const got = await r.request({ op: Op.GET, flags: Flag.VERSION, epoch: 3, key: 'k' });
  t.deepEqual([got.body.toString(), got.epoch, got.arg], ['two', 1, 2]);
  const again = await kept(r, 1, 2);
  t.deepEqual([again.status, again.arg], [Status.NOT_FOUND, 0], 'taken: nothing of the job is kept any more');

  // A job moved off without KEEP (a drain) is dropped: nothing to resync.
  t.is(await announce(admin, 'job-s', 3), Status.OK);
  const single = await s.request({ op: Op.PUT, flags: Flag.COPY | Flag.KEPT, epoch: 1, arg: 1, key: 'x', value: Buffer.alloc(0) });
  t.deepEqual([single.status, single.arg], [Status.NOT_FOUND, 0]);
});

test("a counter's increments: GET VERSION|INCREMENTS puts them ahead of its value, PUT COPY|INCREMENTS records them; misuse is BAD_REQUEST", async (t) => {
  const { address } = await startNode(t);
  const admin = connect(t, address, adminToken);
  t.is(await announce(admin, 'job-a', 1), Status.OK);
  const c = connect(t, address, signToken(secret, 'job-a'));
  const amount = Buffer.alloc(16);
  amount.writeBigInt64BE(5n);
  amount.write('0102030405060708', 8, 'hex');
  t.is((await c.request({ op: Op.INCR, epoch: 1, key: 'n', value: amount })).status, Status.OK);
  const plain = await c.request({ op: Op.GET, flags: Flag.VERSION, epoch: 1, key: 'n' });
  t.is(plain.body.toString(), '5', 'asked without INCREMENTS: the value alone');
  const copied = await c.request({ op: Op.GET, flags: Flag.VERSION | Flag.INCREMENTS, epoch: 1, key: 'n' });
  t.is(copied.flags & Flag.INCREMENTS, Flag.INCREMENTS);
  const split = splitIncrements(copied.body, 0, copied.body.length)!;
  t.deepEqual(split.increments, [{ token: '0102030405060708', total: 5, epoch: 1, seq: copied.arg }]);
  t.is(copied.body.toString('utf8', split.valueStart), '5');
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'v', value: Buffer.from('x') })).status, Status.OK);
  const value = await c.request({ op: Op.GET, flags: Flag.VERSION | Flag.INCREMENTS, epoch: 1, key: 'v' });
  t.is(value.flags & Flag.INCREMENTS, 0, 'no increments: the value as it is');
  t.is(value.body.toString(), 'x');
  // The copy lands in another job (tokens are a job's own) with the increment: a retry of it there is answered.
  t.is(await announce(admin, 'job-b', 1), Status.OK);
  const b = connect(t, address, signToken(secret, 'job-b'));
  t.is(
    (await b.request({ op: Op.PUT, flags: Flag.COPY | Flag.INCREMENTS, epoch: 1, arg: copied.arg, key: 'n', value: copied.body })).status,
    Status.OK,
  );
  t.is((await b.request({ op: Op.GET, epoch: 1, key: 'n' })).body.toString(), '5', 'the value, without the increments');
  const retry = await b.request({ op: Op.INCR, epoch: 1, key: 'n', value: amount });
  t.is(retry.status, Status.OK);
  t.is(Number(retry.body.readBigInt64BE(0)), 5, 'the retry is answered with what it made');
  t.is((await b.request({ op: Op.GET, epoch: 1, key: 'n' })).body.toString(), '5');
  for (const [flags, body] of [
    [Flag.INCREMENTS, copied.body],
    [Flag.COPY | Flag.INCREMENTS, copied.body.subarray(0, 10)],
  ] as const) {
    const refused = await c.request({ op: Op.PUT, flags, epoch: 1, arg: 1, key: 'bad', value: body });
    t.is(refused.status, Status.BAD_REQUEST);
    t.regex(refused.body.toString(), /INCREMENTS is a flag of PUT COPY/);
  }
});
