import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { ADMIN_SUBJECT, Flag, HEADER_SIZE, Op, SatchelError, Status, signToken, WatchEvent } from '../proto/index.ts';
import { rejection } from '../test/helpers/assert.ts';
import { connect, rawConnect } from '../test/helpers/node-session.ts';
import { decodeKeyList, eventually, rawHeader } from '../test/helpers/raw-client.ts';
import { DiskEngine } from './disk/disk-engine.ts';
import { DramEngine } from './dram-engine.ts';
import { entryCost } from './engine.ts';
import { DroppedJobs } from './job-table.ts';
import { TRAFFIC_IN, TRAFFIC_OPS, TRAFFIC_OUT, TRAFFIC_SERVICE_US } from './metrics.ts';
import { PRE_AUTH_MAX_FRAMES, StorageServer, type StorageServerOptions } from './server.ts';

const MiB = 1024 * 1024;
const secret = randomBytes(32);
const adminToken = signToken(secret, ADMIN_SUBJECT);
const logger = pino({ level: 'silent' });

interface Node {
  server: StorageServer;
  engine: DramEngine;
  address: string;
}

async function startNode(t: ExecutionContext, options: Partial<StorageServerOptions> & { capacity?: number } = {}): Promise<Node> {
  const engine = new DramEngine(options.capacity ?? 64 * MiB);
  const server = new StorageServer({ id: 'dram-test', engine, secret, logger, ...options });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  return { server, engine, address };
}

test('HELLO with a job token, then PUT, GET, STAT, DELETE, LIST over one pipelined connection', async (t) => {
  const { address, engine } = await startNode(t);
  const c = connect(t, address, signToken(secret, 'job-a'));
  const put = await c.request({ op: Op.PUT, epoch: 1, key: 'a/1', value: Buffer.from('one') });
  t.is(put.status, Status.OK);
  t.is(put.flags, 0);
  const get = await c.request({ op: Op.GET, epoch: 1, key: 'a/1' });
  t.is(get.status, Status.OK);
  t.is(get.body.toString(), 'one');
  t.is(get.arg, 3);
  const stat = await c.request({ op: Op.STAT, epoch: 1, key: 'a/1' });
  t.is(stat.status, Status.OK);
  t.is(stat.arg, 3, 'STAT answers the size in arg');
  t.is(stat.body.length, 0, 'STAT does not move the value');
  t.is((await c.request({ op: Op.GET, epoch: 1, key: 'missing' })).status, Status.NOT_FOUND);
  t.is((await c.request({ op: Op.STAT, epoch: 1, key: 'missing' })).status, Status.NOT_FOUND);
  // Overwrite.
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'a/1', value: Buffer.from('uno') })).status, Status.OK);
  t.is((await c.request({ op: Op.GET, epoch: 1, key: 'a/1' })).body.toString(), 'uno');
  // LIST: prefix in the key, cursor in the value, page size in arg.
  await Promise.all(['a/2', 'a/3', 'b/1'].map((k) => c.request({ op: Op.PUT, epoch: 1, key: k, value: Buffer.from(k) })));
  const page1 = await c.request({ op: Op.LIST, epoch: 1, arg: 2, key: 'a/' });
  t.is(page1.status, Status.OK);
  t.deepEqual(decodeKeyList(page1.body), ['a/1', 'a/2']);
  t.is(page1.arg, 2);
  t.is(page1.flags & Flag.MORE, Flag.MORE);
  const page2 = await c.request({ op: Op.LIST, epoch: 1, arg: 2, key: 'a/', value: Buffer.from('a/2') });
  t.deepEqual(decodeKeyList(page2.body), ['a/3']);
  t.is(page2.flags & Flag.MORE, 0);
  // DELETE answers EXISTED when something was removed; arg is the delete's version (seq), after the two writes.
  const del = await c.request({ op: Op.DELETE, epoch: 1, key: 'a/1' });
  t.is(del.status, Status.OK);
  t.is(del.flags, Flag.EXISTED);
  t.is(del.arg, 3);
  t.is((await c.request({ op: Op.DELETE, epoch: 1, key: 'a/1' })).flags, 0);
  t.is((await c.request({ op: Op.GET, epoch: 1, key: 'a/1' })).status, Status.NOT_FOUND);
  t.is(engine.usageByJob().get('job-a'), entryCost('a/2', 3) + entryCost('a/3', 3) + entryCost('b/1', 3));
  await c.close();
});

test('pipelined requests are all answered, each with its own reply', async (t) => {
  const { address } = await startNode(t);
  const c = connect(t, address, signToken(secret, 'job-a'));
  const n = 2000;
  const puts = await Promise.all(
    Array.from({ length: n }, (_, i) => c.request({ op: Op.PUT, epoch: 1, key: `k${i}`, value: Buffer.from(`v${i}`) })),
  );
  t.true(puts.every((r) => r.status === Status.OK));
  const gets = await Promise.all(Array.from({ length: n }, (_, i) => c.request({ op: Op.GET, epoch: 1, key: `k${i}` })));
  t.deepEqual(
    gets.map((r) => r.body.toString()),
    Array.from({ length: n }, (_, i) => `v${i}`),
  );
});

test('the HELLO answer carries the node id and its maximum value size; PING needs no HELLO', async (t) => {
  const { address } = await startNode(t, { maxValueBytes: 4096 });
  const raw = await rawConnect(t, address);
  raw.send(Op.PING, 5);
  const ping = await raw.reply(5);
  t.is(ping?.code, Status.OK);
  raw.send(Op.HELLO, 0, signToken(secret, 'job-a'));
  const hello = await raw.reply(0);
  t.is(hello?.code, Status.OK);
  t.is(hello?.arg, 4096);
  t.is(hello?.body.toString(), 'dram-test');
});

test('HELLO with a bad token → UNAUTHORIZED and the connection is closed', async (t) => {
  const { address, engine } = await startNode(t);
  for (const token of ['not-a-token', signToken(randomBytes(32), 'job-a'), signToken(randomBytes(32), ADMIN_SUBJECT)]) {
    // Through the client: the request queued behind the refused HELLO fails with the node's error.
    const c = connect(t, address, token);
    const error = await rejection(t, c.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.from('v') }));
    t.is(error.code, 'UNAUTHORIZED');
    // Raw: an UNAUTHORIZED answer, then the node closes; the PUT behind the HELLO is not executed.
    const raw = await rawConnect(t, address);
    raw.send(Op.HELLO, 0, token);
    raw.send(Op.PUT, 1, 'k', Buffer.from('v'));
    await raw.closed;
    t.deepEqual(
      raw.frames.map((f) => [f.id, f.code]),
      [[0, Status.UNAUTHORIZED]],
    );
  }
  t.is(engine.used, 0, 'nothing was stored');
});

test('an operation before HELLO → UNAUTHORIZED and the connection is closed', async (t) => {
  const { address, engine } = await startNode(t);
  const raw = await rawConnect(t, address);
  raw.send(Op.PUT, 7, 'k', Buffer.from('v'));
  raw.send(Op.GET, 8, 'k');
  await raw.closed;
  t.deepEqual(
    raw.frames.map((f) => [f.id, f.code]),
    [[7, Status.UNAUTHORIZED]],
  );
  t.regex(raw.frames[0]!.body.toString(), /HELLO/);
  t.is(engine.used, 0);
});

test('a malformed frame → BAD_REQUEST then close, while another connection keeps working', async (t) => {
  const { address, server } = await startNode(t);
  const other = connect(t, address, signToken(secret, 'job-a'));
  t.is((await other.request({ op: Op.PUT, epoch: 1, key: 'kept', value: Buffer.from('safe') })).status, Status.OK);
  const bad: [string, Buffer][] = [
    ['wrong version', rawHeader({ bodyLength: 1, keyLength: 1, code: Op.GET, version: 9 })],
    ['reserved not zero', rawHeader({ bodyLength: 1, keyLength: 1, code: Op.GET, reserved: 7 })],
    ['key longer than body', rawHeader({ bodyLength: 1, keyLength: 2, code: Op.GET })],
  ];
  for (const [name, header] of bad) {
    const raw = await rawConnect(t, address);
    raw.send(Op.HELLO, 0, signToken(secret, 'job-b'));
    raw.write(Buffer.concat([header, Buffer.from('kk')]));
    await raw.closed;
    t.deepEqual(
      raw.frames.map((f) => f.code),
      [Status.OK, Status.BAD_REQUEST],
      name,
    );
    t.regex(raw.frames[1]!.body.toString(), /malformed/, name);
    // The other connection is untouched.
    const reply = await other.request({ op: Op.GET, epoch: 1, key: 'kept' });
    t.is(reply.body.toString(), 'safe', name);
  }
  // Garbage before any HELLO, too.
  const raw = await rawConnect(t, address);
  raw.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  await raw.closed;
  t.deepEqual(
    raw.frames.map((f) => f.code),
    [Status.BAD_REQUEST],
  );
  t.is((await other.request({ op: Op.PING })).status, Status.OK);
  await eventually(() => server.counters.connections === 1, 5_000, 'closed sessions forgotten');
});

test('a value over the node maximum → TOO_LARGE, and the same connection still works', async (t) => {
  const { address, engine } = await startNode(t, { maxValueBytes: 1024 });
  const c = connect(t, address, signToken(secret, 'job-a'));
  t.is(
    (await c.request({ op: Op.PUT, epoch: 1, key: 'exact', value: Buffer.alloc(1024, 1) })).status,
    Status.OK,
    'exactly the maximum fits',
  );
  for (const size of [1025, 1024 + 1024, 64 * 1024, 3 * MiB]) {
    const reply = await c.request({ op: Op.PUT, epoch: 1, key: `big-${size}`, value: Buffer.alloc(size, 2) });
    t.is(reply.status, Status.TOO_LARGE, `${size} bytes`);
    t.regex(reply.message, /exceeds/);
    // Same connection, right after.
    const put = await c.request({ op: Op.PUT, epoch: 1, key: `after-${size}`, value: Buffer.from('fine') });
    t.is(put.status, Status.OK, `PUT after ${size}`);
    const get = await c.request({ op: Op.GET, epoch: 1, key: `after-${size}` });
    t.is(get.body.toString(), 'fine');
    t.is((await c.request({ op: Op.GET, epoch: 1, key: `big-${size}` })).status, Status.NOT_FOUND, 'nothing stored');
  }
  // Pipelined around an oversize frame: the neighbours are answered normally.
  const [before, big, after] = await Promise.all([
    c.request({ op: Op.PUT, epoch: 1, key: 'p1', value: Buffer.from('1') }),
    c.request({ op: Op.PUT, epoch: 1, key: 'p2', value: Buffer.alloc(200 * 1024) }),
    c.request({ op: Op.PUT, epoch: 1, key: 'p3', value: Buffer.from('3') }),
  ]);
  t.deepEqual([before.status, big.status, after.status], [Status.OK, Status.TOO_LARGE, Status.OK]);
  const sizes = [1025, 2048, 64 * 1024, 3 * MiB];
  const stored =
    entryCost('exact', 1024) + sizes.reduce((n, size) => n + entryCost(`after-${size}`, 4), 0) + entryCost('p1', 1) + entryCost('p3', 1);
  t.is(engine.usageByJob().get('job-a'), stored, 'only the values that fit were stored');
});

test('a full node → FULL; the value already there survives and the connection keeps working', async (t) => {
  const { address, engine } = await startNode(t, { capacity: 10_000 });
  const c = connect(t, address, signToken(secret, 'job-a'));
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.alloc(5000, 1) })).status, Status.OK);
  const full = await c.request({ op: Op.PUT, epoch: 1, key: 'k2', value: Buffer.alloc(5000, 2) });
  t.is(full.status, Status.FULL);
  t.regex(full.message, /full/);
  const grow = await c.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.alloc(9950, 3) });
  t.is(grow.status, Status.FULL);
  const get = await c.request({ op: Op.GET, epoch: 1, key: 'k' });
  t.deepEqual(get.body, Buffer.alloc(5000, 1));
  t.is(engine.used, entryCost('k', 5000));
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'small', value: Buffer.from('fits') })).status, Status.OK);
});

test('an empty key or an unknown op → BAD_REQUEST, an admin op on a job connection → UNAUTHORIZED; the connection survives', async (t) => {
  const { address, engine } = await startNode(t);
  const a = connect(t, address, signToken(secret, 'job-a'));
  const b = connect(t, address, signToken(secret, 'job-b'));
  t.is((await b.request({ op: Op.PUT, epoch: 1, key: 'mine', value: Buffer.from('b') })).status, Status.OK);
  t.is((await a.request({ op: Op.PUT, epoch: 1, value: Buffer.from('v') })).status, Status.BAD_REQUEST);
  t.is((await a.request({ op: 0x7f, epoch: 1, key: 'k' })).status, Status.BAD_REQUEST);
  // A job token cannot drop another job, nor move its epoch.
  t.is((await a.request({ op: Op.DROP_JOB, epoch: 1, key: 'job-b' })).status, Status.UNAUTHORIZED);
  t.is((await a.request({ op: Op.ANNOUNCE, epoch: 1, arg: 99, key: 'job-b' })).status, Status.UNAUTHORIZED);
  t.is((await b.request({ op: Op.GET, epoch: 1, key: 'mine' })).body.toString(), 'b');
  t.is((await b.request({ op: Op.PUT, epoch: 1, key: 'epoch-check', value: Buffer.from('x') })).status, Status.OK, 'job-b is not STALE');
  // An admin connection carries admin ops only.
  const admin = connect(t, address, adminToken);
  t.is((await admin.request({ op: Op.GET, key: 'mine' })).status, Status.BAD_REQUEST);
  t.is((await a.request({ op: Op.PING })).status, Status.OK);
  t.is(engine.usageByJob().get('job-a'), undefined);
});

test('MANIFEST flag is stored and echoed; replacing or deleting a manifest hands it back', async (t) => {
  const { address } = await startNode(t);
  const c = connect(t, address, signToken(secret, 'job-a'));
  const manifest = Buffer.from('manifest-bytes');
  t.is((await c.request({ op: Op.PUT, flags: Flag.MANIFEST | 0x8000, epoch: 1, key: 'big', value: manifest })).status, Status.OK);
  const get = await c.request({ op: Op.GET, epoch: 1, key: 'big' });
  t.is(get.flags, Flag.MANIFEST, 'only the MANIFEST flag is stored');
  const stat = await c.request({ op: Op.STAT, epoch: 1, key: 'big' });
  t.is(stat.flags, Flag.MANIFEST);
  t.deepEqual(stat.body, manifest, 'STAT of a manifest carries it (the client reads the size from it)');
  const over = await c.request({ op: Op.PUT, epoch: 1, key: 'big', value: Buffer.from('small') });
  t.is(over.flags, Flag.REPLACED_MANIFEST);
  t.deepEqual(over.body, manifest);
  const plain = await c.request({ op: Op.PUT, epoch: 1, key: 'big', value: Buffer.from('smaller') });
  t.is(plain.flags, 0, 'replacing a plain value says nothing');
  t.is((await c.request({ op: Op.PUT, flags: Flag.MANIFEST, epoch: 1, key: 'big', value: manifest })).status, Status.OK);
  const del = await c.request({ op: Op.DELETE, epoch: 1, key: 'big' });
  t.is(del.flags, Flag.REPLACED_MANIFEST | Flag.EXISTED);
  t.deepEqual(del.body, manifest);
  t.is(del.arg, 5, "the delete is the key's fifth write");
});

test('DROP_JOB with the admin token: the job data is gone, and the job is refused from then on', async (t) => {
  const { address, engine, server } = await startNode(t);
  const a = connect(t, address, signToken(secret, 'job-a'));
  const b = connect(t, address, signToken(secret, 'job-b'));
  await Promise.all(Array.from({ length: 50 }, (_, i) => a.request({ op: Op.PUT, epoch: 1, key: `k${i}`, value: Buffer.alloc(1000) })));
  t.is((await b.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.from('other job') })).status, Status.OK);
  const before = engine.used;
  const admin = connect(t, address, adminToken);
  const drop = await admin.request({ op: Op.DROP_JOB, key: 'job-a' });
  t.is(drop.status, Status.OK);
  t.is(drop.arg, before - entryCost('k', 9), 'answers the bytes freed');
  t.is(engine.usageByJob().get('job-a'), undefined);
  t.is(engine.used, entryCost('k', 9));
  t.true(server.jobs.dropped.has('job-a'));
  // The open connection of the dropped job.
  for (const op of [Op.GET, Op.PUT, Op.STAT, Op.DELETE, Op.LIST]) {
    const reply = await a.request({ op, epoch: 1, key: 'k1', value: op === Op.PUT ? Buffer.from('again') : null });
    t.is(reply.status, Status.NO_SUCH_JOB, `op ${op}`);
  }
  // A new connection for the dropped job.
  const again = connect(t, address, signToken(secret, 'job-a'));
  t.is((await rejection(t, again.request({ op: Op.GET, epoch: 1, key: 'k1' }))).code, 'NO_SUCH_JOB');
  const raw = await rawConnect(t, address);
  raw.send(Op.HELLO, 0, signToken(secret, 'job-a'));
  await raw.closed;
  t.deepEqual(
    raw.frames.map((f) => f.code),
    [Status.NO_SUCH_JOB],
  );
  // The other job is untouched.
  t.is((await b.request({ op: Op.GET, epoch: 1, key: 'k' })).body.toString(), 'other job');
  t.is(engine.usageByJob().get('job-a'), undefined, 'nothing was stored for the dropped job');
});

test('STALE when a frame carries an epoch older than the node knows', async (t) => {
  const { address } = await startNode(t);
  const c = connect(t, address, signToken(secret, 'job-a'));
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.from('v') })).status, Status.OK);
  const admin = connect(t, address, adminToken);
  const set = await admin.request({ op: Op.ANNOUNCE, arg: 5, key: 'job-a' });
  t.is(set.status, Status.OK);
  for (const op of [Op.GET, Op.PUT, Op.STAT, Op.DELETE, Op.LIST]) {
    const stale = await c.request({ op, epoch: 4, key: 'k', value: op === Op.PUT ? Buffer.from('old epoch') : null });
    t.is(stale.status, Status.STALE, `op ${op}`);
    t.is(stale.epoch, 5, 'STALE carries the epoch the node knows');
    t.is(stale.arg, 5);
  }
  t.is((await c.request({ op: Op.GET, epoch: 5, key: 'k' })).body.toString(), 'v', 'the STALE PUT changed nothing');
  // A client ahead of the node is served (it learned a placement the node has not been told yet), but only the
  // controller raises the node's epoch: a client cannot make the job's other functions STALE.
  t.is((await c.request({ op: Op.GET, epoch: 7, key: 'k' })).status, Status.OK);
  t.is((await c.request({ op: Op.GET, epoch: 6, key: 'k' })).status, Status.OK);
  t.is((await c.request({ op: Op.GET, epoch: 0xffffffff, key: 'k' })).status, Status.OK);
  t.is((await c.request({ op: Op.GET, epoch: 5, key: 'k' })).status, Status.OK);
  // A key written under a later epoch than a writer's: that writer is out of date for it (STALE).
  t.is((await c.request({ op: Op.PUT, epoch: 7, key: 'k', value: Buffer.from('seven') })).status, Status.OK);
  const behind = await c.request({ op: Op.PUT, epoch: 6, key: 'k', value: Buffer.from('six') });
  t.is(behind.status, Status.STALE);
  t.is((await c.request({ op: Op.GET, epoch: 6, key: 'k' })).body.toString(), 'seven');
  t.is((await admin.request({ op: Op.ANNOUNCE, arg: 7, key: 'job-a' })).status, Status.OK);
  t.is((await c.request({ op: Op.GET, epoch: 6, key: 'k' })).status, Status.STALE);
  // ANNOUNCE never moves an epoch backwards.
  t.is((await admin.request({ op: Op.ANNOUNCE, arg: 3, key: 'job-a' })).status, Status.OK);
  t.is((await c.request({ op: Op.GET, epoch: 6, key: 'k' })).status, Status.STALE);
  // A new connection learns the epoch from the HELLO answer.
  const raw = await rawConnect(t, address);
  raw.send(Op.HELLO, 0, signToken(secret, 'job-a'));
  t.is((await raw.reply(0))?.epoch, 7);
  // Other jobs are not affected.
  const b = connect(t, address, signToken(secret, 'job-b'));
  t.is((await b.request({ op: Op.PUT, key: 'k', value: Buffer.from('v') })).status, Status.OK);
});

test('backpressure: a client that pipelines GETs and never reads stops being read; the node stays responsive', async (t) => {
  const { address, server } = await startNode(t, { maxPendingResponseBytes: 256 * 1024 });
  const token = signToken(secret, 'job-a');
  const value = Buffer.alloc(8 * 1024, 7); // small enough to be copied into each answer
  const c = connect(t, address, token);
  t.is((await c.request({ op: Op.PUT, key: 'v', value })).status, Status.OK);

  const raw = await rawConnect(t, address);
  raw.socket.pause(); // never read
  raw.send(Op.HELLO, 0, token);
  const count = 80_000; // unthrottled, the answers would be 80 000 × 8 KiB ≈ 660 MB
  const one = Buffer.concat([rawHeader({ bodyLength: 1, keyLength: 1, code: Op.GET, id: 1 }), Buffer.from('v')]);
  const batch = Buffer.concat(Array.from({ length: count }, () => one));
  raw.write(batch);
  const opsBefore = server.counters.ops;

  // Wait until the node has stopped reading: its op count no longer moves.
  let last = -1;
  await eventually(
    () => {
      const now = server.counters.ops;
      const settled = now === last;
      last = now;
      return settled;
    },
    20_000,
    'node to stop reading',
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  const served = server.counters.ops - opsBefore;
  t.true(served < count, `the node served ${served} of ${count} GETs: it kept reading a client that does not read`);
  const unthrottled = count * (HEADER_SIZE + value.length);
  t.true(server.counters.bytesOut < unthrottled / 4, `answers queued: ${server.counters.bytesOut} bytes`);
  t.true(process.memoryUsage().arrayBuffers < 256 * MiB, `arrayBuffers ${process.memoryUsage().arrayBuffers}`);

  // Another connection is served normally meanwhile.
  const other = connect(t, address, token);
  const reply = await other.request({ op: Op.GET, key: 'v' });
  t.deepEqual(reply.body, value);

  // Once the stalled client goes away, its session is dropped.
  const connections = server.counters.connections;
  raw.destroy();
  await eventually(() => server.counters.connections === connections - 1, 10_000, 'session closed');
  t.pass();
});

test('backpressure releases: a client that resumes reading gets every answer', async (t) => {
  const { address } = await startNode(t, { maxPendingResponseBytes: 64 * 1024 });
  const token = signToken(secret, 'job-a');
  const value = Buffer.alloc(32 * 1024, 3);
  const c = connect(t, address, token);
  t.is((await c.request({ op: Op.PUT, key: 'v', value })).status, Status.OK);
  const raw = await rawConnect(t, address);
  raw.socket.pause();
  raw.send(Op.HELLO, 0, token);
  const count = 3000;
  for (let i = 1; i <= count; i++) raw.send(Op.GET, i, 'v');
  await new Promise((resolve) => setTimeout(resolve, 200));
  raw.socket.resume();
  const frames = await raw.waitFrames(count + 1);
  t.is(frames.length, count + 1);
  t.true(frames.slice(1).every((f, i) => f.id === i + 1 && f.code === Status.OK && f.body.length === value.length));
});

test('close() ends every connection; a client in flight gets UNAVAILABLE', async (t) => {
  const { address, server } = await startNode(t);
  const c = connect(t, address, signToken(secret, 'job-a'));
  t.is((await c.request({ op: Op.PING })).status, Status.OK);
  const raw = await rawConnect(t, address);
  await server.close();
  await raw.closed;
  const error = await rejection(t, c.request({ op: Op.GET, epoch: 1, key: 'k' }));
  t.is(error.code, 'UNAVAILABLE');
  await server.close(); // idempotent
});

test('a large value still being sent to a slow reader is never recycled for a later PUT', async (t) => {
  // The node answers GETs of large values by reference and recycles the memory of values it lets go of
  // (ValuePool). Here the GET's answer waits in the node's write queue behind 10 MiB that the client does not
  // read yet, while the value is overwritten and a new PUT needs a buffer of the same size.
  const { address, server, engine } = await startNode(t, { maxPendingResponseBytes: 256 * MiB, capacity: 256 * MiB });
  const raw = await rawConnect(t, address);
  raw.socket.pause();
  const size = 256 * 1024;
  const [filler, a, b, c] = [1, 2, 3, 4].map((fill) => Buffer.alloc(size, fill)) as [Buffer, Buffer, Buffer, Buffer];
  raw.send(Op.HELLO, 0, signToken(secret, 'job-a'));
  raw.send(Op.PUT, 1, 'filler', filler);
  raw.send(Op.PUT, 2, 'k', a);
  for (let i = 0; i < 40; i++) raw.send(Op.GET, 100 + i, 'filler');
  raw.send(Op.GET, 3, 'k');
  raw.send(Op.PUT, 4, 'k', b); // lets A go
  raw.send(Op.PUT, 5, 'k2', c); // needs a 256 KiB buffer: must not get A's
  await eventually(() => engine.get('job-a', 'k2') !== undefined, 10_000, 'k2 stored');
  t.true(server.counters.ops >= 46);
  raw.socket.resume();
  const answer = await raw.reply(3);
  t.truthy(answer);
  t.is(answer!.code, Status.OK);
  t.true(answer!.body.equals(a), 'the GET answer still holds the value as it was when read');
  t.true(engine.get('job-a', 'k')!.value.equals(b));
  t.true(engine.get('job-a', 'k2')!.value.equals(c));
  // Once the socket is done with it, A's memory goes back to the pool rather than to the garbage collector.
  await eventually(() => server.pool.pooledBytes >= size, 5_000, 'A back in the pool once sent');
});

test('a disk node reads large values into pool buffers and takes them back once sent', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'satchel-server-disk-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const engine = new DiskEngine({ tier: 'ssd', capacity: 64 * MiB, path: dir });
  await engine.open();
  const server = new StorageServer({ id: 'ssd-test', engine, secret, logger });
  engine.allocateValue = (size) => server.pool.allocate(size); // as startStorageNode wires it
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  const c = connect(t, address, signToken(secret, 'job-a'));
  const value = randomBytes(300 * 1024);
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'big', value })).status, Status.OK);
  const pooled = server.pool.pooledBytes; // the PUT's receive buffer, recycled once written
  const release = server.pool.release.bind(server.pool);
  let released = 0;
  server.pool.release = (buffer) => {
    released++;
    release(buffer);
  };
  for (let i = 0; i < 3; i++) t.true((await c.request({ op: Op.GET, epoch: 1, key: 'big' })).body.equals(value), `read ${i}`);
  await eventually(() => released === 3, 5_000, 'each read buffer back in the pool once sent');
  t.is(server.pool.pooledBytes, Math.max(pooled, 5 * 64 * 1024), 'one buffer serves every read in turn');
});

test('a dropped job hands the buffers of its large values back to the pool, a value in flight once it is sent', async (t) => {
  const { address, server } = await startNode(t, { capacity: 256 * MiB, maxPendingResponseBytes: 256 * MiB });
  const size = 256 * 1024;
  const job = connect(t, address, signToken(secret, 'job-a'));
  for (let i = 0; i < 4; i++)
    t.is((await job.request({ op: Op.PUT, epoch: 1, key: `k${i}`, value: Buffer.alloc(size, i) })).status, Status.OK);
  t.is(server.pool.pooledBytes, 0);
  // A reader that stops reading holds k0's answer in the node's write queue (behind 50 MiB of answers: more
  // than the kernel's socket buffers take).
  const raw = await rawConnect(t, address);
  raw.socket.pause();
  raw.send(Op.HELLO, 0, signToken(secret, 'job-a'));
  for (let i = 0; i < 200; i++) raw.send(Op.GET, 1000 + i, 'k1', null, { epoch: 1 });
  raw.send(Op.GET, 1, 'k0', null, { epoch: 1 });
  await eventually(() => server.counters.ops >= 205, 10_000, 'the GETs answered into the queue');
  const admin = connect(t, address, adminToken);
  t.is((await admin.request({ op: Op.DROP_JOB, key: 'job-a' })).status, Status.OK);
  const inPool = server.pool.pooledBytes;
  t.true(inPool >= 2 * size, `k2 and k3 are back at once (${inPool} bytes pooled)`);
  t.true(inPool < 4 * size, 'k0 and k1, still queued for the reader, are not');
  raw.socket.resume();
  const answer = await raw.reply(1);
  t.true(answer!.body.equals(Buffer.alloc(size, 0)), 'the reader gets k0 as it was');
  await eventually(() => server.pool.pooledBytes >= 4 * size, 5_000, 'every buffer back once sent');
});

test('an engine that refuses with a SatchelError → that code on the wire; any other failure → UNAVAILABLE', async (t) => {
  const engine = new DramEngine(MiB);
  const failing = Object.assign(Object.create(engine) as DramEngine, {
    get: async (_job: string, key: string) => {
      if (key === 'typed') throw new SatchelError('BAD_REQUEST', 'engine says no');
      throw new Error('disk on fire');
    },
  });
  const server = new StorageServer({ id: 'dram-test', engine: failing, secret, logger });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  const c = connect(t, address, signToken(secret, 'job-a'));
  const typed = await c.request({ op: Op.GET, epoch: 1, key: 'typed' });
  t.is(typed.status, Status.BAD_REQUEST);
  t.is(typed.message, 'engine says no');
  // UNAVAILABLE on the wire; the client takes it as a node it cannot reach (a rejection), not as an answer.
  t.is((await rejection(t, c.request({ op: Op.GET, epoch: 1, key: 'other' }))).code, 'UNAVAILABLE');
  // A WAIT whose lookup fails gets that failure once, and nothing stays parked to answer it again.
  t.regex((await rejection(t, c.request({ op: Op.WAIT, epoch: 1, arg: 5_000, key: 'other' }))).message, /storage engine error/);
  await eventually(() => server.coordination.waiters === 0, 2_000, 'the waiter was forgotten');
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.from('v') })).status, Status.OK, 'the connection carries on');
});

test('coordination frames: WAIT parks and is answered by a PUT on another connection; INCR and CANCEL check their input', async (t) => {
  const { address, server } = await startNode(t);
  const token = signToken(secret, 'job-c');
  const waiter = await rawConnect(t, address);
  waiter.send(Op.HELLO, 0, token);
  waiter.send(Op.WAIT, 1, 'k', null, { arg: 5_000 });
  waiter.send(Op.WATCH, 2, 'k');
  await eventually(() => server.coordination.waiters === 1 && server.coordination.watches === 1, 2_000, 'parked');
  const writer = connect(t, address, token);
  t.is((await writer.request({ op: Op.PUT, key: 'k', value: Buffer.from('v') })).status, Status.OK);
  const woken = await waiter.reply(1);
  t.is(woken?.code, Status.OK);
  t.is(woken?.body.toString(), 'v');
  await eventually(async () => (await waiter.waitFrames(4)).some((f) => f.id === 2 && f.arg === WatchEvent.PUT), 2_000, 'put event');
  const event = waiter.frames.find((f) => f.id === 2 && f.arg === WatchEvent.PUT)!;
  t.is(event.flags & Flag.EVENT, Flag.EVENT);
  t.is(event.body.toString(), 'k', 'the event names the key');

  // INCR with an amount that is not 8 bytes, and CANCEL of nothing: answered, the connection stays usable.
  t.is((await writer.request({ op: Op.INCR, key: 'n', value: Buffer.from('1') })).status, Status.BAD_REQUEST);
  t.is((await writer.request({ op: Op.CANCEL, arg: 999 })).arg, 0);
  const amount = Buffer.alloc(8);
  amount.writeBigInt64BE(41n);
  t.is((await writer.request({ op: Op.INCR, key: 'n', value: amount })).body.readBigInt64BE(0), 41n);
  t.is((await writer.request({ op: Op.INCR, key: 'k', value: amount })).status, Status.BAD_REQUEST, 'k holds "v", not a counter');

  // CANCEL of the watch: its final answer, then the CANCEL's own.
  waiter.send(Op.CANCEL, 3, '', null, { arg: 2 });
  t.is((await waiter.reply(3))?.arg, 1);
  t.is(server.coordination.watches, 0);
  t.true(
    waiter.frames.some((f) => f.id === 2 && (f.flags & Flag.EVENT) === 0 && f.code === Status.OK),
    'the watch ended',
  );
});

test('a key that is not UTF-8 → BAD_REQUEST, nothing stored; a watch never gets a key longer than a frame allows', async (t) => {
  const { address, engine } = await startNode(t);
  const token = signToken(secret, 'job-u');
  const watcher = connect(t, address, token);
  const events: string[] = [];
  const watch = watcher.park({ op: Op.WATCH }, { onEvent: (_kind, key) => events.push(key) });
  watch.reply.catch(() => {}); // ended by the cancel below, or by the teardown
  const raw = await rawConnect(t, address);
  raw.send(Op.HELLO, 0, token);
  // 1024 bytes of 0xff would decode to 1024 U+FFFD, 3072 bytes of UTF-8 once re-encoded for an event or a LIST.
  for (const [id, key] of [
    [1, Buffer.alloc(1024, 0xff)],
    [2, Buffer.from([0x6b, 0xc3])],
    [3, Buffer.from([0xed, 0xa0, 0x80])],
  ] as const) {
    raw.write(Buffer.concat([rawHeader({ bodyLength: key.length + 1, keyLength: key.length, code: Op.PUT, id }), key, Buffer.from('v')]));
    const reply = await raw.reply(id);
    t.is(reply?.code, Status.BAD_REQUEST, `key ${key.subarray(0, 4).toString('hex')}`);
    t.regex(reply?.body.toString() ?? '', /UTF-8/);
  }
  t.is(engine.used, 0, 'nothing was stored');
  // A valid key with U+FFFD spelled out is fine, and the connections carry on.
  raw.send(Op.PUT, 4, 'k\ufffd', Buffer.from('v'));
  t.is((await raw.reply(4))?.code, Status.OK);
  await eventually(() => events.includes('k\ufffd'), 2_000, 'the event for the valid key');
  t.is((await watcher.request({ op: Op.PING })).status, Status.OK, 'the watching connection is alive');
  watcher.cancel(watch.id);
});

test('a connection closed for bad input is closed even when its last answer filled the write batch', async (t) => {
  // The writer flushes by itself at 256 KiB; if the refusal's frame crossed that line, the node used to find
  // nothing left to flush and never ended the socket: the client waited for a close that did not come.
  const { address } = await startNode(t);
  const token = signToken(secret, 'job-f');
  const writer = connect(t, address, token);
  const batch = 256 * 1024;
  // The GET answer (24-byte header + value) stays just under the flush line; the BAD_REQUEST behind it crosses it.
  t.is((await writer.request({ op: Op.PUT, key: 'big', value: Buffer.alloc(batch - HEADER_SIZE - 10, 1) })).status, Status.OK);
  const raw = await rawConnect(t, address);
  raw.send(Op.HELLO, 0, token);
  t.is((await raw.reply(0))?.code, Status.OK);
  // One write: the GET and a malformed header are handled in the same turn, before any flush.
  const get = rawHeader({ bodyLength: 3, keyLength: 3, code: Op.GET, id: 1 });
  raw.write(
    Buffer.concat([get, Buffer.from('big'), rawHeader({ bodyLength: 1, keyLength: 1, code: Op.GET, version: 9 }), Buffer.from('k')]),
  );
  const closed = await Promise.race([raw.closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(resolve, 3_000, false))]);
  t.true(closed, 'the node closed the connection');
  t.deepEqual(
    raw.frames.map((f) => [f.id, f.code]),
    [
      [0, Status.OK],
      [1, Status.OK],
      [0, Status.BAD_REQUEST],
    ],
  );

  // Before a HELLO a connection gets at most PRE_AUTH_MAX_FRAMES answers: a run of PINGs (which used to be
  // answered without end) ends with the connection.
  const early = await rawConnect(t, address);
  const frames: Buffer[] = [];
  for (let i = 0; i < 1000; i++) frames.push(rawHeader({ bodyLength: 0, code: Op.PING, id: 100 + i }));
  early.write(Buffer.concat(frames));
  const earlyClosed = await Promise.race([
    early.closed.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(resolve, 3_000, false)),
  ]);
  t.true(earlyClosed, 'the node closed the connection that sent PINGs and no HELLO');
  t.true(early.frames.length <= PRE_AUTH_MAX_FRAMES, `${early.frames.length} answers before a HELLO`);
});

test('a WAIT or WATCH that reuses the id of one still parked replaces it; closing the connection forgets both', async (t) => {
  const { address, server } = await startNode(t);
  const token = signToken(secret, 'job-r');
  for (const op of [Op.WATCH, Op.WAIT]) {
    const raw = await rawConnect(t, address);
    raw.send(Op.HELLO, 0, token);
    raw.send(op, 5, 'p', null, { arg: 3_600_000 });
    raw.send(op, 5, 'q', null, { arg: 3_600_000 });
    raw.send(Op.PING, 6);
    await raw.reply(6);
    t.is(server.coordination.active, 1, 'the second replaced the first');
    t.is(server.coordination.waiters + server.coordination.watches, 1);
    raw.destroy();
    await eventually(() => server.counters.connections === 0, 2_000, 'connection closed');
    t.is(server.coordination.active, 0, 'nothing parked outlives its connection');
    t.is(server.coordination.waiters + server.coordination.watches, 0);
  }
});

test('an admin DROP_JOB answered by an async engine keeps its own request id when more frames follow it', async (t) => {
  // A disk engine drops a job asynchronously; the answer used to read the id from the decoder's reused frame
  // view, so it went out under the id of whatever frame came next (and that request's caller got it).
  const engine = new DramEngine(MiB);
  const slow = Object.assign(Object.create(engine) as DramEngine, {
    dropJob: async (job: string) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return engine.dropJob(job);
    },
  });
  const server = new StorageServer({ id: 'dram-test', engine: slow, secret, logger });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  const raw = await rawConnect(t, address);
  raw.send(Op.HELLO, 0, adminToken);
  raw.send(Op.DROP_JOB, 1, 'job-a', null, { arg: 1 });
  raw.send(Op.ANNOUNCE, 2, 'job-b', null, { arg: 5 });
  raw.send(Op.PING, 3);
  await raw.waitFrames(4);
  t.deepEqual(
    raw.frames.map((f) => [f.id, f.code]).sort((a, b) => a[0]! - b[0]!),
    [
      [0, Status.OK],
      [1, Status.OK],
      [2, Status.OK],
      [3, Status.OK],
    ],
  );
  t.false(server.jobs.dropped.has('job-a'), 'moved (arg 1): the job is not refused from now on');
});

test('before HELLO a frame may carry no more than a token: a declared 10 MiB body is refused unread', async (t) => {
  const { address } = await startNode(t);
  const raw = await rawConnect(t, address);
  raw.write(rawHeader({ bodyLength: 10 * MiB, code: Op.PUT, id: 7, keyLength: 1 }));
  const refused = await raw.reply(7);
  t.is(refused?.code, Status.TOO_LARGE);
  // After a HELLO the node's own limit applies again.
  const hello = await rawConnect(t, address);
  hello.send(Op.HELLO, 0, signToken(secret, 'job-h'));
  hello.send(Op.PUT, 8, 'k', Buffer.alloc(64 * 1024, 1));
  t.is((await hello.reply(8))?.code, Status.OK);
});

test('a dropped job is remembered until its last token has expired, then forgotten', async (t) => {
  const dropped = new DroppedJobs();
  dropped.add('forever'); // no horizon given (a raw DROP_JOB): kept
  dropped.add('expired', Date.now() - 1);
  dropped.add('later', Date.now() + 60_000);
  t.true(dropped.has('forever'));
  t.false(dropped.has('expired'), 'its tokens are all expired: nothing left to refuse');
  t.true(dropped.has('later'));
  // Over the wire: DROP_JOB with the horizon as its value.
  const { address, server } = await startNode(t);
  const admin = connect(t, address, adminToken);
  const until = Buffer.alloc(8);
  until.writeBigInt64BE(BigInt(Date.now() + 3_600_000));
  t.is((await admin.request({ op: Op.DROP_JOB, key: 'job-z', value: until })).status, Status.OK);
  t.true(server.jobs.dropped.has('job-z'));
});

for (const tier of ['dram', 'ssd'] as const) {
  test(`${tier}: a job's own requests count in its traffic (ops, frame bytes, service time); another job's do not`, async (t) => {
    let server: StorageServer;
    let address: string;
    if (tier === 'dram') ({ server, address } = await startNode(t));
    else {
      // The disk engine answers through promises: the counts must follow the request to its answer.
      const dir = await mkdtemp(path.join(os.tmpdir(), 'satchel-server-traffic-'));
      t.teardown(() => rm(dir, { recursive: true, force: true }));
      const engine = new DiskEngine({ tier: 'ssd', capacity: 64 * MiB, path: dir });
      await engine.open();
      server = new StorageServer({ id: 'ssd-test', engine, secret, logger });
      address = await server.listen(0, '127.0.0.1');
      t.teardown(() => server.close());
    }
    const a = connect(t, address, signToken(secret, 'job-a'));
    const b = connect(t, address, signToken(secret, 'job-b'));
    const value = Buffer.alloc(1000, 7);
    t.is((await a.request({ op: Op.PUT, epoch: 1, key: 'k', value })).status, Status.OK);
    t.is((await a.request({ op: Op.GET, epoch: 1, key: 'k' })).status, Status.OK);
    t.is((await a.request({ op: Op.GET, epoch: 1, key: 'gone' })).status, Status.NOT_FOUND);
    const traffic = () => {
      const job = server.jobs.get('job-a')!;
      return {
        ops: job.traffic[TRAFFIC_OPS],
        in: job.traffic[TRAFFIC_IN],
        out: job.traffic[TRAFFIC_OUT],
        us: job.traffic[TRAFFIC_SERVICE_US]!,
      };
    };
    const after = traffic();
    t.is(after.ops, 3);
    t.is(after.in, HEADER_SIZE + 1 + 1000 + (HEADER_SIZE + 1) + (HEADER_SIZE + 4), 'each frame: header, key and value');
    t.is(after.out, HEADER_SIZE + (HEADER_SIZE + 1000) + HEADER_SIZE, 'each answer: header and body');
    t.true(after.us > 0, 'a lightly loaded node times every op');
    // The HELLO counted for nobody; another job's requests leave job-a's counts where they were.
    for (let i = 0; i < 5; i++) t.is((await b.request({ op: Op.PUT, epoch: 1, key: `k${i}`, value })).status, Status.OK);
    t.is((await b.request({ op: Op.GET, epoch: 1, key: 'k0' })).status, Status.OK);
    t.deepEqual(traffic(), after);
    const other = server.jobs.get('job-b')!.traffic;
    t.is(other[TRAFFIC_OPS], 6);
    t.is(other[TRAFFIC_OUT], 6 * HEADER_SIZE + 1000);
    t.true(other[TRAFFIC_SERVICE_US]! > 0);
    // A refusal is still the job's request; a parked WAIT is answered later, by a push, and is not counted.
    t.is((await a.request({ op: Op.PUT, epoch: 1, key: '', value })).status, Status.BAD_REQUEST);
    t.is(traffic().ops, 4);
    t.is((await a.request({ op: Op.WAIT, epoch: 1, key: 'later', arg: 50 })).status, Status.TIMEOUT);
    t.is(traffic().ops, 4);
  });
}
