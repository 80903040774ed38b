/**
 * A job that keeps copies, written by a Redis client: the key's primary (its slot owner) hands every write to the
 * other copies before answering (storage-node/resp/resp-replicas.ts), so what a Redis client was told is stored
 * survives its primary as the native client's writes do (test/incarnations.test.ts). In-process clusters, so each
 * node's engine can be looked at.
 */
import test from 'ava';
import { Cluster, Redis } from 'ioredis';
import { type Job, Satchel } from '../client/index.ts';
import { keySlot, pickNodes } from '../proto/index.ts';
import { type InProcessCluster, remnantSettled, startInProcessCluster } from './helpers/in-process.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;
const keys = Array.from({ length: 120 }, (_, i) => `k/${i}`);

function credentials(url: string): { username: string; password: string; host: string; port: number } {
  const u = new URL(url);
  return { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password), host: u.hostname, port: Number(u.port) };
}

/** A Redis Cluster client of the job through one node's RESP front door. */
function redisCluster(t: { teardown(fn: () => unknown): void }, url: string, respAddress?: string): Cluster {
  const { username, password, host, port } = credentials(url);
  const [seedHost, seedPort] = respAddress === undefined ? [host, port] : [respAddress.split(':')[0]!, Number(respAddress.split(':')[1])];
  const client = new Cluster([{ host: seedHost, port: seedPort }], { redisOptions: { username, password }, lazyConnect: false });
  t.teardown(() => client.disconnect());
  return client;
}

/** What each node's engine holds of `key`: node id → value text (undefined where it holds none). */
function copies(cluster: InProcessCluster, jobId: string, key: string): Map<string, { value: string; epoch: number; seq: number }> {
  const found = new Map<string, { value: string; epoch: number; seq: number }>();
  for (const node of cluster.nodes) {
    const entry = node.server.engine.get(jobId, key);
    if (entry !== undefined && !(entry instanceof Promise))
      found.set(node.id, { value: entry.value.toString(), epoch: entry.epoch, seq: entry.seq });
  }
  return found;
}

async function readAll(job: Job, names: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await Promise.all(
    names.map(async (key) => {
      try {
        out.set(key, String(await job.get(key)));
      } catch (error) {
        out.set(key, `error ${(error as { code?: string }).code}`);
      }
    }),
  );
  return out;
}

test('replicas 2 through RESP: SET, MSET, INCRBY, DEL and GETDEL reach both copies before they are answered; nothing acknowledged is lost with the primary', async (t) => {
  const cluster = await startInProcessCluster({ dram: 3, capacity: 128 * MiB, nodeTimeoutMs: 2_000, resp: true });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('resp-replicas', { replicas: 2, peakThroughput: 3.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  const placement = cluster.controller.registry.jobs.get(job.id)!.placement;
  t.is(placement.generations[0]!.nodes.length, 3);

  const redis = redisCluster(t, job.redisUrl!);
  await Promise.all(keys.map((key) => redis.set(key, `r ${key}`)));
  t.is(await redis.mset('{m}/a', 'one', '{m}/b', 'two'), 'OK');
  // Increments from several connections at once: each counted once on each copy.
  await Promise.all(Array.from({ length: 20 }, () => redis.incrby('{m}/count', 3)));
  t.is(await redis.set('k/2', 'not this', 'NX'), null);
  t.is(await redis.set('k/3', 'x3', 'XX'), 'OK');
  t.is(await redis.del('k/0'), 1);
  t.is(await redis.getdel('k/1'), 'r k/1');

  const nodes = placement.generations[0]!.nodes;
  const expected = new Map<string, string | null>(keys.map((key) => [key, `r ${key}`]));
  expected.set('k/0', null);
  expected.set('k/1', null);
  expected.set('k/3', 'x3');
  expected.set('{m}/a', 'one');
  expected.set('{m}/b', 'two');
  expected.set('{m}/count', '60');
  for (const [key, value] of expected) {
    const held = copies(cluster, job.id, key);
    if (value === null) {
      t.is(held.size, 0, `${key} deleted on every copy`);
      continue;
    }
    // The key's two holders (placement.ts), each with the same value at the same version.
    const holders = pickNodes(nodes, keySlot(key), 2).map((i) => nodes[i]!.id);
    t.deepEqual([...held.keys()].sort(), [...holders].sort(), `${key} is on its two holders`);
    const versions = [...held.values()];
    t.true(
      versions.every((v) => v.value === value && v.epoch === versions[0]!.epoch && v.seq === versions[0]!.seq),
      `${key}: ${JSON.stringify(versions)}`,
    );
  }

  // The native client reads them, and reads them still once the primary of some of them restarted empty (a
  // Kubernetes pod after a crash: same id and address).
  const index = cluster.nodes.findIndex((n) => n.id === nodes[0]!.id);
  await cluster.restartNode(index);
  const fresh = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => fresh.close());
  const got = await readAll(fresh, [...expected.keys()]);
  t.deepEqual(
    [...expected].filter(([key, value]) => got.get(key) !== String(value)).map(([key]) => `${key}: ${got.get(key)}`),
    [],
    'every acknowledged write reads back, and every delete stays deleted',
  );
  // Once the copies are restored, Redis clients read and write on through a surviving node.
  await eventually(() => cluster.controller.events.since(0).some((e) => e.kind === 'copies-restored'), 15_000, 'copies restored');
  const survivor = cluster.nodes.find((_, i) => i !== index)!;
  const after = redisCluster(t, job.redisUrl!, survivor.respAddress!);
  t.deepEqual(await after.mget('{m}/a', '{m}/b', '{m}/count'), ['one', 'two', '60']);
  for (const key of keys.slice(2, 30)) t.is(await after.get(key), expected.get(key) ?? null, key);
  t.is(await after.incr('{m}/count'), 61);
  t.is(await job.get('{m}/count').then(String), '61');
});

test('replicas 2 through RESP: a write whose other copy cannot be reached is answered TRYAGAIN, not OK', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 64 * MiB, nodeTimeoutMs: 60_000, resp: true });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('resp-replicas-down', { replicas: 2, peakThroughput: 1.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  const { username, password } = credentials(job.redisUrl!);
  // Through node 0's front door, a key node 0 is the primary of; node 1 holds its other copy.
  const nodes = cluster.controller.registry.jobs.get(job.id)!.placement.generations[0]!.nodes;
  const key = keys.find((k) => nodes[pickNodes(nodes, keySlot(k), 2)[0]!]!.id === 'dram-0')!;
  const [host, port] = cluster.nodes[0]!.respAddress!.split(':');
  const redis = new Redis({ host, port: Number(port), username, password, maxRetriesPerRequest: 0 });
  t.teardown(() => redis.disconnect());
  t.is(await redis.set(key, 'both'), 'OK');
  t.is(copies(cluster, job.id, key).size, 2);
  await cluster.nodes[1]!.close();
  const error = await t.throwsAsync(redis.set(key, 'one copy only'));
  t.regex(error!.message, /^TRYAGAIN .*dram-1/);
  // The primary did store it (as the native client's primary does, and a Redis primary): unacknowledged, and
  // overwritten by the client's retry once the controller has replaced the copy.
  t.is(await redis.get(key), 'one copy only');
});

test('replicas 2 through RESP: SCAN over every node lists each key once, and the nodes’ DBSIZEs add up to the keys', async (t) => {
  const cluster = await startInProcessCluster({ dram: 3, capacity: 128 * MiB, resp: true });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('resp-scan', { replicas: 2, peakThroughput: 3.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  await job.putMany(keys.map((key) => [key, `v ${key}`] as const));
  const redis = redisCluster(t, job.redisUrl!);
  await redis.set('by-redis', 'x');
  const all = [...keys, 'by-redis'].sort();
  // Every key is held twice; each node's SCAN and DBSIZE answer for the keys whose primary it is.
  t.is(
    all.reduce((n, key) => n + copies(cluster, job.id, key).size, 0),
    2 * all.length,
  );
  const scanned: string[] = [];
  let sizes = 0;
  for (const node of redis.nodes('master')) {
    let cursor = '0';
    do {
      const [next, page] = (await node.scan(cursor, 'COUNT', 50)) as [string, string[]];
      scanned.push(...page);
      cursor = next;
    } while (cursor !== '0');
    sizes += await node.dbsize();
  }
  t.is(redis.nodes('master').length, 3);
  t.deepEqual(scanned.sort(), all);
  t.is(sizes, all.length);
});

test('replicas 2 through RESP, every copy of the keys lost at once: reads and read-modify-writes answer ERR … [UNAVAILABLE], never as if absent', async (t) => {
  const cluster = await startInProcessCluster({ dram: 4, capacity: 128 * MiB, nodeTimeoutMs: 1_500, resp: true });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('resp-lost', { replicas: 2 });
  t.teardown(() => job.deregister().catch(() => {}));
  const placed = cluster.controller.registry.jobs.get(job.id)!.placement.generations[0]!.nodes.map((n) => n.id);
  t.is(placed.length, 2);
  await job.putMany(keys.map((key) => [key, `value ${key}`] as const));
  t.is(await job.incr('ctr', 5), 5);
  const url = job.redisUrl!;

  // Both holders restart empty at once; once the copies that could be restored were, both are marked in the remnant.
  await Promise.all(placed.map((id) => cluster.restartNode(cluster.nodes.findIndex((n) => n.id === id))));
  await eventually(() => remnantSettled(cluster, job.id, 2), 15_000, 'both lost nodes marked in the remnant');
  const live = cluster.nodes.find((n) => !placed.includes(n.id))!;
  const redis = redisCluster(t, url, live.respAddress!);
  const lost = async (what: string, command: Promise<unknown>) => {
    const error = await command.then(
      (answer) => new Error(`${what} answered ${JSON.stringify(answer)}`),
      (e: Error) => e,
    );
    t.regex(error.message, /every copy of .* was lost.*\[UNAVAILABLE\]/, what);
  };
  await lost('GET', redis.get('k/1'));
  await lost('EXISTS', redis.exists('k/2'));
  await lost('STRLEN', redis.strlen('k/3'));
  await lost('TYPE', redis.type('k/4'));
  await lost('INCR of the counter', redis.incr('ctr'));
  await lost('INCRBY', redis.incrby('k/5', 3));
  await lost('SET NX', redis.set('k/6', 'x', 'NX'));
  await lost('SET XX', redis.set('k/7', 'x', 'XX'));
  await lost('SET GET', redis.set('k/8', 'x', 'GET'));
  await lost('SCAN', redis.scan('0'));
  const [element] = (await redis.mget('k/9')) as unknown as [unknown];
  t.regex(String(element), /every copy of k\/9 was lost.*\[UNAVAILABLE\]/, 'MGET: an error element, not nil');
  // A plain SET overwrites whatever was there, as the native put does; the key reads back.
  t.is(await redis.set('k/10', 'again'), 'OK');
  t.is(await redis.get('k/10'), 'again');
  t.is((await job.get('k/10'))?.toString(), 'again');
  const error = await job.incr('ctr', 1).catch((e: { code?: string }) => e);
  t.is((error as { code?: string }).code, 'UNAVAILABLE', 'the counter was not restarted at 0 by the INCR above');
});
