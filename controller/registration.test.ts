/**
 * Registration's first placement (placement-publisher.ts `placeNew`): the job's record, its nodes and the metadata
 * servers are told at once, the reply waits for all three, and a registration that fails is undone everywhere —
 * but only once every part still in flight has settled, so no undo overtakes the write it undoes. A placement
 * change of a registered job keeps its order (announce, then publish). The store, the nodes' admin calls and the
 * metadata servers are stand-ins whose answers the tests release one by one.
 */

import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { SatchelError, type WirePlacement } from '../proto/index.ts';
import { ControllerContext } from './context.ts';
import { JobBook } from './jobs.ts';
import type { JobRecord } from './registry.ts';
import type { ControllerStore } from './store.ts';
import { defaultTenantKey } from './tenants.ts';

const secret = randomBytes(32);
const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;

/** A promise and the functions that settle it. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every promise callback queued so far run (the stand-ins answer nothing until released). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A controller context with one DRAM node and one metadata server, whose store, admin calls and metadata calls
 * are recorded in `calls` (in the order they were made) and answer only when the test releases them.
 */
async function setup(t: ExecutionContext) {
  // No spare placements (spare-jobs.test.ts has them): every registration here places its job.
  const ctx = new ControllerContext({ secret, logger, spareJobs: 0 });
  t.teardown(() => {
    ctx.admin.close();
    ctx.metadata.close();
  });
  ctx.address = '127.0.0.1:7070';
  ctx.registry.nodes.set('n0', {
    id: 'n0',
    tier: 'dram',
    address: '127.0.0.1:1',
    capacity: 64 * MiB,
    bandwidth: 1e9,
    registeredAt: Date.now(),
    bootId: 'b0',
  });
  ctx.metadata.connect('127.0.0.1:2'); // never dialled: its calls are replaced below
  const calls: string[] = [];
  const pending = { persist: deferred(), announce: deferred(), publish: deferred() };
  const stored = new Map<string, JobRecord>();
  const dropped = { nodes: [] as string[], metadata: [] as string[] };
  const store = {
    putJob: async (job: JobRecord) => {
      calls.push('persist');
      await pending.persist.promise;
      stored.set(job.id, structuredClone(job));
    },
    deleteJob: async (id: string) => {
      calls.push('store delete');
      stored.delete(id);
    },
    putTenant: async () => {},
  };
  ctx.store = store as unknown as ControllerStore;
  ctx.admin.announce = async (address: string) => {
    calls.push(`announce ${address}`);
    await pending.announce.promise;
  };
  ctx.admin.dropJob = async (address: string) => {
    calls.push(`drop ${address}`);
    dropped.nodes.push(address);
    return 0;
  };
  ctx.metadata.publish = async (placement: WirePlacement) => {
    calls.push(`publish epoch ${placement.epoch}`);
    await pending.publish.promise;
  };
  ctx.metadata.drop = async (jobId: string) => {
    calls.push('metadata drop');
    dropped.metadata.push(jobId);
    return 0;
  };
  const jobs = new JobBook(ctx);
  await jobs.ensureDefaultTenant(defaultTenantKey(secret));
  return { ctx, jobs, calls, pending, stored, dropped };
}

test('a new job is persisted, announced and published at once, and registered once all three are done', async (t) => {
  const { ctx, jobs, calls, pending, stored } = await setup(t);
  let replied = false;
  const registration = jobs.registerJob('parallel', { capacity: MiB }).then((reply) => {
    replied = true;
    return reply;
  });
  await settle();
  t.deepEqual([...calls].sort(), ['announce 127.0.0.1:1', 'persist', 'publish epoch 1'], 'all three started before any answered');
  pending.publish.resolve();
  pending.announce.resolve();
  await settle();
  t.false(replied, 'no reply while the record is not written: a restarted controller must know every job it handed out');
  t.is(ctx.registry.jobs.size, 0);
  pending.persist.resolve();
  const reply = await registration;
  t.true(ctx.registry.jobs.has(reply.jobId));
  t.is(ctx.registering.size, 0);
  t.is(stored.get(reply.jobId)?.placement.epoch, 1, 'the record holds the placement the reply carries');
  t.is(reply.placement!.generations[0]!.nodes[0]!.id, 'n0');
});

test('a registration whose metadata publish fails is undone only after the rest has settled, and leaves nothing behind', async (t) => {
  const { ctx, jobs, calls, pending, stored, dropped } = await setup(t);
  const registration = jobs.registerJob('doomed', { capacity: MiB });
  registration.catch(() => {}); // awaited below
  await settle();
  pending.publish.reject(new SatchelError('UNAVAILABLE', 'metadata down'));
  await settle();
  t.false(
    calls.some((c) => c.startsWith('drop') || c === 'metadata drop' || c === 'store delete'),
    'nothing is undone while the announcement and the record are in flight: the undo would overtake them',
  );
  pending.announce.resolve();
  pending.persist.resolve();
  const error = await t.throwsAsync(registration, { instanceOf: SatchelError });
  t.is(error?.code, 'UNAVAILABLE');
  t.deepEqual(dropped.nodes, ['127.0.0.1:1'], 'the node announced is told to drop the job');
  t.is(dropped.metadata.length, 1, 'the metadata servers drop its placement');
  t.is(stored.size, 0, 'the record written is deleted');
  t.is(ctx.registry.jobs.size, 0);
  t.is(ctx.registering.size, 0);
});

test('a registration whose record cannot be written is undone everywhere', async (t) => {
  const { ctx, jobs, pending, stored, dropped } = await setup(t);
  const registration = jobs.registerJob('unwritable', { capacity: MiB });
  registration.catch(() => {}); // awaited below
  await settle();
  pending.persist.reject(new Error('disk full'));
  pending.announce.resolve();
  pending.publish.resolve();
  await t.throwsAsync(registration, { message: 'disk full' });
  t.deepEqual(dropped.nodes, ['127.0.0.1:1']);
  t.is(dropped.metadata.length, 1);
  t.is(stored.size, 0);
  t.is(ctx.registry.jobs.size, 0);
  t.is(ctx.registering.size, 0);
});

test('an announcement that fails does not fail the registration: it is counted, and the node told when it reports', async (t) => {
  const { ctx, jobs, pending } = await setup(t);
  const registration = jobs.registerJob('node-late', { capacity: MiB });
  await settle();
  pending.announce.reject(new SatchelError('TIMEOUT', 'node slow'));
  pending.persist.resolve();
  pending.publish.resolve();
  const reply = await registration;
  t.true(ctx.registry.jobs.has(reply.jobId));
  t.is(ctx.failures.byOp.get('announce'), 1);
});

test('a placement change of a registered job still announces to its new node before it publishes', async (t) => {
  const { ctx, jobs, calls, pending } = await setup(t);
  pending.persist.resolve();
  pending.announce.resolve();
  pending.publish.resolve();
  const reply = await jobs.registerJob('growing', { capacity: MiB });
  const job = ctx.registry.jobs.get(reply.jobId)!;
  ctx.registry.nodes.set('n1', {
    id: 'n1',
    tier: 'dram',
    address: '127.0.0.1:3',
    capacity: 64 * MiB,
    bandwidth: 1e9,
    registeredAt: Date.now(),
    bootId: 'b1',
  });
  const announced = deferred();
  ctx.admin.announce = async (address: string) => {
    calls.push(`announce ${address}`);
    if (address === '127.0.0.1:3') await announced.promise;
  };
  calls.length = 0;
  const change = ctx.publisher.apply(job, {
    ...job.placement,
    epoch: 2,
    generations: [{ nodes: [{ id: 'n1', address: '127.0.0.1:3', weight: 1 }] }, ...job.placement.generations],
  });
  await settle();
  t.deepEqual(calls, ['persist', 'announce 127.0.0.1:3'], 'no publish while the new node has not taken the job');
  announced.resolve();
  await change;
  t.deepEqual(calls, ['persist', 'announce 127.0.0.1:3', 'announce 127.0.0.1:1', 'publish epoch 2']);
});

test('what the cluster can ever hold follows the nodes: a node joining, replaced or forgotten moves the limit', async (t) => {
  const { ctx, jobs, pending } = await setup(t);
  pending.persist.resolve();
  pending.announce.resolve();
  pending.publish.resolve();
  const refusal = async (capacity: number) => {
    try {
      await jobs.registerJob(`c${capacity}`, { capacity });
      return null;
    } catch (error) {
      return error instanceof SatchelError && /can ever hold/.test(error.message) ? error.code : 'other';
    }
  };
  t.is(await refusal(65 * MiB), 'BAD_REQUEST', 'more than the one 64 MiB node');
  const second = { id: 'n1', tier: 'dram', address: '127.0.0.1:3', capacity: 64 * MiB, bandwidth: 1e9, registeredAt: 0, bootId: 'b1' };
  ctx.registry.nodes.set('n1', second);
  t.is(await refusal(65 * MiB), null, 'two nodes hold it');
  t.is(await refusal(129 * MiB), 'BAD_REQUEST');
  ctx.registry.nodes.set('n1', { ...second, capacity: 128 * MiB });
  t.is(await refusal(129 * MiB), null, 'the node came back larger');
  ctx.registry.nodes.delete('n1');
  t.is(await refusal(65 * MiB), 'BAD_REQUEST', 'forgotten');
});
