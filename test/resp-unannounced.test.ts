/**
 * A Redis client reaching the node its job's placement names for a key, when the controller never announced the
 * job to that node's process. Two causes, which the placement tells apart (control.proto PlacementNode.lost;
 * storage-node/resp/resp-foreign.ts `lostOwner`, `unannouncedOwner`): the node restarted under the same id since
 * the job was placed on it — a single-copy job's placement then marks it lost, its keys there are gone for good,
 * and the answer is a final `ERR … [UNAVAILABLE]` — or the controller's announcement failed and comes with the
 * node's next report: TRYAGAIN, which a cluster client retries. In-process clusters (test/helpers/in-process.ts),
 * so a node's job table and the metadata server's placements can be looked at and an announcement made to fail.
 */
import test from 'ava';
import { Redis } from 'ioredis';
import { Satchel } from '../client/index.ts';
import { keySlot, pickNode } from '../proto/index.ts';
import { rejection } from './helpers/assert.ts';
import { type InProcessCluster, startInProcessCluster } from './helpers/in-process.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;
const keys = Array.from({ length: 200 }, (_, i) => `k/${i}`);

/** A plain (not cluster) connection to node `index`'s RESP front door, as the job's `redisUrl` user. */
function respClient(cluster: InProcessCluster, index: number, redisUrl: string): Redis {
  const url = new URL(redisUrl);
  const address = cluster.nodes[index]!.respAddress!;
  const at = address.lastIndexOf(':');
  return new Redis({
    host: address.slice(0, at),
    port: Number(address.slice(at + 1)),
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    maxRetriesPerRequest: 0,
    enableReadyCheck: false,
  });
}

/** A key whose slot the newest generation gives to `nodeId`. */
function keyOn(cluster: InProcessCluster, jobId: string, nodeId: string): string {
  const nodes = cluster.controller.registry.jobs.get(jobId)!.placement.generations[0]!.nodes;
  return keys.find((key) => nodes[pickNode(nodes, keySlot(key))]!.id === nodeId)!;
}

async function errorOf(command: Promise<unknown>): Promise<string> {
  return command.then(
    (value) => `no error: ${String(value)}`,
    (error: Error) => error.message,
  );
}

test('a node restarted under the same id: a single-copy job’s lost keys answer a final error saying they are gone; its new process takes the job’s writes', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 64 * MiB, nodeTimeoutMs: 2_000, resp: true });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 3_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('lost-keys', { peakThroughput: 1.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  t.is(cluster.controller.registry.jobs.get(job.id)!.placement.generations[0]!.nodes.length, 2);
  await job.putMany(keys.map((key) => [key, `v ${key}`] as const));
  const lost = keyOn(cluster, job.id, 'dram-0');
  const counter = keys.find((key) => key !== lost && cluster.nodes[0]!.server.engine.get(job.id, key) !== undefined)!;
  const epoch = cluster.controller.registry.jobs.get(job.id)!.placement.epoch;

  await cluster.restartNode(0);
  // The new process is placed on the job over the generation as it was, kept as a remnant that marks dram-0's dead
  // incarnation lost; the metadata server holds that.
  const shape = (p: { epoch: number; generations: { remnant?: boolean; nodes: { id: string; lost?: boolean }[] }[] }) => ({
    epoch: p.epoch,
    generations: p.generations.map((g) => [g.remnant === true, g.nodes.filter((n) => n.lost === true).map((n) => n.id)]),
  });
  const placed = {
    epoch: epoch + 1,
    generations: [
      [false, []],
      [true, ['dram-0']],
    ],
  };
  await eventually(() => JSON.stringify(shape(cluster.metadata.store.get(job.id))) === JSON.stringify(placed), 10_000, 'placed again');
  t.deepEqual(shape(cluster.controller.registry.jobs.get(job.id)!.placement), placed);
  t.not(cluster.nodes[0]!.server.jobs.get(job.id), undefined, 'the new process serves the job');
  const refused = await rejection(t, job.get(lost));
  t.is(refused.code, 'UNAVAILABLE');
  t.regex(
    refused.message,
    new RegExp(`^node dram-0 restarted since job ${job.id} was placed on it: the keys it held are gone, and the job keeps one copy$`),
  );

  // Through RESP: a read, and commands that would take the key for absent, get a final error, not nil or 0.
  const redis = respClient(cluster, 0, job.redisUrl!);
  t.teardown(() => redis.disconnect());
  for (const [key, command] of [
    [lost, () => redis.get(lost)],
    [counter, () => redis.incr(counter)],
    [lost, () => redis.set(lost, 'nx', 'NX')],
  ] as const) {
    t.regex(
      await errorOf(command()),
      new RegExp(
        `^ERR ${key} was lost: the node holding it restarted since the job was placed on it, and the job keeps one copy \\[UNAVAILABLE\\]$`,
      ),
    );
  }
  // Writes go on, on the new process.
  t.is(await redis.set(lost, 'x'), 'OK');
  t.is(await redis.get(lost), 'x');
  t.is((await job.get(lost))?.toString(), 'x');
  // Keys of the node that did not restart are served as before.
  const kept = keyOn(cluster, job.id, 'dram-1');
  t.is((await job.get(kept))?.toString(), `v ${kept}`);
});

test('a node whose announcements fail answers TRYAGAIN naming that, and serves the job once it is told', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 64 * MiB, resp: true });
  t.teardown(() => cluster.close());
  // The controller's announcements to dram-0 fail (as when its connections to the node drop) until `reachable`:
  // at the job's registration and at each of the node's reports, which retry them.
  const admin = (
    cluster.controller as unknown as { ctx: { admin: { announce: (address: string, jobId: string, ...rest: never[]) => Promise<void> } } }
  ).ctx.admin;
  const announce = admin.announce.bind(admin);
  let reachable = false;
  // By job: the spare placements made after the registration (controller/spare-jobs.ts) fail there too.
  const failed: string[] = [];
  admin.announce = async (address, jobId, ...rest) => {
    if (!reachable && address === cluster.nodes[0]!.address) {
      failed.push(jobId);
      throw new Error('announcement made to fail by the test');
    }
    return announce(address, jobId, ...rest);
  };
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 3_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('told-late', { peakThroughput: 1.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  const key = keyOn(cluster, job.id, 'dram-0');
  const redis = respClient(cluster, 0, job.redisUrl!);
  t.teardown(() => redis.disconnect());
  // Registered, its placement published, and dram-0 not told: what a restarted node knows too.
  await eventually(() => failed.filter((id) => id === job.id).length >= 2, 10_000, 'a report’s announcement failed too');
  t.is(cluster.nodes[0]!.server.jobs.get(job.id), undefined);
  t.false(
    cluster.metadata.store.get(job.id).generations.some((g) => g.nodes.some((n) => n.lost === true)),
    'no node is marked lost: none restarted',
  );
  const message = await errorOf(redis.set(key, 'early'));
  t.regex(
    message,
    new RegExp(`^TRYAGAIN node dram-0 does not serve job ${job.id}: either the controller's announcement is still on its way`),
  );
  t.regex(message, /\[UNAVAILABLE\]$/);

  // Told with its next report: the retry is served.
  reachable = true;
  await eventually(
    () =>
      redis.set(key, 'late').then(
        (reply) => reply === 'OK',
        () => false,
      ),
    10_000,
    'the key served',
  );
  t.is((await job.get(key))?.toString(), 'late');
});
