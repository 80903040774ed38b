/**
 * Error paths against a real local cluster: one small DRAM node (8 MiB), so "full" is reached quickly.
 * The tests run in order (serial); the last one kills the storage node.
 */

import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Satchel, SatchelError } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { firstCall, rejection } from './helpers/assert.ts';
import { alive, runTs } from './helpers/process.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;
const QUIET_CLIENT = fileURLToPath(new URL('./fixtures/quiet-client.ts', import.meta.url));

let cluster: LocalCluster;
let satchel: Satchel;

test.before(async () => {
  cluster = await LocalCluster.start({ dram: 1, dramCapacity: 8 * MiB });
  satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 5_000 });
});

test.after.always(async () => {
  satchel?.close();
  await cluster?.stop();
});

test.serial('over capacity through the client → FULL; what was stored survives, and the room comes back', async (t) => {
  const job = await satchel.registerJob('filler');
  t.teardown(() => job.deregister().catch(() => {}));
  await job.put('keep', 'precious');
  // One value larger than the node.
  t.is((await rejection(t, job.put('huge', Buffer.alloc(12 * MiB, 1)))).code, 'FULL');
  t.is(await job.get('huge'), null);
  // Small values until the node is full.
  let stored = 0;
  let error: SatchelError | null = null;
  await eventually(
    async () => {
      // The blocks of the failed value are deleted in the background; wait until the room is back.
      try {
        await job.put('probe', Buffer.alloc(6 * MiB));
        return true;
      } catch (e) {
        if ((e as SatchelError).code !== 'FULL') throw e;
        return false;
      }
    },
    10_000,
    'room freed by the failed value',
  );
  t.true(await job.delete('probe'));
  for (let i = 0; i < 100 && error === null; i++) {
    try {
      await job.put(`chunk-${i}`, Buffer.alloc(512 * 1024, i));
      stored++;
    } catch (e) {
      error = e as SatchelError;
    }
  }
  t.true(error instanceof SatchelError);
  t.is(error!.code, 'FULL');
  t.regex(error!.message, /full/);
  t.true(stored >= 12 && stored < 16, `stored ${stored} half-MiB values in 8 MiB`);
  t.is((await job.get('keep'))?.toString(), 'precious');
  t.true((await job.get('chunk-0'))?.equals(Buffer.alloc(512 * 1024, 0)));
  // Deleting makes room again.
  t.true(await job.delete('chunk-0'));
  t.true(await job.delete('chunk-1'));
  await job.put('after-delete', Buffer.alloc(512 * 1024, 9));
  // Another job on the same node also sees FULL: capacity is the node's.
  const other = await satchel.registerJob('neighbour');
  t.teardown(() => other.deregister().catch(() => {}));
  t.is((await rejection(t, other.put('x', Buffer.alloc(MiB)))).code, 'FULL');
  // Deregistering the filler frees its space for the neighbour.
  await job.deregister();
  await other.put('x', Buffer.alloc(MiB));
  t.is((await other.stat('x'))?.size, MiB);
});

test.serial('overwriting a large value with a small one frees the old blocks', async (t) => {
  const job = await satchel.registerJob('overwrite');
  t.teardown(() => job.deregister().catch(() => {}));
  // 5 MiB then another 5 MiB fit in the 8 MiB node only if the first one's blocks were freed.
  await job.put('a', Buffer.alloc(5 * MiB, 1));
  t.is((await rejection(t, job.put('b', Buffer.alloc(5 * MiB, 2)))).code, 'FULL', 'two at once do not fit');
  await eventually(
    async () => {
      try {
        await job.put('a', 'small');
        await job.put('b', Buffer.alloc(5 * MiB, 2));
        return true;
      } catch (e) {
        if ((e as SatchelError).code !== 'FULL') throw e;
        return false; // the failed 'b' blocks are still being deleted in the background
      }
    },
    10_000,
    'room for b',
  );
  t.is((await job.get('a'))?.toString(), 'small');
  t.deepEqual(await job.stat('b'), { key: 'b', size: 5 * MiB, blocks: 5 });
  // Replacing a large value needs room for both while the new one is written (blocks first, then the
  // manifest, then the old blocks go), so 5 MiB over 5 MiB does not fit in 8 MiB: FULL, and the old value stays.
  t.is((await rejection(t, job.put('b', Buffer.alloc(5 * MiB, 3)))).code, 'FULL');
  t.true((await job.get('b'))?.equals(Buffer.alloc(5 * MiB, 2)));
  // Deleting a large value frees all its blocks.
  t.true(await job.delete('b'));
  await eventually(
    async () => {
      try {
        await job.put('c', Buffer.alloc(7 * MiB, 7));
        return true;
      } catch (e) {
        if ((e as SatchelError).code !== 'FULL') throw e;
        return false; // the failed 5 MiB write's blocks are still being deleted in the background
      }
    },
    10_000,
    'room for c',
  );
  t.is((await job.stat('c'))?.blocks, 7);
});

test.serial('a client writes nothing to stderr, its failed calls included (plain TCP; test/tls.test.ts: over TLS)', async (t) => {
  const result = await runTs(QUIET_CLIENT, [cluster.controller, cluster.tenantKey]);
  t.is(result.code, 0, result.stderr + result.stdout);
  t.is(result.stderr, '');
  const summary = JSON.parse(result.stdout) as { greeting: string; count: number; codes: string[] };
  t.is(summary.greeting, 'hello');
  t.is(summary.count, 3);
  t.deepEqual(summary.codes, ['BAD_REQUEST', 'BAD_REQUEST', 'CLOSED', 'CLOSED', 'CLOSED']);
});

test.serial('the storage node process dies → calls fail with UNAVAILABLE within the timeout, no hang', async (t) => {
  const job = await satchel.registerJob('doomed', {});
  t.teardown(() => job.deregister().catch(() => {}));
  const fn = await Satchel.attach(job.ticket, { timeoutMs: 3_000 });
  t.teardown(() => fn.close());
  await fn.put('k', 'v');
  t.is((await fn.get('k'))?.toString(), 'v');
  const [pid] = [...cluster.nodePids.values()];
  // Calls in flight when the node dies.
  const inFlight = Array.from({ length: 20 }, (_, i) => fn.put(`k${i}`, Buffer.alloc(256 * 1024, i))); // 5 MiB: never FULL
  process.kill(pid!, 'SIGKILL');
  const results = await Promise.allSettled(inFlight);
  for (const r of results) {
    if (r.status === 'rejected') t.is((r.reason as SatchelError).code, 'UNAVAILABLE', String(r.reason));
  }
  await eventually(() => !alive(pid!), 5_000, 'node process gone');
  // Calls after it died.
  for (const call of [
    () => fn.get('k'),
    () => fn.put('k', 'v2'),
    () => fn.stat('k'),
    () => fn.delete('k'),
    () => fn.put('big', Buffer.alloc(3 * MiB)),
  ]) {
    const error = await rejection(t, call());
    t.is(error.code, 'UNAVAILABLE', error.message);
  }
  await t.throwsAsync(
    async () => {
      for await (const _ of fn.list()) t.fail('listed a key from a dead node');
    },
    { instanceOf: SatchelError, message: /./ },
  );
  // The rest of the cluster still answers: attach works (metadata is alive), deregistration completes.
  const again = await Satchel.attach(job.ticket, { timeoutMs: 3_000 });
  t.is((await rejection(t, again.get('k'))).code, 'UNAVAILABLE');
  await again.close();
  await job.deregister();
  t.is((await rejection(t, firstCall(job.ticket))).code, 'NO_SUCH_JOB');
});
