/**
 * Tenants: only a tenant's key registers a job; an admin adds and removes tenants; a tenant's jobs stay within
 * its limits; hints the cluster can never meet are refused; growth needs a FULL the node reported.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import { Satchel } from '../client/index.ts';
import { Controller, defaultTenantKey } from '../controller/index.ts';
import { MetadataServer } from '../metadata/index.ts';
import { CONTROLLER_SERVICE, ControlClient } from '../proto/grpc.ts';
import { type ControllerMethods, decodeTicket, type SatchelError, signToken } from '../proto/index.ts';
import { rejection } from './helpers/assert.ts';
import { startInProcessCluster } from './helpers/in-process.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;

test('an admin adds a tenant; its key registers jobs within its limits; removing it ends its jobs and its key', async (t) => {
  const cluster = await startInProcessCluster({ dram: 1, capacity: 256 * MiB });
  t.teardown(() => cluster.close());
  const control = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, cluster.controllerAddress, 5_000);
  t.teardown(() => control.close());

  // Only the admin manages tenants: a tenant key or a job token is refused.
  const ownJob = await control.call('RegisterJob', { name: 'own', hints: {}, key: cluster.tenantKey });
  for (const token of [cluster.tenantKey, ownJob.token, ownJob.driverToken, '']) {
    t.is((await rejection(t, control.call('AddTenant', { token, name: 'mallory' }))).code, 'UNAUTHORIZED');
    t.is((await rejection(t, control.call('ListTenants', { token }))).code, 'UNAUTHORIZED');
  }
  t.is((await rejection(t, control.call('AddTenant', { token: cluster.adminToken, name: 'Bad Name' }))).code, 'BAD_REQUEST');

  const added = await control.call('AddTenant', { token: cluster.adminToken, name: 'team-a', maxJobs: 2, quotaBytes: 100 * MiB });
  t.regex(added.key, /^sk1\.team-a\./);
  t.is(
    (await rejection(t, control.call('AddTenant', { token: cluster.adminToken, name: 'team-a' }))).code,
    'BAD_REQUEST',
    'no second tenant of a name',
  );

  const satchel = await Satchel.connect(cluster.controllerAddress, { key: added.key, timeoutMs: 5_000 });
  t.teardown(() => satchel.close());
  const one = await satchel.registerJob('a1', { capacity: 40 * MiB });
  await one.put('k', 'v');
  // Its reserved bytes: 40 MiB of 100. 70 MiB more would pass the quota.
  const quota = await rejection(t, satchel.registerJob('a-big', { capacity: 70 * MiB }));
  t.is(quota.code, 'FULL');
  t.regex(quota.message, /quota/);
  await satchel.registerJob('a2', { capacity: 8 * MiB });
  const jobs = await rejection(t, satchel.registerJob('a3', { capacity: 1 * MiB }));
  t.is(jobs.code, 'FULL');
  t.regex(jobs.message, /max jobs 2/);
  const listed = (await control.call('ListTenants', { token: cluster.adminToken })).tenants;
  t.deepEqual(
    listed.map((x) => x.name),
    ['default', 'team-a'],
  );
  const teamA = listed.find((x) => x.name === 'team-a')!;
  t.is(teamA.jobs, 2);
  t.is(teamA.reservedBytes, 48 * MiB);
  t.is(teamA.maxJobs, 2);

  // Another tenant's limits are its own: the default tenant still registers.
  const other = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 5_000 });
  t.teardown(() => other.close());
  const unaffected = await other.registerJob('default-job');
  await unaffected.put('k', 'still mine');

  const removed = await control.call('RemoveTenant', { token: cluster.adminToken, name: 'team-a' });
  t.is(removed.jobsDeregistered, 2);
  t.false(cluster.controller.registry.jobs.has(one.id), "the tenant's jobs are gone");
  t.is((await rejection(t, satchel.registerJob('after'))).code, 'UNAUTHORIZED', 'its key no longer registers');
  t.is(
    (await rejection(t, Satchel.connect(cluster.controllerAddress, { key: added.key, timeoutMs: 5_000 }))).code,
    'UNAUTHORIZED',
    'nor connects',
  );
  t.is((await unaffected.get('k'))?.toString(), 'still mine');
  await unaffected.deregister();
});

test('no key, a wrong key, or a token in its place: UNAUTHORIZED at connect and at RegisterJob', async (t) => {
  const cluster = await startInProcessCluster({ dram: 1 });
  t.teardown(() => cluster.close());
  const control = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, cluster.controllerAddress, 5_000);
  t.teardown(() => control.close());
  const before = cluster.controller.registry.jobs.size;
  // An anonymous flood: none of it registers.
  const flood = await Promise.allSettled(
    Array.from({ length: 200 }, (_, i) => control.call('RegisterJob', { name: `anon-${i}`, hints: { capacity: 1e12 } })),
  );
  t.true(flood.every((r) => r.status === 'rejected' && (r.reason as SatchelError).code === 'UNAUTHORIZED'));
  t.is(cluster.controller.registry.jobs.size, before);
  // Each refusal says what was wrong with the key given.
  const why: [string | undefined, RegExp][] = [
    [undefined, /^connecting needs a tenant key \(cluster\.json `tenantKey`/],
    ['', /not a tenant key/],
    ['sk1.default.' + 'A'.repeat(43), /^tenant key refused: this cluster has no tenant "default", or that is not its key/],
    ['sk1.nobody.' + 'A'.repeat(43), /no tenant "nobody", or that is not its key/],
    [cluster.adminToken, /not a tenant key/],
    [signToken(cluster.secret, 'some-job'), /not a tenant key/],
  ];
  for (const [key, message] of why) {
    const refused = await rejection(
      t,
      Satchel.connect(cluster.controllerAddress, { ...(key === undefined ? {} : { key }), timeoutMs: 5_000 }),
    );
    t.is(refused.code, 'UNAUTHORIZED', `key ${String(key).slice(0, 14)}`);
    t.regex(refused.message, message, `key ${String(key).slice(0, 14)}`);
  }
  const registering = await rejection(t, control.call('RegisterJob', { name: 'x', hints: {}, key: 'sk1.default.' + 'A'.repeat(43) }));
  t.regex(registering.message, /^tenant key refused: this cluster has no tenant "default", or that is not its key/);
  t.regex((await rejection(t, control.call('RegisterJob', { name: 'x', hints: {} }))).message, /^registering a job needs a tenant key/);
  // GetCluster shows nodes to the admin (and viewer), only a count to a tenant key.
  t.is((await control.call('GetCluster', { token: cluster.tenantKey })).nodes.length, 0);
  t.is((await control.call('GetCluster', { token: cluster.adminToken })).nodes.length, 1);
});

test('hints beyond what the cluster can ever hold are refused, naming the limit; a sane job still registers', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 64 * MiB });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 5_000 });
  t.teardown(() => satchel.close());
  for (const [what, hints, limit] of [
    ['1 EB capacity', { capacity: 1e18 }, /can ever hold \(134217728 bytes\)/],
    ['100 MiB × 2 copies on 128 MiB', { capacity: 100 * MiB, replicas: 2 }, /× 2 copies/],
    ['a 1 TB value', { maxValueBytes: 1e12 }, /maxValueBytes/],
    ['10^7 functions', { functions: 1e7 }, /functions/],
  ] as const) {
    const error = await rejection(t, satchel.registerJob('greedy', hints));
    t.is(error.code, 'BAD_REQUEST', what);
    t.regex(error.message, limit, what);
  }
  t.is(cluster.controller.registry.jobs.size, 0);
  const fine = await satchel.registerJob('fine', { capacity: 100 * MiB });
  await fine.put('k', 'v');
  await fine.deregister();
});

test('GrowJob grows a job only after its node reported FULL, and never past 16 generations', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 64 * MiB });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 5_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('roomy', { capacity: 1 * MiB });
  await job.put('k', 'v');
  const control = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, cluster.controllerAddress, 10_000);
  t.teardown(() => control.close());
  const token = decodeTicket(job.ticket).token;
  const nodeId = cluster.controller.registry.jobs.get(job.id)!.placement.generations[0]!.nodes[0]!.id;
  // A loop of GrowJob calls with the data token (what a stolen ticket gives), on a job with room: none grows it.
  const calls = await Promise.allSettled(
    Array.from({ length: 20 }, () => control.call('GrowJob', { jobId: job.id, token, fullNodeId: nodeId, epoch: job.epoch })),
  );
  t.deepEqual(new Set(calls.map((r) => (r.status === 'rejected' ? (r.reason as SatchelError).code : 'granted'))), new Set(['FULL']));
  const record = cluster.controller.registry.jobs.get(job.id)!;
  t.is(record.placement.generations.length, 1);
  t.is(record.placement.epoch, job.epoch);

  // A job at the cap is not grown, whatever its nodes report.
  const capped = [...Array(16)].map(() => record.placement.generations[0]!);
  record.placement = { ...record.placement, generations: capped };
  const atCap = await rejection(t, control.call('GrowJob', { jobId: job.id, token, fullNodeId: nodeId, epoch: record.placement.epoch }));
  t.is(atCap.code, 'FULL');
  t.regex(atCap.message, /16 placement generations/);
});

test('tenants and their keys survive a controller restart; a removed one stays removed', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'satchel-tenants-'));
  t.teardown(() => rm(stateDir, { recursive: true, force: true }));
  const logger = pino({ level: 'silent' });
  const secret = Buffer.alloc(32, 7);
  const start = async () => {
    const controller = new Controller({ secret, logger, stateDir });
    const address = await controller.listen(0, '127.0.0.1');
    const metadata = new MetadataServer({ secret, logger, controller: address });
    await metadata.listen(0, '127.0.0.1');
    return { controller, metadata, address };
  };
  const first = await start();
  const kept = await first.controller.addTenant('kept', { maxJobs: 3 });
  const gone = await first.controller.addTenant('gone');
  await first.controller.removeTenant('gone');
  await first.metadata.close();
  await first.controller.close();

  const second = await start();
  t.teardown(async () => {
    await second.metadata.close();
    await second.controller.close();
  });
  t.deepEqual(
    second.controller.tenants.list().map((x) => [x.name, x.maxJobs]),
    [
      ['default', undefined],
      ['kept', 3],
    ],
  );
  t.is(second.controller.tenants.byKey(kept.key)?.name, 'kept');
  t.is(second.controller.tenants.byKey(gone.key), null);
  t.is(second.controller.tenants.byKey(defaultTenantKey(secret))?.name, 'default');
  t.is(second.controller.tenants.byKey(kept.key.slice(0, -1) + (kept.key.endsWith('A') ? 'B' : 'A')), null, 'one character off');
});

test("a tenant's jobs that hold its quota between them get FULL for writes until they delete; other tenants write on", async (t) => {
  const cluster = await startInProcessCluster({ dram: 1, capacity: 64 * MiB });
  t.teardown(() => cluster.close());
  const added = await cluster.controller.addTenant('capped', { quotaBytes: 2 * MiB });
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: added.key, timeoutMs: 5_000 });
  t.teardown(() => satchel.close());
  // Two jobs reserving 512 KiB each: within the quota at registration; what they then write is held to it.
  const a = await satchel.registerJob('capped-a', { capacity: 512 * 1024 });
  const b = await satchel.registerJob('capped-b', { capacity: 512 * 1024 });
  const other = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 5_000 });
  t.teardown(() => other.close());
  const neighbour = await other.registerJob('uncapped');
  const value = Buffer.alloc(64 * 1024, 1);
  let refused: SatchelError | null = null;
  for (let i = 0; i < 200 && refused === null; i++) {
    await (i % 2 === 0 ? a : b).put(`v${i}`, value).catch((error: unknown) => {
      refused = error as SatchelError;
    });
    if (i >= 16) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  t.truthy(refused, 'writes stopped');
  t.is(refused!.code, 'FULL');
  t.regex(refused!.message, /quota/);
  // It says whose quota: the tenant's (the controller's answer names it and its size; a node's says "its tenant's").
  t.regex(refused!.message, /tenant/);
  t.notRegex(refused!.message, /undefined/);
  const growth = await rejection(t, a.put('more', value));
  t.is(growth.code, 'FULL', 'both jobs of the tenant are held back');
  t.regex(growth.message, /tenant/);
  await t.throwsAsync(b.put('more', value), { code: 'FULL' } as never);
  await neighbour.put('fine', value); // another tenant's job is not
  for (let i = 0; i < 200; i++) await (i % 2 === 0 ? a : b).delete(`v${i}`);
  await eventually(
    async () =>
      await a.put('again', 'x').then(
        () => true,
        () => false,
      ),
    5_000,
    'writes allowed again once under the quota',
  );
});
