/**
 * Any node is a seed for any job: a Redis client that reaches a node not serving the job (a `redisUrl` handed out
 * before a drain or a restart) is told where the job is — CLUSTER SLOTS from the job's placement, MOVED for every
 * key — and never served from there (storage-node/resp/resp-foreign.ts).
 */
import test from 'ava';
import { Cluster, Redis } from 'ioredis';
import { Satchel } from '../client/index.ts';
import { startInProcessCluster } from './helpers/in-process.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;

function credentials(url: string): { username: string; password: string } {
  const u = new URL(url);
  return { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

test('a node that does not serve the job answers CLUSTER SLOTS and MOVED from its placement; a cluster client seeded there reads and writes', async (t) => {
  const cluster = await startInProcessCluster({ dram: 3, capacity: 64 * MiB, resp: true });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('seeded-elsewhere', { capacity: 8 * MiB });
  t.teardown(() => job.deregister().catch(() => {}));
  const members = cluster.controller.registry.jobs.get(job.id)!.placement.generations[0]!.nodes.map((n) => n.id);
  t.is(members.length, 1);
  const stranger = cluster.nodes.find((n) => !members.includes(n.id))!;
  const owner = cluster.nodes.find((n) => n.id === members[0])!;
  await job.put('native/key', 'from the native client');

  // A plain connection to the stranger: MOVED to the owner for every key, the job's own slot map, no data.
  const { username, password } = credentials(job.redisUrl!);
  const plain = new Redis({ ...hostPort(stranger.respAddress!), username, password, maxRetriesPerRequest: 0 });
  t.teardown(() => plain.disconnect());
  const moved = await t.throwsAsync(plain.get('native/key'));
  t.regex(moved!.message, new RegExp(`^MOVED \\d+ ${owner.respAddress!.replace(/\./g, '\\.')}$`));
  const slots = (await plain.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
  t.true(slots.length > 0);
  t.true(
    slots.every(([, , [host, port]]) => `${host}:${port}` === owner.respAddress),
    'only the job’s node is in its slot map',
  );
  t.regex(String(await plain.info('keyspace')), /# Keyspace/);
  t.regex((await t.throwsAsync(plain.dbsize()))!.message, /^TRYAGAIN .*does not hold job/);

  // A cluster client seeded at the stranger finds the owner, reads what the native client wrote, and writes.
  const seeded = new Cluster([hostPort(stranger.respAddress!)], { redisOptions: { username, password } });
  t.teardown(() => seeded.disconnect());
  t.is(await seeded.get('native/key'), 'from the native client');
  t.is(await seeded.set('resp/key', 'from a seeded cluster client'), 'OK');
  t.is((await job.get('resp/key'))?.toString(), 'from a seeded cluster client');
  t.is(stranger.server.engine.get(job.id, 'resp/key'), undefined, 'nothing stored on the stranger');

  // The job ends: the stranger never served it, and says it is gone.
  await job.deregister();
  // Once the stranger's memory of the placement (2 s) is past.
  let last = '';
  await eventually(
    () =>
      plain.get('native/key').then(
        () => false,
        (error: Error) => /^ERR job .* was deregistered \[NO_SUCH_JOB\]/.test((last = error.message)),
      ),
    10_000,
    'NO_SUCH_JOB from the stranger',
  );
  t.regex(last, /NO_SUCH_JOB/);
});

test('a node that cannot look the job up answers TRYAGAIN, not a hang, and the connection goes on', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 64 * MiB, resp: true });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('lookup-fails', { capacity: 8 * MiB });
  t.teardown(() => job.deregister().catch(() => {}));
  const members = cluster.controller.registry.jobs.get(job.id)!.placement.generations[0]!.nodes.map((n) => n.id);
  const stranger = cluster.nodes.find((n) => !members.includes(n.id))!;
  // The only metadata server gone: the stranger cannot learn where the job is. It used to run the command again
  // each time a lookup failed, and look up again: the client waited for ever, the node spun.
  await cluster.metadata.close();
  const { username, password } = credentials(job.redisUrl!);
  const plain = new Redis({
    ...hostPort(stranger.respAddress!),
    username,
    password,
    maxRetriesPerRequest: 0,
    commandTimeout: 8_000,
    enableReadyCheck: false,
  });
  // (No ready check: INFO there is the job's, and fails like the rest.)
  t.teardown(() => plain.disconnect());
  for (const command of [() => plain.get('k'), () => plain.call('CLUSTER', 'SLOTS')]) {
    const error = await t.throwsAsync(command());
    t.regex(error!.message, /^TRYAGAIN .*could not be looked up .*\[UNAVAILABLE\]/);
  }
  t.is(await plain.ping(), 'PONG', 'the connection goes on');
});
