// The controller's durable state and job leases, on a real cluster of child processes.
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { firstCall, rejection } from './helpers/assert.ts';

async function cluster(t: import('ava').ExecutionContext, options: Parameters<typeof LocalCluster.start>[0] = {}): Promise<LocalCluster> {
  const c = await LocalCluster.start({ dram: 1, dramCapacity: 64 * 1024 * 1024, ...options });
  t.teardown(() => c.stop());
  return c;
}

test('a controller killed and restarted loses nothing: jobs, placements, data and deregistration all still work', async (t) => {
  const c = await cluster(t);
  const satchel = await Satchel.connect(c.controller, { key: c.tenantKey });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('survivor');
  // Holds nothing, so its reservation stays what its hint asked (rightsizing follows only measured use).
  const other = await satchel.registerJob('bystander', { capacity: 8 * 1024 * 1024 });
  await job.put('before', 'written before the crash');

  await c.restartController('SIGKILL');

  // The data path never needed the controller.
  t.is((await job.get('before'))?.toString(), 'written before the crash');
  await job.put('after', 'written after the restart');
  const attached = await Satchel.attach(job.ticket);
  t.teardown(() => attached.close());
  t.is((await attached.get('after'))?.toString(), 'written after the restart');

  // The restarted controller knows both jobs, their tier and reservation.
  const detail = (await (
    await fetch(`${c.info.console}/api/jobs/${other.id}`, { headers: { authorization: `Bearer ${c.viewerToken}` } })
  ).json()) as { tier: string; reservation: number; nodes: unknown[] };
  t.is(detail.tier, 'dram');
  t.is(detail.reservation, 8 * 1024 * 1024);
  t.is(detail.nodes.length, 1);
  const again = await Satchel.connect(c.controller, { key: c.tenantKey });
  t.teardown(() => again.close());
  const jobs = (await (await fetch(`${c.info.console}/api/jobs`, { headers: { authorization: `Bearer ${c.viewerToken}` } })).json()) as {
    id: string;
  }[];
  t.deepEqual(jobs.map((j) => j.id).sort(), [job.id, other.id].sort());

  // And can still deregister a job registered before the crash: its data goes.
  await job.deregister();
  t.is((await rejection(t, firstCall(job.ticket))).code, 'NO_SUCH_JOB');
  t.is((await rejection(t, attached.get('before'))).code, 'NO_SUCH_JOB');
  await other.deregister();
});

test('a job placed ahead (a spare) is known to a controller SIGKILLed right after the reply, and serves after', async (t) => {
  const c = await cluster(t);
  const satchel = await Satchel.connect(c.controller, { key: c.tenantKey });
  t.teardown(() => satchel.close());
  const viewer = { headers: { authorization: `Bearer ${c.viewerToken}` } };
  const first = await satchel.registerJob('first', { capacity: 1024 * 1024 });
  t.teardown(() => first.deregister().catch(() => {}));
  // Its spares are made after its reply: the next registration like it takes one.
  let spare: Awaited<ReturnType<Satchel['registerJob']>> | null = null;
  for (let attempt = 0; attempt < 20 && spare === null; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const job = await satchel.registerJob(`second-${attempt}`, { capacity: 1024 * 1024 });
    const events = (await (await fetch(`${c.info.console}/api/events`, viewer)).json()) as {
      kind: string;
      details?: Record<string, unknown>;
    }[];
    const placement = events.find((e) => e.kind === 'job-registered' && e.details?.job === job.id)?.details?.placement;
    if (placement === 'spare') spare = job;
    else await job.deregister();
  }
  if (spare === null) return t.fail('no registration took a spare');
  const job = spare;
  t.teardown(() => job.deregister().catch(() => {}));
  const metrics = await (await fetch(`${c.info.console}/metrics`, viewer)).text();
  t.true(Number(/^satchel_spare_job_lookups_total\{outcome="taken"\} (\d+)$/m.exec(metrics)?.[1]) >= 1, 'counted on /metrics');
  // Killed at once: its record is in the journal, LevelDB gets it only 20 ms later (store.ts).
  await c.restartController('SIGKILL');

  await job.put('k', 'written after the restart');
  t.is((await job.get('k'))?.toString(), 'written after the restart');
  const listed = (await (await fetch(`${c.info.console}/api/jobs`, viewer)).json()) as { id: string; name: string }[];
  t.true(
    listed.some((j) => j.id === job.id),
    'the restarted controller knows the job',
  );
  // The node has reported to the restarted controller (every second): the job was not taken for an unknown one.
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  t.is((await job.get('k'))?.toString(), 'written after the restart');
  await job.deregister();
  t.is((await rejection(t, firstCall(job.ticket))).code, 'NO_SUCH_JOB');
});

test('spareJobs 0 (--spare-jobs 0) reaches the controller: every registration places its own job', async (t) => {
  const c = await cluster(t, { spareJobs: 0 });
  const satchel = await Satchel.connect(c.controller, { key: c.tenantKey });
  t.teardown(() => satchel.close());
  const jobs = [];
  for (let i = 0; i < 4; i++) {
    jobs.push(await satchel.registerJob(`placed-${i}`, { capacity: 1024 * 1024 }));
    await new Promise((resolve) => setTimeout(resolve, 100)); // time enough for a spare, were one made
  }
  const events = (await (
    await fetch(`${c.info.console}/api/events`, { headers: { authorization: `Bearer ${c.viewerToken}` } })
  ).json()) as {
    kind: string;
    details?: Record<string, unknown>;
  }[];
  const placements = jobs.map((job) => events.find((e) => e.kind === 'job-registered' && e.details?.job === job.id)?.details?.placement);
  t.deepEqual(placements, ['placed', 'placed', 'placed', 'placed']);
  for (const job of jobs) await job.deregister();
});

test('a job whose driver stops renewing is collected after its lease; a renewed one lives on', async (t) => {
  const c = await cluster(t, { leaseMs: 1_000 });
  const satchel = await Satchel.connect(c.controller, { key: c.tenantKey });
  t.teardown(() => satchel.close());
  const abandoned = await satchel.registerJob('abandoned');
  const kept = await satchel.registerJob('kept');
  t.teardown(() => kept.deregister().catch(() => {}));
  await abandoned.put('k', 'gone soon');
  await kept.put('k', 'still here');
  const ticket = abandoned.ticket;
  await abandoned.close(); // stops renewing, as a driver that died would

  await new Promise((resolve) => setTimeout(resolve, 3_000)); // three leases
  t.is((await rejection(t, firstCall(ticket))).code, 'NO_SUCH_JOB');
  t.is((await kept.get('k'))?.toString(), 'still here', 'renewed every third of its lease');
  const jobs = (await (await fetch(`${c.info.console}/api/jobs`, { headers: { authorization: `Bearer ${c.viewerToken}` } })).json()) as {
    id: string;
  }[];
  t.deepEqual(
    jobs.map((j) => j.id),
    [kept.id],
  );
});

test('nodes report every second: the console shows what each job holds and each node does', async (t) => {
  const c = await cluster(t);
  const satchel = await Satchel.connect(c.controller, { key: c.tenantKey });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('reported');
  t.teardown(() => job.deregister().catch(() => {}));
  await Promise.all(Array.from({ length: 10 }, (_, i) => job.put(`k${i}`, Buffer.alloc(100_000, i))));
  let usage = 0;
  for (let i = 0; i < 40 && usage < 1_000_000; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    usage = (
      (await (await fetch(`${c.info.console}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${c.viewerToken}` } })).json()) as {
        usage: number;
      }
    ).usage;
  }
  t.true(usage >= 1_000_000 && usage < 1_100_000, `usage ${usage}`);
  const nodes = (await (await fetch(`${c.info.console}/api/nodes`, { headers: { authorization: `Bearer ${c.viewerToken}` } })).json()) as {
    stats: { used: number; capacity: number; cpu: number } | null;
  }[];
  t.is(nodes.length, 1);
  t.true(nodes[0]!.stats !== null && nodes[0]!.stats.used >= 1_000_000);
  t.is(nodes[0]!.stats!.capacity, 64 * 1024 * 1024);
});

test('reservations follow what a job holds: an over-reserved job shrinks to 1.25× its data', async (t) => {
  const c = await cluster(t);
  const satchel = await Satchel.connect(c.controller, { key: c.tenantKey });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('rightsized', { capacity: 48 * 1024 * 1024 });
  t.teardown(() => job.deregister().catch(() => {}));
  await Promise.all(Array.from({ length: 40 }, (_, i) => job.put(`k${i}`, Buffer.alloc(100_000, i))));
  let detail = { reservation: 0, usage: 0 };
  for (let i = 0; i < 50; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    detail = (await (
      await fetch(`${c.info.console}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${c.viewerToken}` } })
    ).json()) as typeof detail;
    // A report taken while the PUTs were still landing shrinks the reservation to a part of the data; the next
    // one brings it back into the band, so wait for a report that has all of it (CI once stopped at 2.9 MB).
    if (detail.reservation < 48 * 1024 * 1024 && detail.usage >= 4_000_000 && detail.reservation >= detail.usage) break;
  }
  t.true(detail.usage >= 4_000_000, `usage ${detail.usage}`);
  t.true(
    detail.reservation <= detail.usage * 1.5 && detail.reservation >= detail.usage,
    `reserved ${detail.reservation} for ${detail.usage}`,
  );
});

test('a deregister the controller could not answer (killed) leaves the handle open; tried again once it is back, the job and its data are gone', async (t) => {
  const c = await cluster(t);
  const satchel = await Satchel.connect(c.controller, { key: c.tenantKey, timeoutMs: 5_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('deregistered-late');
  await job.put('k', 'v');
  const pid = c.controllerPid;
  process.kill(pid, 'SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const refused = await rejection(t, job.deregister());
  t.true(refused.code === 'UNAVAILABLE' || refused.code === 'TIMEOUT', refused.code);
  t.is((await job.get('k'))?.toString(), 'v', 'the handle is still open');
  await c.restartController('SIGKILL');
  await job.deregister();
  t.is((await rejection(t, job.get('k'))).code, 'CLOSED', 'closed once deregistered');
  const read = await Satchel.attach(job.ticket)
    .then((attached) => attached.get('k').finally(() => attached.close()))
    .then(
      (value) => `read ${String(value)}`,
      (error: { code?: string }) => error.code,
    );
  t.true(read === 'NO_SUCH_JOB' || read === 'UNAUTHORIZED', `the old ticket reads nothing (${read})`);
});

test('a controller that stood still (SIGSTOP) past the node timeout declares no node lost when it resumes: its silence was its own', async (t) => {
  t.timeout(60_000);
  const c = await cluster(t, { dram: 2, nodeTimeoutMs: 2_000 });
  const satchel = await Satchel.connect(c.controller, { key: c.tenantKey, timeoutMs: 10_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('paused-controller', { replicas: 2 });
  t.teardown(() => job.deregister().catch(() => {}));
  await job.putMany(Array.from({ length: 50 }, (_, i) => [`k${i}`, `v${i}`] as const));
  const headers = { authorization: `Bearer ${c.viewerToken}` };
  const detail = async () =>
    (await (await fetch(`${c.info.console}/api/jobs/${job.id}`, { headers })).json()) as { epoch: number; nodes: { id: string }[] };
  const before = await detail();
  t.is(before.nodes.length, 2);

  const pid = c.controllerPid;
  process.kill(pid, 'SIGSTOP');
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  process.kill(pid, 'SIGCONT');
  // Well past the node timeout after the resumption: the nodes, reporting all along, were heard again.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const events = (await (await fetch(`${c.info.console}/api/events?after=0`, { headers })).json()) as { kind: string }[];
  t.deepEqual(
    events.filter((e) => e.kind === 'node-lost'),
    [],
  );
  const after = await detail();
  t.is(after.epoch, before.epoch, 'the job was not moved');
  t.deepEqual(after.nodes.map((n) => n.id).sort(), before.nodes.map((n) => n.id).sort());
  t.deepEqual((await job.getMany(['k0', 'k49'])).map(String), ['v0', 'v49']);
});
