/**
 * Clean edges (issue 16): whatever a caller passes, and whenever it calls, the client answers with a SatchelError
 * and a code — BAD_REQUEST for input of the wrong type, CLOSED for a handle used after close — never a TypeError
 * from inside, a plain Error from grpc-js, or a crash. Functions are often plain JavaScript fed event payloads,
 * so every public method is driven with what TypeScript would have refused.
 */
import test from 'ava';
import { type ErrorCode, encodeManifest, encodeTicket, Flag, Op, SatchelError, Status } from '../proto/index.ts';
import { useSharedCluster } from '../test/helpers/shared-cluster.ts';
import { startFakeNode } from './fake-node.suite.ts';
import { Job, RegisteredJob, Satchel } from './index.ts';

const shared = useSharedCluster(test, 'edges');

/** What TypeScript would refuse: each case below passes one. */
const any = (value: unknown) => value as never;

/** The error `call` throws or rejects with (list: on the first step), or undefined. */
async function failure(call: () => unknown): Promise<unknown> {
  try {
    const result = call();
    if (result !== null && typeof result === 'object' && Symbol.asyncIterator in result) {
      for await (const _ of result as AsyncIterable<unknown>) break;
    } else {
      await result;
    }
  } catch (error) {
    return error;
  }
  return undefined;
}

type Case = [name: string, call: () => unknown];

/** Every case fails with a SatchelError of `code`, whose message says something. */
async function expectAll(t: import('ava').ExecutionContext, code: ErrorCode, cases: Case[]): Promise<void> {
  for (const [name, call] of cases) {
    const error = await failure(call);
    t.true(error instanceof SatchelError, `${name}: ${error === undefined ? 'did not fail' : String(error)}`);
    t.is((error as SatchelError | undefined)?.code, code, `${name}: ${String(error)}`);
  }
}

/** Every method of a job handle with input of the wrong type. */
function jobCases(job: Job): Case[] {
  return [
    ['put: key a number', () => job.put(any(42), 'v')],
    ['put: value a number', () => job.put('k', any(42))],
    ['put: value an object', () => job.put('k', any({ text: 'v' }))],
    ['put: value null', () => job.put('k', any(null))],
    ['put: value an array of bytes', () => job.put('k', any([1, 2, 3]))],
    ['get: key null', () => job.get(any(null))],
    ['get: key a symbol', () => job.get(any(Symbol('k')))],
    ['stat: key a number', () => job.stat(any(42))],
    ['delete: key undefined', () => job.delete(any(undefined))],
    ['list: prefix a number', () => job.list(any(42))],
    ['list: options null', () => job.list('', any(null))],
    ['list: pageSize a string', () => job.list('', any({ pageSize: '10' }))],
    ['list: pageSize 0', () => job.list('', { pageSize: 0 })],
    ['list: pageSize negative', () => job.list('', { pageSize: -3 })],
    ['list: pageSize over 1,000', () => job.list('', { pageSize: 5000 })],
    ['waitFor: key a number', () => job.waitFor(any(42))],
    ['waitFor: options null', () => job.waitFor('k', any(null))],
    ['waitFor: timeoutMs a string', () => job.waitFor('k', any({ timeoutMs: '1s' }))],
    ['incr: key an object', () => job.incr(any({}))],
    ['incr: by a string', () => job.incr('c', any('1'))],
    ['incr: by a fraction', () => job.incr('c', 1.5)],
    ['barrier: name a symbol', () => job.barrier(any(Symbol('b')), 2)],
    ['barrier: name a number', () => job.barrier(any(42), 1)],
    ['barrier: parties a string', () => job.barrier('b', any('2'))],
    ['barrier: options a string', () => job.barrier('b', 2, any('soon'))],
    ['barrier: timeoutMs a string', () => job.barrier('b', 2, any({ timeoutMs: '1s' }))],
    ['putMany: entries null', () => job.putMany(any(null))],
    ['putMany: entries a number', () => job.putMany(any(42))],
    ['putMany: entries a string', () => job.putMany(any('ab'))],
    ['putMany: an entry not a pair', () => job.putMany(any([42]))],
    ['putMany: a value a number', () => job.putMany(any([['k', 42]]))],
    ['putMany: a value in an object a number', () => job.putMany(any({ k: 42 }))],
    ['putMany: options null', () => job.putMany([['k', 'v']], any(null))],
    ['putMany: window 0', () => job.putMany([['k', 'v']], { window: 0 })],
    ['getMany: keys null', () => job.getMany(any(null))],
    ['getMany: keys a string', () => job.getMany(any('ab'))],
    ['getMany: a key a number', () => job.getMany(any([42]))],
    ['getMany: window a string', () => job.getMany(['k'], any({ window: '8' }))],
    ['watch: prefix a number', () => job.watch(any(42))],
    ['watch: options null', () => job.watch('', any(null))],
    ['watch: maxBuffered a string', () => job.watch('', any({ maxBuffered: 'lots' }))],
  ];
}

/** Every method of a job handle with good input: after close, each must fail with CLOSED. */
function closedCases(job: Job): Case[] {
  return [
    ['put', () => job.put('k', 'v')],
    ['get', () => job.get('k')],
    ['stat', () => job.stat('k')],
    ['delete', () => job.delete('k')],
    ['list', () => job.list('')],
    ['waitFor', () => job.waitFor('k', { timeoutMs: 1_000 })],
    ['incr', () => job.incr('c')],
    ['barrier', () => job.barrier('b', 2, { timeoutMs: 1_000 })],
    ['putMany', () => job.putMany([['k', 'v']])],
    ['getMany', () => job.getMany(['k'])],
    ['watch', () => job.watch('')],
  ];
}

test('Satchel.connect, Satchel.attach and registerJob with input of the wrong type → BAD_REQUEST', async (t) => {
  const { controllerAddress: controller, tenantKey: key } = shared.cluster;
  const job = await shared.register(t);
  const pem = '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n'; // only its type matters here
  await expectAll(t, 'BAD_REQUEST', [
    ['connect: address a number', () => Satchel.connect(any(7070))],
    ['connect: address undefined', () => Satchel.connect(any(undefined))],
    ['connect: options null', () => Satchel.connect(controller, any(null))],
    ['connect: options a string', () => Satchel.connect(controller, any(key))],
    ['connect: key a number', () => Satchel.connect(controller, any({ key: 42 }))],
    // A string here crashed the process: grpc-js threw its "Deadline is too far in the future" uncaught.
    ['connect: timeoutMs a string', () => Satchel.connect(controller, any({ key, timeoutMs: '5s' }))],
    ['connect: timeoutMs past a timer', () => Satchel.connect(controller, { key, timeoutMs: 2 ** 31 })],
    ['connect: timeoutMs negative', () => Satchel.connect(controller, { key, timeoutMs: -1 })],
    ['connect: timeoutMs NaN', () => Satchel.connect(controller, { key, timeoutMs: Number.NaN })],
    ['connect: blockParallelism 0', () => Satchel.connect(controller, { key, blockParallelism: 0 })],
    ['connect: tls a string', () => Satchel.connect(controller, any({ key, tls: pem }))],
    ['connect: tls.ca a number', () => Satchel.connect(controller, any({ key, tls: { ca: 42 } }))],
    ['connect: tls.servername a number', () => Satchel.connect(controller, any({ key, tls: { ca: pem, servername: 42 } }))],
    ['attach: ticket a number', () => Satchel.attach(any(42))],
    ['attach: ticket null', () => Satchel.attach(any(null))],
    ['attach: ticket an object', () => Satchel.attach(any({ ticket: job.ticket }))],
    ['attach: options null', () => Satchel.attach(job.ticket, any(null))],
    ['attach: timeoutMs a string', () => Satchel.attach(job.ticket, any({ timeoutMs: 'soon' }))],
    ['attach: timeoutMs Infinity', () => Satchel.attach(job.ticket, { timeoutMs: Infinity })],
    ['attach: blockParallelism a string', () => Satchel.attach(job.ticket, any({ blockParallelism: '8' }))],
    ['registerJob: name a number', () => shared.satchel.registerJob(any(42))],
    ['registerJob: hints null', () => shared.satchel.registerJob('x', any(null))],
    ['registerJob: hints a string', () => shared.satchel.registerJob('x', any('fast'))],
    ['registerJob: capacity a string', () => shared.satchel.registerJob('x', any({ capacity: '1GiB' }))],
    ['registerJob: peakThroughput NaN', () => shared.satchel.registerJob('x', { peakThroughput: Number.NaN })],
    ['registerJob: maxValueBytes Infinity', () => shared.satchel.registerJob('x', { maxValueBytes: Infinity })],
    ['registerJob: latencySensitive a string', () => shared.satchel.registerJob('x', any({ latencySensitive: 'yes' }))],
    ['registerJob: functions a fraction', () => shared.satchel.registerJob('x', { functions: 1.5 })],
    ['registerJob: functions negative', () => shared.satchel.registerJob('x', { functions: -1 })],
    ['registerJob: replicas a string', () => shared.satchel.registerJob('x', any({ replicas: '2' }))],
    // The published typings leave Job's constructor out (it is Satchel's), so plain JavaScript can still reach it.
    ['new Job() without what Satchel gives it', () => new (Job as unknown as new (...args: unknown[]) => Job)()],
    ['new RegisteredJob(ticket)', () => new (RegisteredJob as unknown as new (...args: unknown[]) => Job)(job.ticket)],
  ]);
});

test('every method of a registered job and of an attached one, with input of the wrong type → BAD_REQUEST, nothing stored', async (t) => {
  const registered = await shared.register(t);
  const attached = await Satchel.attach(registered.ticket, { timeoutMs: 5_000 });
  t.teardown(() => attached.close());
  await expectAll(t, 'BAD_REQUEST', jobCases(registered));
  await expectAll(t, 'BAD_REQUEST', jobCases(attached));
  const keys: string[] = [];
  for await (const key of attached.list()) keys.push(key);
  t.deepEqual(keys, []);
  // The handles still work.
  await attached.put('k', 'v');
  t.is((await registered.get('k'))?.toString(), 'v');
});

test('after close: a Satchel, a RegisteredJob and an attached Job answer every call with CLOSED', async (t) => {
  const { controllerAddress: controller, tenantKey: key } = shared.cluster;
  const satchel = await Satchel.connect(controller, { key, timeoutMs: 5_000 });
  const registered = await satchel.registerJob('edges-closing');
  t.teardown(() => registered.deregister().catch(() => {}));
  const attached = await Satchel.attach(registered.ticket, { timeoutMs: 5_000 });
  const another = await satchel.registerJob('edges-deregistered');

  // registerJob after close threw a plain `Error: Channel has been shut down` (grpc-js), with no code.
  satchel.close();
  satchel.close(); // idempotent
  await expectAll(t, 'CLOSED', [
    ['registerJob', () => satchel.registerJob('after-close')],
    ['registerJob again', () => satchel.registerJob('after-close', { capacity: 1024 })],
  ]);
  // Jobs registered through it stay open.
  await registered.put('k', 'v');
  t.is((await attached.get('k'))?.toString(), 'v');

  await attached.close();
  await expectAll(t, 'CLOSED', closedCases(attached));
  await attached.close(); // idempotent

  // A registered job's handle closed by deregister: the driver's credential is gone with it.
  await another.deregister();
  await expectAll(t, 'CLOSED', [...closedCases(another), ['deregister', () => another.deregister()]]);

  // Closed, not deregistered: deregister too is CLOSED, and the job lives on (until its lease lapses).
  await registered.close();
  await expectAll(t, 'CLOSED', [...closedCases(registered), ['deregister', () => registered.deregister()]]);
  const again = await Satchel.attach(registered.ticket, { timeoutMs: 5_000 });
  t.teardown(() => again.close());
  t.is((await again.get('k'))?.toString(), 'v');
});

test('answers a node should never give (a manifest of an impossible size, an INCR without its total) are SatchelErrors too', async (t) => {
  // A node that holds a manifest of 1 TiB under every key, and answers INCR OK with an empty body.
  const node = await startFakeNode((request) => {
    if (request.code === Op.HELLO) request.answer(Status.OK, null, { arg: 1024 * 1024 });
    else if (request.code === Op.GET) {
      request.answer(Status.OK, encodeManifest({ size: 2 ** 40, blockSize: 2 ** 20, blockCount: 2 ** 20, version: 'v1' }), {
        flags: Flag.MANIFEST,
      });
    } else request.answer(Status.OK);
  });
  t.teardown(() => node.close());
  const job = 'edges-fake';
  const ticket = encodeTicket({
    v: 1,
    job,
    token: `v1.${job}.fake`,
    metadata: ['127.0.0.1:1'],
    controller: '127.0.0.1:1',
    placement: {
      jobId: job,
      epoch: 1,
      generations: [{ nodes: [{ id: 'fake', address: node.address, weight: 1 }] }],
      blockSize: 1024 * 1024,
      maxValueBytes: 2 ** 30,
    },
  });
  const handle = await Satchel.attach(ticket, { timeoutMs: 2_000 });
  t.teardown(() => handle.close());
  // Was a RangeError from Buffer.allocUnsafe, and from readBigInt64BE.
  await expectAll(t, 'BAD_REQUEST', [['get: a corrupt manifest', () => handle.get('k')]]);
  await expectAll(t, 'UNAVAILABLE', [['incr: no total', () => handle.incr('c')]]);
});
