/**
 * The limits a node holds against a hostile or broken client on the same network (storage-node/README.md,
 * "Limits"), each checked to hold while a well-behaved job on the same node keeps working: the HELLO deadline
 * and what a stranger may make the node write, token scopes, parked WAITs and WATCHes, epochs only the
 * controller raises, the budget for request bodies in flight, and FULL refusals reported to the controller.
 */

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { addService, bindServer, CONTROLLER_SERVICE, grpc } from '../proto/grpc.ts';
import {
  ADMIN_SUBJECT,
  type ControllerMethods,
  Flag,
  type NodeReport,
  Op,
  type ServiceImpl,
  Status,
  signToken,
  VIEWER_SUBJECT,
} from '../proto/index.ts';
import { rejection } from '../test/helpers/assert.ts';
import { connect, rawConnect } from '../test/helpers/node-session.ts';
import { decodeKeyList, eventually, type RawClient, splitAddress } from '../test/helpers/raw-client.ts';
import { DramEngine } from './dram-engine.ts';
import type { PutOutcome } from './engine.ts';
import { startStorageNode } from './node.ts';
import { PRE_AUTH_MAX_FRAMES, StorageServer, type StorageServerOptions } from './server.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const secret = randomBytes(32);
const adminToken = signToken(secret, ADMIN_SUBJECT);
const logger = pino({ level: 'silent' });
const BOOT = 'boot-limits';
/** What tickets carry (v2, expiring): the `data` scope. */
const dataToken = (job: string) => signToken(secret, job, Date.now() + 3_600_000);
/** The controller's own (v1, never expiring): the `internal` scope. */
const internalToken = (job: string) => signToken(secret, job);

async function startNode(
  t: ExecutionContext,
  options: Partial<StorageServerOptions> = {},
): Promise<{ server: StorageServer; address: string }> {
  const server = new StorageServer({ id: 'dram-test', engine: new DramEngine(64 * MiB), secret, logger, bootId: BOOT, ...options });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  return { server, address };
}

const closedWithin = (raw: RawClient, ms: number) =>
  Promise.race([raw.closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(resolve, ms, false))]);

test('HELLO with a viewer token → UNAUTHORIZED and the connection closed; data, internal and admin tokens are taken', async (t) => {
  const { address } = await startNode(t);
  const raw = await rawConnect(t, address);
  raw.send(Op.HELLO, 0, signToken(secret, VIEWER_SUBJECT));
  const hello = await raw.reply(0);
  t.is(hello?.code, Status.UNAUTHORIZED);
  t.regex(hello?.body.toString() ?? '', /viewer/);
  t.true(await closedWithin(raw, 3_000), 'the node closed the connection');
  for (const token of [dataToken('job-v'), internalToken('job-v'), adminToken]) {
    t.is((await connect(t, address, token).request({ op: Op.PING })).status, Status.OK);
  }
});

test('a refused connection is freed as soon as its peer closes, not after the grace; one that goes on sending goes at the grace', async (t) => {
  const { server, address } = await startNode(t);
  // What the node would wait before destroying a connection it ended (client-connection.ts CLOSE_GRACE_MS: 5 s).
  const wellBeforeTheGrace = 2_500;
  const polite = await rawConnect(t, address);
  polite.send(Op.HELLO, 0, signToken(secret, VIEWER_SUBJECT));
  t.is((await polite.reply(0))?.code, Status.UNAUTHORIZED);
  // The peer closes its side on the node's FIN (net's allowHalfOpen: false): the node sees it and lets go.
  t.true(await closedWithin(polite, 3_000), 'the node ended it');
  await eventually(() => server.counters.connections === 0, wellBeforeTheGrace, 'the node’s socket closed with its peer');

  const pushy = await rawConnect(t, address);
  pushy.socket.allowHalfOpen = true;
  pushy.send(Op.HELLO, 0, signToken(secret, VIEWER_SUBJECT));
  t.is((await pushy.reply(0))?.code, Status.UNAUTHORIZED);
  t.is(server.counters.connections, 1);
  // More than an ended connection may still send (64 KiB), its side kept open: no longer read (its answers may
  // still be leaving; destroyed, they would be lost), and closed at the grace.
  const readBefore = server.counters.bytesIn;
  pushy.write(Buffer.alloc(1024 * KiB));
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  t.is(server.counters.connections, 1, 'kept for its answers');
  // Reads stop at the first one past 64 KiB (libuv reads up to 64 KiB at a time).
  t.true(server.counters.bytesIn - readBefore <= 128 * KiB, `read ${server.counters.bytesIn - readBefore} bytes of 1 MiB`);
  await eventually(() => server.counters.connections === 0, 8_000, 'closed at the grace');
});

test('connections that do not complete a HELLO within the deadline are closed: 4,000 idle ones and a slow HELLO; HELLOed ones stay', async (t) => {
  // 4,000 rather than 10,000: both ends of every connection live in this process (8,000 descriptors; the limit
  // here is 20,000), and the node's default maxConnections is 4,096.
  const idle = 4_000;
  // Strangers past maxPreAuthConnections would be closed as they crowd in; this is about the deadline.
  const { server, address } = await startNode(t, { helloTimeoutMs: 1_000, maxPreAuthConnections: 10_000 });
  const [host, port] = splitAddress(address);
  const job = connect(t, address, dataToken('job-d'));
  t.is((await job.request({ op: Op.PUT, key: 'before', value: Buffer.from('v') })).status, Status.OK);
  const helloed = await rawConnect(t, address);
  helloed.send(Op.HELLO, 0, dataToken('job-d'));
  t.is((await helloed.reply(0))?.code, Status.OK);
  const sockets: net.Socket[] = [];
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  // How long each stayed open, from its connect to the node closing it.
  const lifetimes: number[] = [];
  for (let i = 0; i < idle; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, idle - i) }, () => {
        const socket = net.connect({ host, port });
        sockets.push(socket);
        socket.on('error', () => {});
        return new Promise<void>((resolve) =>
          socket.once('connect', () => {
            const at = Date.now();
            socket.on('close', () => lifetimes.push(Date.now() - at));
            resolve();
          }),
        );
      }),
    );
  }
  // Half a HELLO header, then nothing (slowloris).
  const slow = await rawConnect(t, address);
  slow.write(Buffer.alloc(10));
  await eventually(() => lifetimes.length === idle, 15_000, 'the idle connections closed by the node');
  t.true(await closedWithin(slow, 5_000), 'the slow HELLO closed');
  await eventually(() => server.counters.connections === 2, 5_000, 'only the HELLOed connections left');
  t.is(server.metrics.disconnectedCount('hello_timeout'), idle + 1);
  const shortest = Math.min(...lifetimes);
  const longest = Math.max(...lifetimes);
  t.log(`${idle} idle connections closed ${shortest}–${longest} ms after they opened (deadline 1,000 ms)`);
  t.true(shortest >= 950, `one closed after ${shortest} ms`);
  // The job's connections were not touched.
  t.is((await job.request({ op: Op.GET, key: 'before' })).body.toString(), 'v');
  helloed.send(Op.PING, 1);
  t.is((await helloed.reply(1))?.code, Status.OK);
});

test('the HELLO deadline is at most 10 s', (t) => {
  const make = (helloTimeoutMs: number) => () =>
    new StorageServer({ id: 'x', engine: new DramEngine(MiB), secret, logger, helloTimeoutMs });
  t.throws(make(10_001), { message: /helloTimeoutMs/ });
  t.throws(make(0), { message: /helloTimeoutMs/ });
  t.notThrows(make(10_000));
});

test(`before a HELLO at most ${PRE_AUTH_MAX_FRAMES} frames are answered, then the connection is closed; a HELLO among them opens it as usual`, async (t) => {
  const { server, address } = await startNode(t);
  const raw = await rawConnect(t, address);
  for (let id = 1; id <= PRE_AUTH_MAX_FRAMES + 5; id++) raw.send(Op.PING, id);
  t.true(await closedWithin(raw, 3_000), 'closed');
  t.is(raw.frames.length, PRE_AUTH_MAX_FRAMES, 'the PINGs up to the limit were answered');
  t.is(server.metrics.disconnectedCount('pre_auth_output'), 1);
  // A few PINGs, then the HELLO: a client may probe first.
  const ok = await rawConnect(t, address);
  for (let id = 1; id < PRE_AUTH_MAX_FRAMES; id++) ok.send(Op.PING, id);
  ok.send(Op.HELLO, 100, dataToken('job-p'));
  t.is((await ok.reply(100))?.code, Status.OK);
  for (let id = 200; id < 200 + 2 * PRE_AUTH_MAX_FRAMES; id++) ok.send(Op.PING, id);
  await ok.waitFrames(PRE_AUTH_MAX_FRAMES + 2 * PRE_AUTH_MAX_FRAMES);
  t.false(ok.socket.destroyed, 'after the HELLO, no limit');
});

test('parked WAITs and WATCHes are capped per connection and per job (FULL naming the limit); cancelling or waking one makes room; other jobs go on', async (t) => {
  const { server, address } = await startNode(t, { maxParkedPerConnection: 5, maxParkedPerJob: 8 });
  const a = await rawConnect(t, address);
  a.send(Op.HELLO, 0, dataToken('job-c'));
  for (let id = 1; id <= 4; id++) a.send(Op.WAIT, id, `key-${id}`, null, { arg: 3_600_000 });
  a.send(Op.WATCH, 5, 'w/');
  a.send(Op.WAIT, 6, 'key-6', null, { arg: 3_600_000 });
  a.send(Op.WATCH, 7, 'x/');
  const sixth = await a.reply(6);
  t.is(sixth?.code, Status.FULL);
  t.regex(sixth?.body.toString() ?? '', /this connection has 5 WAIT and WATCH requests parked/);
  t.is((await a.reply(7))?.code, Status.FULL, 'a WATCH too');
  // Reusing the id of one parked replaces it: no room needed.
  a.send(Op.WAIT, 4, 'key-4b', null, { arg: 3_600_000 });
  a.send(Op.PING, 8);
  await a.reply(8);
  t.is(server.coordination.parkedOf('job-c'), 5);
  const b = await rawConnect(t, address);
  b.send(Op.HELLO, 0, dataToken('job-c'));
  for (let id = 1; id <= 3; id++) b.send(Op.WAIT, id, `b-${id}`, null, { arg: 3_600_000 });
  b.send(Op.WAIT, 4, 'b-4', null, { arg: 3_600_000 });
  const ninth = await b.reply(4);
  t.is(ninth?.code, Status.FULL);
  t.regex(ninth?.body.toString() ?? '', /job job-c has 8 WAIT and WATCH requests parked on this node/);
  // Another job parks as it likes, and its writes go on.
  const other = connect(t, address, dataToken('job-o'));
  const waiting = other.park({ op: Op.WAIT, arg: 60_000, key: 'ready' });
  t.is((await other.request({ op: Op.PUT, key: 'ready', value: Buffer.from('yes') })).status, Status.OK);
  t.is((await waiting.reply).body.toString(), 'yes');
  // A CANCEL makes room for one more; so does a PUT that wakes a waiter (answered, as ever).
  a.send(Op.CANCEL, 9, '', null, { arg: 5 });
  t.is((await a.reply(9))?.arg, 1);
  b.send(Op.WAIT, 5, 'b-5', null, { arg: 3_600_000 });
  b.send(Op.WAIT, 6, 'b-6', null, { arg: 3_600_000 });
  t.is((await b.reply(6))?.code, Status.FULL, 'one slot freed, one taken');
  const writer = connect(t, address, dataToken('job-c'));
  t.is((await writer.request({ op: Op.PUT, key: 'key-1', value: Buffer.from('one') })).status, Status.OK);
  t.is((await a.reply(1))?.body.toString(), 'one');
  b.send(Op.WAIT, 7, 'b-7', null, { arg: 3_600_000 });
  b.send(Op.PING, 8);
  await b.reply(8);
  t.is(
    b.frames.find((f) => f.id === 7),
    undefined,
    'parked: the woken waiter made room',
  );
  t.is(server.coordination.parkedOf('job-c'), 8);
  a.destroy();
  // Its three left (ids 2, 3 and 4) go with it; the other connection's five stay.
  await eventually(() => server.coordination.parkedOf('job-c') === 5, 2_000, "a closed connection's requests freed");
});

test('a frame ahead of the epoch the controller announced is UNAVAILABLE and stores nothing: epoch 2^32−1 cannot lock the job out of its keys', async (t) => {
  const { address } = await startNode(t, { announcedJobsOnly: true });
  const admin = connect(t, address, adminToken);
  t.is((await admin.request({ op: Op.ANNOUNCE, arg: 3, key: 'job-e', value: Buffer.from(BOOT) })).status, Status.OK);
  const c = connect(t, address, dataToken('job-e'));
  const ahead = await rejection(t, c.request({ op: Op.PUT, epoch: 0xffffffff, key: 'k', value: Buffer.from('poison') }));
  t.is(ahead.code, 'UNAVAILABLE');
  t.regex(ahead.message, /has not been told of placement epoch 4294967295 yet/);
  for (const op of [Op.GET, Op.DELETE, Op.LIST, Op.WATCH])
    t.is((await rejection(t, c.request({ op, epoch: 4, key: 'k' }))).code, 'UNAVAILABLE', `op ${op}`);
  t.is((await c.request({ op: Op.GET, epoch: 3, key: 'k' })).status, Status.NOT_FOUND, 'nothing stored');
  // The job's own write at its real epoch.
  const own = await c.request({ op: Op.PUT, epoch: 3, key: 'k', value: Buffer.from('mine') });
  t.is(own.status, Status.OK);
  t.is((await c.request({ op: Op.GET, epoch: 3, key: 'k' })).body.toString(), 'mine');
  // A copy (the controller's, internal token) carries its version's epoch, never above the announced one.
  const copier = connect(t, address, internalToken('job-e'));
  t.is(
    (await rejection(t, copier.request({ op: Op.PUT, flags: Flag.COPY, epoch: 0xffffffff, arg: 1, key: 'c', value: Buffer.from('x') })))
      .code,
    'UNAVAILABLE',
  );
  t.is(
    (await copier.request({ op: Op.PUT, flags: Flag.COPY, epoch: 2, arg: 7, key: 'c', value: Buffer.from('copied') })).arg,
    1,
    'a copy of an older epoch lands',
  );
  t.is((await c.request({ op: Op.PUT, epoch: 3, key: 'c', value: Buffer.from('newer') })).status, Status.OK, 'and the job writes over it');
  // The controller's reads are served ahead (a restoration reads a node declared lost, never told the new
  // epoch, at the new placement's); its writes are not.
  t.is((await copier.request({ op: Op.GET, flags: Flag.VERSION, epoch: 9, key: 'k' })).body.toString(), 'mine');
  t.is((await copier.request({ op: Op.LIST, flags: Flag.INTERNAL_KEYS, epoch: 9, arg: 10 })).status, Status.OK);
  t.is((await rejection(t, copier.request({ op: Op.PUT, epoch: 9, key: 'k', value: Buffer.from('x') }))).code, 'UNAVAILABLE');
  // Once the controller raises the epoch, frames of it are served.
  t.is((await admin.request({ op: Op.ANNOUNCE, arg: 4, key: 'job-e', value: Buffer.from(BOOT) })).status, Status.OK);
  t.is((await c.request({ op: Op.PUT, epoch: 4, key: 'k', value: Buffer.from('four') })).status, Status.OK);
});

test('a key whose seqs ran out in an epoch refuses plain writes STALE, and the node goes on (no u32 overflow on the wire)', async (t) => {
  const { address } = await startNode(t);
  const c = connect(t, address, dataToken('job-q'));
  // A replica carries any seq; the next write the node orders would be 2^32.
  t.is((await c.request({ op: Op.PUT, flags: Flag.REPLICA, epoch: 5, arg: 0xffffffff, key: 'k', value: Buffer.from('r') })).arg, 1);
  const next = await c.request({ op: Op.PUT, epoch: 5, key: 'k', value: Buffer.from('w') });
  t.is(next.status, Status.STALE);
  t.regex(next.body.toString(), /versions in epoch 5 ran out/);
  t.is((await c.request({ op: Op.PUT, epoch: 6, key: 'k', value: Buffer.from('w6') })).status, Status.OK, 'a later epoch writes it');
  t.is((await c.request({ op: Op.GET, epoch: 6, key: 'k' })).body.toString(), 'w6');
});

test("internal keys and copies need the controller's (internal) token; the copies the client makes are allowed unless dataTokenCopies is off", async (t) => {
  for (const dataTokenCopies of [true, false]) {
    const { address } = await startNode(t, { dataTokenCopies });
    const data = connect(t, address, dataToken('job-s'));
    const internal = connect(t, address, internalToken('job-s'));
    for (const key of ['a', 'a\u0000v1\u00000', 'b'])
      t.is((await internal.request({ op: Op.PUT, key, value: Buffer.from('v') })).status, Status.OK);
    // LIST of internal keys (migration's).
    const listed = await data.request({ op: Op.LIST, flags: Flag.INTERNAL_KEYS, arg: 100 });
    t.is(listed.status, Status.UNAUTHORIZED);
    t.regex(listed.message, /internal keys need the controller's token/);
    const all = await internal.request({ op: Op.LIST, flags: Flag.INTERNAL_KEYS, arg: 100 });
    t.deepEqual(decodeKeyList(all.body), ['a', 'a\u0000v1\u00000', 'b']);
    t.deepEqual(decodeKeyList((await data.request({ op: Op.LIST, arg: 100 })).body), ['a', 'b'], 'a plain LIST is fine');
    // DELETE of a copy (no tombstone): the controller's.
    t.is((await data.request({ op: Op.DELETE, flags: Flag.COPY, key: 'b' })).status, Status.UNAUTHORIZED);
    t.is((await internal.request({ op: Op.DELETE, flags: Flag.COPY, key: 'b' })).status, Status.OK);
    // COPY on a read means nothing but skipping the lease: refused too.
    t.is((await data.request({ op: Op.GET, flags: Flag.COPY, key: 'a' })).status, Status.UNAUTHORIZED);
    // PUT and INCR copies: what client/job.ts sends (bringForward, tellIncrement).
    const put = await data.request({ op: Op.PUT, flags: Flag.COPY, arg: 3, key: 'c', value: Buffer.from('copy') });
    const told = Buffer.alloc(16);
    told.writeBigInt64BE(7n);
    const incr = await data.request({ op: Op.INCR, flags: Flag.REPLICA | Flag.COPY, arg: 2, key: 'n', value: told });
    const expected = dataTokenCopies ? Status.OK : Status.UNAUTHORIZED;
    t.is(put.status, expected, `PUT COPY, dataTokenCopies ${dataTokenCopies}`);
    t.is(incr.status, expected, `INCR COPY, dataTokenCopies ${dataTokenCopies}`);
    t.is((await internal.request({ op: Op.PUT, flags: Flag.COPY, arg: 4, key: 'c', value: Buffer.from('copy') })).status, Status.OK);
    // What clients send besides: replicas and versioned reads.
    t.is((await data.request({ op: Op.PUT, flags: Flag.REPLICA, arg: 9, key: 'r', value: Buffer.from('replica') })).status, Status.OK);
    const versioned = await data.request({ op: Op.GET, flags: Flag.VERSION, key: 'r' });
    t.is(versioned.status, Status.OK);
    t.is(versioned.arg, 9);
  }
});

test('writes refused FULL for want of room are counted per job, the first since a report asks for one; a quota refusal is not counted', async (t) => {
  const { server, address } = await startNode(t, { engine: new DramEngine(4 * KiB) });
  let asked = 0;
  server.onFullRefusal = () => asked++;
  const c = connect(t, address, dataToken('job-f'));
  const other = connect(t, address, dataToken('job-g'));
  t.is((await c.request({ op: Op.PUT, key: 'a', value: Buffer.alloc(3 * KiB) })).status, Status.OK);
  for (let i = 0; i < 3; i++) t.is((await c.request({ op: Op.PUT, key: `b${i}`, value: Buffer.alloc(2 * KiB) })).status, Status.FULL);
  t.is(server.fullRefusals.get('job-f'), 3);
  t.is(asked, 1, 'one ask for the three');
  t.is((await other.request({ op: Op.PUT, key: 'x', value: Buffer.alloc(2 * KiB) })).status, Status.FULL);
  t.is(asked, 2, "another job's first refusal asks again");
  t.deepEqual([...server.takeFullRefused()].sort(), ['job-f', 'job-g']);
  t.is((await c.request({ op: Op.PUT, key: 'b', value: Buffer.alloc(2 * KiB) })).status, Status.FULL);
  t.is(asked, 3, 'after a report, the next refusal asks again');
  t.is(server.fullRefusals.get('job-f'), 4, 'a running total');
  // The controller marked the job over its quota: FULL too, but not for want of room.
  const admin = connect(t, address, adminToken);
  t.is((await admin.request({ op: Op.LIMIT_JOB, arg: 1, key: 'job-f' })).status, Status.OK);
  t.is((await c.request({ op: Op.PUT, key: 'q', value: Buffer.from('v') })).status, Status.FULL);
  t.is(server.fullRefusals.get('job-f'), 4);
  // Deregistered: forgotten.
  t.is((await admin.request({ op: Op.DROP_JOB, key: 'job-f' })).status, Status.OK);
  t.is(server.fullRefusals.get('job-f'), undefined);
});

test('a FULL refusal is reported to the controller within ~50 ms, not at the next 1 s tick', async (t) => {
  // A controller stand-in: takes the registration and records every report with when it came.
  const reports: { at: number; report: NodeReport }[] = [];
  const grpcServer = new grpc.Server();
  const impl = {
    RegisterNode: async () => ({ nodeId: 'n', leaseMs: 0 }),
    ReportNode: async (report: NodeReport) => {
      reports.push({ at: Date.now(), report });
      return { unknown: false };
    },
  } as unknown as ServiceImpl<ControllerMethods>;
  addService(grpcServer, CONTROLLER_SERVICE, impl, () => {});
  const controller = await bindServer(grpcServer, '127.0.0.1', 0);
  t.teardown(() => void grpcServer.forceShutdown());
  const node = await startStorageNode({ tier: 'dram', capacity: 4 * KiB, secret, logger, host: '127.0.0.1', controller });
  t.teardown(() => node.close());
  const admin = connect(t, node.address, adminToken);
  t.is((await admin.request({ op: Op.ANNOUNCE, arg: 1, key: 'job-r', value: Buffer.from(node.bootId) })).status, Status.OK);
  const c = connect(t, node.address, dataToken('job-r'));
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'a', value: Buffer.alloc(3 * KiB) })).status, Status.OK);
  // Right after a tick's report: the next tick is a second away.
  const seen = reports.length;
  await eventually(() => reports.length > seen, 3_000, 'a report');
  const refusedAt = Date.now();
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'b', value: Buffer.alloc(2 * KiB) })).status, Status.FULL);
  const full = () =>
    reports.find((r) => r.at >= refusedAt && r.report.jobs.some((j) => j.jobId === 'job-r' && (j.fullRefusals ?? 0) === 1));
  await eventually(() => full() !== undefined, 3_000, 'a report with the refusal');
  const after = full()!.at - refusedAt;
  t.log(`reported ${after} ms after the refusal`);
  t.true(after < 500, `${after} ms`);
});

test('request bodies in flight to a slow engine stay within the node budget: job connections are not read past it, and every PUT lands', async (t) => {
  const dram = new DramEngine(256 * MiB);
  let server!: StorageServer;
  let peak = 0;
  // An engine that takes 5 ms per write, as a busy disk might.
  const slow = Object.assign(Object.create(dram) as DramEngine, {
    put: (...args: Parameters<DramEngine['put']>): Promise<PutOutcome> => {
      peak = Math.max(peak, server.inflightBodyBytes);
      return new Promise((resolve) => setTimeout(() => resolve(dram.put(...args)), 5));
    },
  });
  const budget = MiB;
  const started = await startNode(t, { engine: slow, maxInflightBodyBytes: budget });
  server = started.server;
  const connections = [0, 1, 2].map(() => connect(t, started.address, dataToken('job-b')));
  const value = Buffer.alloc(64 * KiB, 9);
  const statuses = await Promise.all(
    connections.flatMap((c, n) =>
      Array.from({ length: 100 }, (_, i) => c.request({ op: Op.PUT, key: `c${n}/${i}`, value }).then((r) => r.status)),
    ),
  );
  t.true(
    statuses.every((s) => s === Status.OK),
    'every PUT stored',
  );
  // Past the budget each connection finishes the read it is in (64 KiB) and stops.
  const slack = connections.length * 2 * value.length;
  t.log(
    `peak ${(peak / MiB).toFixed(2)} MiB in flight for a budget of ${budget / MiB} MiB (${(connections.length * 100 * value.length) / MiB} MiB sent at once)`,
  );
  t.true(peak <= budget + slack, `${peak} bytes in flight`);
  t.true(peak >= budget / 2, 'the budget was reached (the test would not show anything otherwise)');
  t.is(server.inflightBodyBytes, 0);
  t.false(server.readsHeld);
});

test('startStorageNode hands the limits to its server', async (t) => {
  const node = await startStorageNode({
    tier: 'dram',
    capacity: MiB,
    secret,
    logger,
    host: '127.0.0.1',
    helloTimeoutMs: 300,
    maxParkedPerConnection: 1,
  });
  t.teardown(() => node.close());
  const idle = await rawConnect(t, node.address);
  t.true(await closedWithin(idle, 3_000), 'closed at the deadline');
  const raw = await rawConnect(t, node.address);
  raw.send(Op.HELLO, 0, dataToken('job-n'));
  raw.send(Op.WAIT, 1, 'a', null, { arg: 60_000 });
  raw.send(Op.WAIT, 2, 'b', null, { arg: 60_000 });
  t.is((await raw.reply(2))?.code, Status.FULL);
});
