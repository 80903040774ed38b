/**
 * Coordination through the client against an in-process cluster: waitFor, watch, incr, barrier, putMany and
 * getMany, including what the nodes hold afterwards (no waiter or watch left behind).
 */
import test, { type ExecutionContext } from 'ava';
import { SatchelError } from '../proto/index.ts';
import { pattern, rejection } from '../test/helpers/assert.ts';
import { eventually } from '../test/helpers/raw-client.ts';
import { TWO_NODES, useSharedCluster } from '../test/helpers/shared-cluster.ts';
import { type Job, type RegisteredJob, Satchel, type Watch, type WatchEvent } from './index.ts';

const MiB = 1024 * 1024;
const shared = useSharedCluster(test, 'coord');
const { register } = shared;

/** Another process's view of the job: a second handle from the ticket, with its own connections. */
async function attach(t: ExecutionContext, job: RegisteredJob): Promise<Job> {
  const handle = await Satchel.attach(job.ticket, { timeoutMs: 5_000 });
  t.teardown(() => handle.close());
  return handle;
}

const parked = () => shared.cluster.nodes.reduce((n, node) => n + node.server.coordination.waiters + node.server.coordination.watches, 0);

async function take(watch: Watch, count: number): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  for await (const event of watch) {
    events.push(event);
    if (events.length === count) break;
  }
  return events;
}

test.serial('waitFor: a waiter that arrives before the put gets the value; one after it gets it at once', async (t) => {
  const job = await register(t, TWO_NODES);
  const other = await attach(t, job);
  const waiting = other.waitFor('map-1/done', { timeoutMs: 5_000 });
  await eventually(() => parked() === 1, 2_000, 'the waiter parked on its node');
  await job.put('map-1/done', 'ready');
  t.is((await waiting).toString(), 'ready');
  t.is((await other.waitFor('map-1/done')).toString(), 'ready', 'already there: answered at once');
  t.is(parked(), 0);
});

test.serial('waitFor: many waiters on one key and a large (block-split) value', async (t) => {
  const job = await register(t, TWO_NODES);
  const other = await attach(t, job);
  const value = pattern(3 * MiB + 17, 5);
  const waiters = Array.from({ length: 20 }, () => other.waitFor('big'));
  await eventually(() => parked() === 20, 2_000, 'twenty waiters parked');
  await job.put('big', value);
  for (const got of await Promise.all(waiters)) t.true(got.equals(value));
  t.is(parked(), 0);
});

test.serial('waitFor: TIMEOUT when the key does not appear in time, and nothing stays parked', async (t) => {
  const job = await register(t);
  const started = Date.now();
  const error = await rejection(t, job.waitFor('never', { timeoutMs: 150 }));
  t.is(error.code, 'TIMEOUT');
  t.true(Date.now() - started >= 140, 'not before its time');
  t.is(parked(), 0);
  t.is((await rejection(t, job.waitFor('x', { timeoutMs: 0 }))).code, 'BAD_REQUEST');
  t.is((await rejection(t, job.waitFor('x', { timeoutMs: 1.5 }))).code, 'BAD_REQUEST');
  t.is((await rejection(t, job.waitFor(''))).code, 'BAD_REQUEST');
});

test.serial('waitFor: a job deregistered while waiting → NO_SUCH_JOB, and the node forgets the waiter', async (t) => {
  const job = await register(t, TWO_NODES);
  const other = await attach(t, job);
  const waiting = Promise.all([other.waitFor('a'), other.waitFor('b'), other.waitFor('c')]);
  await eventually(() => parked() === 3, 2_000, 'three waiters parked');
  await job.deregister();
  t.is((await rejection(t, waiting)).code, 'NO_SUCH_JOB');
  t.is(parked(), 0);
});

test.serial('waitFor: closing the handle fails its waits with CLOSED and frees them on the node', async (t) => {
  const job = await register(t);
  const other = await Satchel.attach(job.ticket, { timeoutMs: 5_000 });
  const waiting = other.waitFor('later');
  await eventually(() => parked() === 1, 2_000, 'parked');
  await other.close();
  t.is((await rejection(t, waiting)).code, 'CLOSED');
  await eventually(() => parked() === 0, 2_000, 'the node dropped the waiter with the connection');
  t.pass();
});

test.serial('waitFor across a placement change: the waiter follows the key to its new owner', async (t) => {
  const job = await register(t); // one node
  const other = await attach(t, job);
  await job.put('old-key', 'from before');
  const waiters = Array.from({ length: 16 }, (_, i) => other.waitFor(`late-${i}`));
  await eventually(() => parked() === 16, 2_000, 'parked');
  const placement = shared.cluster.controller.registry.jobs.get(job.id)!.placement;
  const grown = await shared.cluster.controller.growJob(job.id, placement.generations[0]!.nodes[0]!.id, placement.epoch, 'by-admin');
  t.is(grown.generations.length, 2, 'a second generation over both nodes');
  // The waiters were told STALE, looked the placement up again and parked at the keys' new owners.
  const writer = await attach(t, job);
  for (let i = 0; i < 16; i++) await writer.put(`late-${i}`, `v${i}`);
  t.deepEqual(
    (await Promise.all(waiters)).map(String),
    Array.from({ length: 16 }, (_, i) => `v${i}`),
  );
  t.is((await other.waitFor('old-key')).toString(), 'from before', 'found in the older generation');
  await eventually(() => parked() === 0, 2_000, 'the wait at the new owner was cancelled');
  t.pass();
});

test.serial('watch: puts and deletes under the prefix from every node, in order per key; close frees the nodes', async (t) => {
  const job = await register(t, TWO_NODES);
  const watch = await job.watch('map-');
  t.is(parked(), 2, 'one watch per node');
  const other = await attach(t, job);
  for (let i = 0; i < 20; i++) await other.put(`map-${i}`, 'x');
  await other.put('reduce-1', 'not watched');
  await other.delete('map-3');
  const events = await take(watch, 21);
  t.deepEqual(
    events
      .filter((e) => e.type === 'put')
      .map((e) => e.key)
      .sort(),
    Array.from({ length: 20 }, (_, i) => `map-${i}`).sort(),
  );
  t.deepEqual(events.at(-1), { type: 'delete', key: 'map-3' });
  await eventually(() => parked() === 0, 2_000, 'leaving the loop closed the watch on both nodes');
  await watch.close();
});

test.serial('watch follows the job onto a node it grows onto', async (t) => {
  const job = await register(t); // one node
  const watch = await job.watch();
  t.is(parked(), 1);
  const placement = shared.cluster.controller.registry.jobs.get(job.id)!.placement;
  await shared.cluster.controller.growJob(job.id, placement.generations[0]!.nodes[0]!.id, placement.epoch, 'by-admin');
  await eventually(() => parked() === 2, 3_000, 'the watch joined the second node');
  const other = await attach(t, job);
  const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
  for (const key of keys) await other.put(key, 'v');
  const seen = new Set((await take(watch, keys.length)).map((e) => e.key));
  t.deepEqual([...seen].sort(), [...keys].sort(), 'keys landing on both nodes are reported');
  await eventually(() => parked() === 0, 2_000, 'closed on both nodes');
});

test.serial('watch: a deregistered job ends the iterator with NO_SUCH_JOB', async (t) => {
  const job = await register(t);
  const watch = await (await attach(t, job)).watch('p/');
  const reading = take(watch, 1);
  await job.deregister();
  t.is((await rejection(t, reading)).code, 'NO_SUCH_JOB');
  t.is(parked(), 0);
});

test.serial('incr: atomic under concurrent calls, stored as decimal text, refuses a non-counter', async (t) => {
  const job = await register(t, TWO_NODES);
  const other = await attach(t, job);
  t.is(await job.incr('hits'), 1);
  t.is(await job.incr('hits', 9), 10);
  t.is(await job.incr('hits', -3), 7);
  await Promise.all(Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? job : other).incr('total', 2)));
  t.is((await job.get('total'))?.toString(), '600');
  await job.put('set-by-put', '41');
  t.is(await job.incr('set-by-put'), 42);
  await job.put('text', 'hello');
  t.is((await rejection(t, job.incr('text'))).code, 'BAD_REQUEST');
  t.is((await job.get('text'))?.toString(), 'hello', 'left alone');
  t.is((await rejection(t, job.incr('hits', 2 ** 53))).code, 'BAD_REQUEST');
  await job.put('near-max', String(Number.MAX_SAFE_INTEGER));
  t.is((await rejection(t, job.incr('near-max'))).code, 'BAD_REQUEST', 'a total past 2^53 − 1 is refused');
});

test.serial('incr wakes a waiter, and keeps counting on its node after the job grows', async (t) => {
  const job = await register(t);
  const waiting = job.waitFor('count');
  await eventually(() => parked() === 1, 2_000, 'parked');
  await job.incr('count', 5);
  t.is((await waiting).toString(), '5');
  const placement = shared.cluster.controller.registry.jobs.get(job.id)!.placement;
  await shared.cluster.controller.growJob(job.id, placement.generations[0]!.nodes[0]!.id, placement.epoch, 'by-admin');
  const other = await attach(t, job);
  for (let i = 0; i < 10; i++) await other.incr('count');
  t.is(await job.incr('count', 0), 15, 'one counter, not a second one started on the new owner');
});

test.serial('barrier: every party waits for the last one', async (t) => {
  const job = await register(t, TWO_NODES);
  const handles = await Promise.all(Array.from({ length: 5 }, () => attach(t, job)));
  const passed: number[] = [];
  const parties = handles.slice(0, 4).map((h, i) => h.barrier('stage-1', 5).then(() => passed.push(i)));
  await eventually(() => parked() === 4, 2_000, 'four parties waiting');
  t.deepEqual(passed, [], 'nobody passes before the fifth arrives');
  await handles[4]!.barrier('stage-1', 5);
  await Promise.all(parties);
  t.is(passed.length, 4);
  t.is((await rejection(t, job.barrier('stage-1', 5))).code, 'BAD_REQUEST', 'a sixth party');
});

test.serial('putMany and getMany: values of every size round-trip in order; absent keys are null', async (t) => {
  const job = await register(t, TWO_NODES);
  const entries = Array.from({ length: 500 }, (_, i) => [`part-${i}`, i === 7 ? pattern(2 * MiB, 7) : `value ${i}`] as const);
  await job.putMany(entries, { window: 64 });
  const keys = [...entries.map(([key]) => key), 'absent'];
  const values = await job.getMany(keys);
  t.is(values.length, 501);
  t.true(values[7]!.equals(pattern(2 * MiB, 7)));
  t.is(values[499]!.toString(), 'value 499');
  t.is(values[500], null);
  await job.putMany({ a: '1', b: '2' });
  t.deepEqual((await job.getMany(['b', 'a'])).map(String), ['2', '1']);
  const bad = await rejection(
    t,
    job.putMany([
      ['fine', 'x'],
      ['', 'empty key'],
    ]),
  );
  t.is(bad.code, 'BAD_REQUEST');
  t.is(await job.get('fine'), null, 'checked before anything was sent');
  t.true(bad instanceof SatchelError);
});
