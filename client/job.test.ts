import test, { type ExecutionContext } from 'ava';
import { ADMIN_SUBJECT, decodeTicket, MAX_USER_KEY_BYTES, NodeConnection, Op, SatchelError, Status, signToken } from '../proto/index.ts';
import { entryCost } from '../storage-node/engine.ts';
import { firstCall, pattern, rejection, withoutPlacement } from '../test/helpers/assert.ts';
import { startInProcessCluster } from '../test/helpers/in-process.ts';
import { eventually, freePort } from '../test/helpers/raw-client.ts';
import { TWO_NODES, useSharedCluster } from '../test/helpers/shared-cluster.ts';
import { type Job, type RegisteredJob, Satchel } from './index.ts';

const KiB = 1024;
const MiB = 1024 * 1024;

// One in-process cluster (2 DRAM nodes) shared by the tests of this file; each test uses its own job.
const shared = useSharedCluster(test, 'client');
const { register } = shared;

/** Bytes a job holds over every node of the cluster. */
function jobUsage(jobId: string): number {
  return shared.cluster.nodes.reduce((n, node) => n + (node.server.engine.usageByJob().get(jobId) ?? 0), 0);
}

/** Makes the job's values split into small blocks, so a few MiB spread over many blocks (and both nodes). */
async function attachWithBlockSize(t: ExecutionContext, job: RegisteredJob, blockSize: number): Promise<Job> {
  const placement = shared.cluster.metadata.store.get(job.id);
  shared.cluster.metadata.store.set({ ...placement, blockSize });
  // Without the ticket's placement snapshot, so the changed block size is read from the metadata server.
  const handle = await Satchel.attach(withoutPlacement(job.ticket), { timeoutMs: 5_000 });
  t.teardown(() => handle.close());
  return handle;
}

test('put, get, stat, delete; absent keys are null; overwrite replaces', async (t) => {
  const job = await register(t);
  t.regex(job.id, /^job-[0-9a-f]{12}$/);
  t.is(decodeTicket(job.ticket).job, job.id);
  t.is(await job.get('nothing'), null);
  t.is(await job.stat('nothing'), null);
  t.false(await job.delete('nothing'));
  await job.put('map-3/part-7', 'hello');
  const value = await job.get('map-3/part-7');
  t.true(Buffer.isBuffer(value));
  t.is(value?.toString(), 'hello');
  t.deepEqual(await job.stat('map-3/part-7'), { key: 'map-3/part-7', size: 5, blocks: 1 });
  await job.put('map-3/part-7', new Uint8Array([1, 2, 3]));
  t.deepEqual(await job.get('map-3/part-7'), Buffer.from([1, 2, 3]));
  t.true(await job.delete('map-3/part-7'));
  t.is(await job.get('map-3/part-7'), null);
  t.is(jobUsage(job.id), 0);
});

test('an empty value is stored and read back as an empty Buffer, not null', async (t) => {
  const job = await register(t);
  await job.put('empty', '');
  const value = await job.get('empty');
  t.not(value, null);
  t.is(value!.length, 0);
  t.deepEqual(await job.stat('empty'), { key: 'empty', size: 0, blocks: 1 });
});

test('key validation: empty, NUL, a lone surrogate, too long, not a string → BAD_REQUEST; nothing sent', async (t) => {
  const job = await register(t);
  const bad: [string, unknown][] = [
    ['empty', ''],
    ['NUL', 'a\u0000b'],
    ['a lone surrogate', 'a\uD800b'],
    ['a lone low surrogate', '\uDC00'],
    ['too long (ASCII)', 'k'.repeat(MAX_USER_KEY_BYTES + 1)],
    ['too long (UTF-8 bytes, not characters)', '€'.repeat(MAX_USER_KEY_BYTES / 3 + 1)],
    ['a number', 42],
    ['undefined', undefined],
  ];
  for (const [name, key] of bad) {
    for (const call of [
      () => job.put(key as string, 'v'),
      () => job.get(key as string),
      () => job.stat(key as string),
      () => job.delete(key as string),
    ]) {
      const error = await rejection(t, call());
      t.is(error.code, 'BAD_REQUEST', name);
    }
  }
  // A surrogate pair is one character, and fine.
  await job.put('emoji \u{1F600}', 'ok');
  t.is((await job.get('emoji \u{1F600}'))?.toString(), 'ok');
  // The limits themselves are fine.
  const longest = 'k'.repeat(MAX_USER_KEY_BYTES);
  await job.put(longest, 'ok');
  t.is((await job.get(longest))?.toString(), 'ok');
  const longestUtf8 = '€'.repeat(MAX_USER_KEY_BYTES / 3);
  await job.put(longestUtf8, 'ok');
  t.is((await job.get(longestUtf8))?.toString(), 'ok');
  // A long key still fits as a block key once the value is split.
  const big = pattern(1 * MiB + 1, 1);
  await job.put(longest, big);
  t.true((await job.get(longest))?.equals(big));
  // A prefix with NUL or a lone surrogate is refused too.
  await t.throwsAsync(
    async () => {
      for await (const _ of job.list('a\uD800')) t.fail();
    },
    { instanceOf: SatchelError, message: /surrogate/ },
  );
  await t.throwsAsync(
    async () => {
      for await (const _ of job.list('a\u0000')) t.fail();
    },
    { instanceOf: SatchelError, message: /NUL/ },
  );
});

test('a list prefix that is too long → BAD_REQUEST, and the calls around it are unharmed', async (t) => {
  const job = await register(t);
  await job.put('a', 'x');
  const around = Array.from({ length: 20 }, (_, i) => job.put(`k${i}`, 'v'));
  await t.throwsAsync(
    async () => {
      for await (const _ of job.list('p'.repeat(MAX_USER_KEY_BYTES + 1))) t.fail();
    },
    { instanceOf: SatchelError, message: /prefix/ },
  );
  await Promise.all(around);
  t.is((await job.get('a'))?.toString(), 'x');
  // The longest prefix is fine.
  const keys: string[] = [];
  for await (const key of job.list('p'.repeat(MAX_USER_KEY_BYTES))) keys.push(key);
  t.deepEqual(keys, []);
});

test('value type validation: only Uint8Array/Buffer or string', async (t) => {
  const job = await register(t);
  for (const value of [42, null, undefined, { a: 1 }, new ArrayBuffer(4), [1, 2, 3], true]) {
    const error = await rejection(t, job.put('k', value as unknown as string));
    t.is(error.code, 'BAD_REQUEST', String(value));
  }
  t.is(await job.get('k'), null, 'nothing was stored');
  await job.put('u8', new Uint8Array([9, 8, 7]));
  await job.put('view', Buffer.from('0123456789').subarray(3, 6));
  await job.put('text', 'héllo');
  t.deepEqual(await job.get('u8'), Buffer.from([9, 8, 7]));
  t.is((await job.get('view'))?.toString(), '345');
  t.is((await job.get('text'))?.toString(), 'héllo');
  t.is((await job.stat('text'))?.size, Buffer.byteLength('héllo'));
});

// Serial: run before the others, while both nodes have room (jobs of tests running alongside reserve it).
test.serial('a large value is split into blocks striped over both nodes, read back whole', async (t) => {
  const registered = await register(t, TWO_NODES);
  const job = await attachWithBlockSize(t, registered, 64 * KiB);
  const value = pattern(5 * MiB + 123, 2);
  await job.put('big', value);
  t.deepEqual(await job.stat('big'), { key: 'big', size: value.length, blocks: Math.ceil(value.length / (64 * KiB)) });
  const back = await job.get('big');
  t.true(back!.equals(value));
  for (const node of shared.cluster.nodes) {
    t.true((node.server.engine.usageByJob().get(registered.id) ?? 0) > MiB, `${node.id} holds part of the value`);
  }
  // Only the user key is listed, never a block key.
  const keys: string[] = [];
  for await (const key of job.list()) keys.push(key);
  t.deepEqual(keys, ['big']);
});

test('overwriting a large value frees its old blocks', async (t) => {
  const registered = await register(t);
  const job = await attachWithBlockSize(t, registered, 64 * KiB);
  const large = pattern(2 * MiB + 5, 3);
  await job.put('v', large);
  const usedLarge = jobUsage(registered.id);
  t.true(usedLarge > 2 * MiB);
  // Large over large: same footprint, not double.
  const large2 = pattern(2 * MiB + 5, 4);
  await job.put('v', large2);
  t.is(jobUsage(registered.id), usedLarge);
  t.true((await job.get('v'))!.equals(large2));
  // Small over large: only the small value is left.
  await job.put('v', 'small now');
  t.is(jobUsage(registered.id), entryCost('v', 'small now'.length));
  t.is((await job.get('v'))?.toString(), 'small now');
  t.deepEqual(await job.stat('v'), { key: 'v', size: 9, blocks: 1 });
  // Large again, then delete: nothing left.
  await job.put('v', large);
  t.true(await job.delete('v'));
  t.is(jobUsage(registered.id), 0);
  t.is(await job.get('v'), null);
});

test('a value over the job maxValueBytes hint → TOO_LARGE, nothing stored', async (t) => {
  const job = await register(t, { maxValueBytes: 10_000 });
  await job.put('fits', Buffer.alloc(10_000));
  const error = await rejection(t, job.put('too-big', Buffer.alloc(10_001)));
  t.is(error.code, 'TOO_LARGE');
  t.is(await job.get('too-big'), null);
  t.is(jobUsage(job.id), entryCost('fits', 10_000));
});

// Serial, like the striping test: both nodes need room for its reservation.
test.serial('list: every key under a prefix, sorted, merged over both nodes, paged', async (t) => {
  const job = await register(t, TWO_NODES);
  const want: string[] = [];
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 500; i++) {
    const key = `map-${i % 5}/part-${String(i).padStart(4, '0')}`;
    writes.push(job.put(key, `v${i}`));
    if (key.startsWith('map-2/')) want.push(key);
  }
  writes.push(job.put('other', 'x'));
  await Promise.all(writes);
  want.sort();
  const perNode = shared.cluster.nodes.map((n) => (n.server.engine.usageByJob().get(job.id) ?? 0) > 0);
  t.deepEqual(perNode, [true, true], 'keys landed on both nodes');
  for (const pageSize of [1, 7, 100, 1000]) {
    const keys: string[] = [];
    for await (const key of job.list('map-2/', { pageSize })) keys.push(key);
    t.deepEqual(keys, want, `pageSize ${pageSize}`);
  }
  const all: string[] = [];
  for await (const key of job.list()) all.push(key);
  t.is(all.length, 501);
  t.deepEqual(all, [...all].sort());
  // Breaking out early is fine.
  const firstThree: string[] = [];
  for await (const key of job.list('map-2/', { pageSize: 2 })) {
    firstThree.push(key);
    if (firstThree.length === 3) break;
  }
  t.deepEqual(firstThree, want.slice(0, 3));
  const none: string[] = [];
  for await (const key of job.list('nope/')) none.push(key);
  t.deepEqual(none, []);
});

test('STALE: after the placement epoch moves on, the client refreshes and carries on', async (t) => {
  const job = await register(t);
  await job.put('k', 'before');
  t.is(job.epoch, 1);
  const placement = shared.cluster.metadata.store.get(job.id);
  shared.cluster.metadata.store.set({ ...placement, epoch: 2 });
  for (const node of shared.cluster.nodes) {
    const admin = new NodeConnection(node.address, shared.cluster.adminToken);
    t.is((await admin.request({ op: Op.ANNOUNCE, arg: 2, key: job.id })).status, Status.OK);
    await admin.close();
  }
  t.is((await job.get('k'))?.toString(), 'before');
  t.is(job.epoch, 2);
  await job.put('k', 'after');
  await job.put('k2', pattern(3 * MiB, 5));
  t.is((await job.get('k'))?.toString(), 'after');
  t.deepEqual((await job.stat('k2'))?.size, 3 * MiB);
});

test('close() waits for calls in flight; later calls fail with CLOSED', async (t) => {
  const registered = await register(t);
  const job = await Satchel.attach(registered.ticket);
  const puts = Array.from({ length: 100 }, (_, i) => job.put(`k${i}`, pattern(10 * KiB, i)));
  const big = job.put('big', pattern(3 * MiB, 9));
  await job.close();
  const results = await Promise.allSettled([...puts, big]);
  t.true(
    results.every((r) => r.status === 'fulfilled'),
    'every call made before close() completed',
  );
  t.is((await rejection(t, job.put('late', 'x'))).code, 'CLOSED');
  t.is((await rejection(t, job.get('k1'))).code, 'CLOSED');
  await job.close(); // idempotent
  t.true((await registered.get('big'))!.equals(pattern(3 * MiB, 9)));
});

test('a full cluster → FULL; the blocks of the failed value are cleaned up and smaller values still fit', async (t) => {
  const small = await startInProcessCluster({ dram: 2, capacity: 4 * MiB });
  t.teardown(() => small.close());
  const s = await Satchel.connect(small.controllerAddress, { key: small.tenantKey });
  t.teardown(() => s.close());
  const registered = await s.registerJob('full');
  // Small blocks over two nodes: many block PUTs in flight when the first FULL comes back.
  small.metadata.store.set({ ...small.metadata.store.get(registered.id), blockSize: 64 * KiB });
  const job = await Satchel.attach(registered.ticket);
  t.teardown(() => job.close());
  await job.put('keep', 'precious');
  const keep = entryCost('keep', 8);
  for (let round = 0; round < 8; round++) {
    const error = await rejection(t, job.put('huge', Buffer.alloc(12 * MiB, 1)));
    t.is(error.code, 'FULL');
    t.is((await job.get('keep'))?.toString(), 'precious');
    t.is(await job.get('huge'), null);
    // The blocks written before FULL are deleted (in the background): the nodes go back to just 'keep'.
    await eventually(() => small.used() === keep, 5_000, `round ${round}: usage back to one small value (now ${small.used()})`);
  }
  await job.put('fits', Buffer.alloc(3 * MiB, 2));
  t.is((await job.stat('fits'))?.size, 3 * MiB);
  await registered.deregister();
  t.is(small.used(), 0);
});

test('deregister deletes the job data on every node; other handles and attach get NO_SUCH_JOB', async (t) => {
  const job = await shared.satchel.registerJob('to-deregister');
  const other = await Satchel.attach(job.ticket, { timeoutMs: 5_000 });
  t.teardown(() => other.close());
  for (let i = 0; i < 40; i++) await job.put(`k${i}`, pattern(20 * KiB, i));
  await job.put('big', pattern(3 * MiB, 1));
  t.true(jobUsage(job.id) > 3 * MiB);
  await other.get('k1'); // opens its connections before the deregistration
  await job.deregister();
  t.is(jobUsage(job.id), 0);
  t.is((await rejection(t, job.get('k1'))).code, 'CLOSED', 'the deregistered handle is closed');
  for (const call of [() => other.get('k1'), () => other.put('k1', 'x'), () => other.stat('k1'), () => other.delete('k1')]) {
    t.is((await rejection(t, call())).code, 'NO_SUCH_JOB');
  }
  t.is((await rejection(t, firstCall(job.ticket))).code, 'NO_SUCH_JOB');
  t.is(jobUsage(job.id), 0, 'the refused PUT stored nothing');
  // Deregistering twice: the handle closed with the first, and says so; another driver's handle gets NO_SUCH_JOB.
  const again = await shared.satchel.registerJob('deregister-twice');
  await again.deregister();
  t.is((await rejection(t, again.deregister())).code, 'CLOSED');
});

test('a ticket whose token is wrong → UNAUTHORIZED; another job token does not open this job', async (t) => {
  const a = await register(t);
  const b = await register(t);
  const parsed = decodeTicket(a.ticket);
  const forged = (token: string) => `st1_${Buffer.from(JSON.stringify({ ...parsed, token })).toString('base64url')}`;
  t.is((await rejection(t, firstCall(forged(parsed.token.slice(0, -2) + 'xx')))).code, 'UNAUTHORIZED');
  t.is((await rejection(t, firstCall(forged(decodeTicket(b.ticket).token)))).code, 'UNAUTHORIZED');
  t.is((await rejection(t, firstCall(forged(signToken(Buffer.alloc(32, 1), ADMIN_SUBJECT))))).code, 'UNAUTHORIZED');
  t.is((await rejection(t, firstCall('not a ticket'))).code, 'BAD_REQUEST');
});

test('registerJob and connect refuse bad input', async (t) => {
  t.is((await rejection(t, shared.satchel.registerJob(''))).code, 'BAD_REQUEST');
  t.is((await rejection(t, shared.satchel.registerJob('x', { replicas: 4 }))).code, 'BAD_REQUEST');
  t.is((await rejection(t, shared.satchel.registerJob('x', { capacity: -1 }))).code, 'BAD_REQUEST');
  t.is((await rejection(t, Satchel.connect('no-port'))).code, 'BAD_REQUEST');
  const port = await freePort();
  t.is((await rejection(t, Satchel.connect(`127.0.0.1:${port}`, { timeoutMs: 5_000 }))).code, 'UNAVAILABLE');
});

test('attaching needs no metadata round trip: a ticket carrying the placement works with metadata unreachable', async (t) => {
  const registered = await register(t);
  const parsed = decodeTicket(registered.ticket);
  t.truthy(parsed.placement, 'registerJob puts the placement in the ticket');
  const cut = `st1_${Buffer.from(JSON.stringify({ ...parsed, metadata: ['127.0.0.1:1'] })).toString('base64url')}`;
  const job = await Satchel.attach(cut, { timeoutMs: 2_000 });
  t.teardown(() => job.close());
  await job.put('k', 'v');
  t.is((await job.get('k'))?.toString(), 'v');
  // Without the snapshot the same ticket must reach a metadata server, and cannot.
  t.is((await rejection(t, Satchel.attach(withoutPlacement(cut), { timeoutMs: 2_000 }))).code, 'UNAVAILABLE');
});
