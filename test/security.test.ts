/**
 * Tokens that isolate jobs and expire: a token of job A opens nothing of job B's, on the data plane or the
 * control plane; a token stops working when it expires, on connections already open too; a driver's lease
 * renewals bring fresh tickets, so a job outlives its tokens.
 */
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { CONTROLLER_SERVICE, ControlClient, METADATA_SERVICE } from '../proto/grpc.ts';
import {
  type ControllerMethods,
  decodeTicket,
  Flag,
  type MetadataMethods,
  NodeConnection,
  Op,
  type SatchelError,
  Status,
  tokenExpiry,
} from '../proto/index.ts';

const MiB = 1024 * 1024;

import { rejection } from './helpers/assert.ts';
import { startInProcessCluster } from './helpers/in-process.ts';
import { eventually } from './helpers/raw-client.ts';

test('a token of job A gets nothing of job B: every data-plane op and every control-plane call', async (t) => {
  const cluster = await startInProcessCluster({ dram: 1 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 3_000 });
  t.teardown(() => satchel.close());
  const a = await satchel.registerJob('job-a');
  const b = await satchel.registerJob('job-b');
  t.teardown(() => a.deregister().catch(() => {}));
  t.teardown(() => b.deregister().catch(() => {}));
  await b.put('secret', 'of b');
  await b.incr('count', 5);

  // The data plane: a connection opened with A's token is A's. B's keys are not there to read, change or
  // wait for, and the admin operations (drop a job, move its epoch) are refused outright.
  const tokenA = decodeTicket(a.ticket).token;
  const node = cluster.nodes[0]!;
  const conn = new NodeConnection(node.address, tokenA, { timeoutMs: 3_000 });
  t.teardown(() => conn.destroy());
  const epoch = a.epoch;
  t.is((await conn.request({ op: Op.GET, epoch, key: 'secret' })).status, Status.NOT_FOUND);
  t.is((await conn.request({ op: Op.STAT, epoch, key: 'secret' })).status, Status.NOT_FOUND);
  t.is((await conn.request({ op: Op.DELETE, epoch, key: 'secret' })).flags & Flag.EXISTED, 0, 'nothing deleted');
  t.is((await conn.request({ op: Op.LIST, epoch })).arg, 0, 'no keys listed');
  const amount = Buffer.alloc(8);
  amount.writeBigInt64BE(1n);
  t.is((await conn.request({ op: Op.INCR, epoch, key: 'count', value: amount })).body.readBigInt64BE(0), 1n, "A's own counter, not B's");
  t.is((await conn.request({ op: Op.WAIT, epoch, arg: 50, key: 'secret' })).status, Status.TIMEOUT, 'B has the key; A waits in vain');
  for (const op of [Op.DROP_JOB, Op.ANNOUNCE, Op.LIMIT_JOB]) {
    t.is((await conn.request({ op, arg: 99, key: b.id })).status, Status.UNAUTHORIZED, `op 0x${op.toString(16)}`);
  }

  // The control plane: every call naming job B with A's token.
  const controller = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, cluster.controllerAddress, 3_000);
  const metadata = new ControlClient<MetadataMethods>(METADATA_SERVICE, decodeTicket(a.ticket).metadata[0]!, 3_000);
  t.teardown(() => controller.close());
  t.teardown(() => metadata.close());
  const calls: [string, Promise<unknown>][] = [
    ['GetPlacement', metadata.call('GetPlacement', { jobId: b.id, token: tokenA })],
    ['RenewLease', controller.call('RenewLease', { jobId: b.id, token: tokenA })],
    ['GrowJob', controller.call('GrowJob', { jobId: b.id, token: tokenA, fullNodeId: node.id, epoch: 1 })],
    ['DeregisterJob', controller.call('DeregisterJob', { jobId: b.id, token: tokenA })],
    [
      'SetPlacement',
      metadata.call('SetPlacement', {
        placement: { jobId: b.id, epoch: 9, generations: [], blockSize: 1, maxValueBytes: 1 },
        token: tokenA,
      }),
    ],
    ['DropPlacement', metadata.call('DropPlacement', { jobId: b.id, token: tokenA })],
  ];
  for (const [name, call] of calls) t.is((await rejection(t, call)).code, 'UNAUTHORIZED', name);
  t.is((await b.get('secret'))?.toString(), 'of b', "B's data untouched");
  t.is(await b.incr('count', 0), 5);
});

test('tokens expire, on open connections too; lease renewals bring the driver fresh tickets', async (t) => {
  const cluster = await startInProcessCluster({ dram: 1, tokenTtlMs: 3_000, leaseMs: 1_200 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 3_000 });
  t.teardown(() => satchel.close());
  const driver = await satchel.registerJob('expiring');
  t.teardown(() => driver.deregister().catch(() => {}));
  const first = driver.ticket;
  const expiresAt = tokenExpiry(decodeTicket(first).token);
  t.true(expiresAt > Date.now() && expiresAt <= Date.now() + 4_000, 'the token says when it expires');

  const fn = await Satchel.attach(first, { timeoutMs: 3_000 });
  t.teardown(() => fn.close());
  await fn.put('k', 'v');
  // Renewals every 400 ms; past half the token's life the driver holds a newer ticket.
  await eventually(() => driver.ticket !== first, 5_000, 'a fresh ticket from a renewal');
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now() + 100)));
  const expired = await rejection(t, fn.get('k'));
  t.is(expired.code, 'UNAUTHORIZED', 'a connection opened before the expiry is refused after it');
  t.regex(expired.message, /expired/);
  const late = await Satchel.attach(first, { timeoutMs: 3_000 });
  t.teardown(() => late.close());
  t.is((await rejection(t, late.get('k'))).code, 'UNAUTHORIZED', 'so is a new attach');
  // The driver itself keeps working, and its current ticket opens the job.
  t.is((await driver.get('k'))?.toString(), 'v');
  const fresh = await Satchel.attach(driver.ticket, { timeoutMs: 3_000 });
  t.teardown(() => fresh.close());
  t.is((await fresh.get('k'))?.toString(), 'v');
});

test('quotas: a job at its byte quota gets FULL for writes until it deletes; a job has a limit of connections per node', async (t) => {
  const cluster = await startInProcessCluster({ dram: 1, capacity: 64 * MiB, jobQuotaBytes: 1 * MiB, maxConnectionsPerJob: 3 });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 3_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('quota');
  t.teardown(() => job.deregister().catch(() => {}));
  const other = await satchel.registerJob('neighbour');
  t.teardown(() => other.deregister().catch(() => {}));
  const value = Buffer.alloc(64 * 1024, 1);
  // Past the quota the node reports it within a second and the controller stops the job's writes.
  let refused: SatchelError | null = null;
  for (let i = 0; i < 200 && refused === null; i++) {
    await job.put(`v${i}`, value).catch((error: unknown) => {
      refused = error as SatchelError;
    });
    if (i >= 16) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  t.truthy(refused, 'writes stopped');
  t.is(refused!.code, 'FULL');
  t.regex(refused!.message, /quota/);
  // Found on the nodes' reports (every second): past the quota by at most a couple of seconds of writes (40/s here).
  t.true(cluster.nodes[0]!.server.engine.usageByJob().get(job.id)! < 8 * MiB, 'the overshoot is bounded');
  t.is((await job.get('v0'))?.length, value.length, 'reads go on');
  await other.put('fine', value); // another job is not held back
  for (let i = 0; i < 200; i++) await job.delete(`v${i}`);
  await eventually(
    async () =>
      await job.put('again', 'x').then(
        () => true,
        () => false,
      ),
    5_000,
    'writes allowed again once under the quota',
  );
  t.true(cluster.controller.events.since(0).some((e) => e.kind === 'quota-reached'));

  // Connections: three per job on this node; the fourth HELLO is refused with FULL, others' are not.
  const token = decodeTicket(job.ticket).token;
  const address = cluster.nodes[0]!.address;
  const connections = Array.from({ length: 4 }, () => new NodeConnection(address, token, { timeoutMs: 3_000 }));
  t.teardown(() => {
    for (const c of connections) c.destroy();
  });
  // The job's own handle holds one already.
  const replies = await Promise.allSettled(
    connections.map((c) => c.request({ op: Op.PING }).then(() => c.request({ op: Op.GET, epoch: job.epoch, key: 'again' }))),
  );
  const failed = replies.filter((r) => r.status === 'rejected' || (r.value as { status: number }).status !== Status.OK);
  t.is(failed.length, 2, 'one handle + two more admitted, two refused');
  for (const r of replies) if (r.status === 'rejected') t.is((r.reason as SatchelError).code, 'FULL');
  for (const c of connections) c.destroy();
  await eventually(
    async () => {
      const probe = new NodeConnection(address, token, { timeoutMs: 3_000 });
      try {
        return (await probe.request({ op: Op.GET, epoch: job.epoch, key: 'again' })).status === Status.OK;
      } catch {
        return false;
      } finally {
        probe.destroy();
      }
    },
    3_000,
    'closed connections free their places',
  );
});
