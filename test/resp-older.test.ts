/**
 * Keys a job wrote before it grew live in its older generation, on another node than the slot's newest owner,
 * which a Redis client asks. GET is answered from there by the owner (no ASK: not every client follows one);
 * commands that answer from what is there, or read and then write (INCR, SET NX/XX/GET, EXISTS, STRLEN, TYPE, MGET,
 * DEL, GETDEL), have the owner fetch the key's copy first (storage-node/resp/resp-older.ts). Before, after a growth INCR started a counter again from 0, SET NX
 * overwrote, EXISTS said 0 and DEL left the value to be found again.
 */
import test from 'ava';
import { Cluster, Redis } from 'ioredis';
import { Satchel } from '../client/index.ts';
import { keySlot, pickNode } from '../proto/index.ts';
import { startInProcessCluster } from './helpers/in-process.ts';

const MiB = 1024 * 1024;

test('after a growth, a Redis client’s INCR, SET NX/XX/GET, EXISTS, STRLEN, TYPE, MGET, DEL and GETDEL see the keys of the older generation', async (t) => {
  const cluster = await startInProcessCluster({ dram: 2, capacity: 24 * MiB, resp: true });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('grown', { capacity: MiB });
  t.teardown(() => job.deregister().catch(() => {}));
  const record = () => cluster.controller.registry.jobs.get(job.id)!;
  t.is(record().placement.generations.length, 1);

  const names = Array.from({ length: 60 }, (_, i) => i);
  for (const i of names) {
    await job.incr(`c/${i}`, 5);
    await job.put(`v/${i}`, `old ${i}`);
    await job.put(`d/${i}`, `doomed ${i}`);
    await job.put(`g/${i}`, `taken ${i}`);
  }
  // Written until the job's node is full for it and the job grows onto the other node.
  const filler = Buffer.alloc(256 * 1024, 1);
  for (let i = 0; record().placement.generations.length < 2 && i < 400; i++) await job.put(`fill/${i}`, filler);
  const [newest, older] = record().placement.generations.map((g) => g.nodes);
  t.truthy(older, 'the job grew');
  // The keys whose slot the newest generation gives another node than the one that holds them.
  const moved = (key: string) => newest![pickNode(newest!, keySlot(key))]!.id !== older![pickNode(older!, keySlot(key))]!.id;
  const some = names.filter((i) => moved(`c/${i}`) && moved(`v/${i}`) && moved(`d/${i}`) && moved(`g/${i}`)).slice(0, 8);
  t.true(some.length >= 3, `keys whose newest owner is the new node (${some.length})`);

  const { username, password, hostname, port } = new URL(job.redisUrl!);
  const redis = new Cluster([{ host: hostname, port: Number(port) }], {
    redisOptions: { username: decodeURIComponent(username), password: decodeURIComponent(password) },
  });
  t.teardown(() => redis.disconnect());
  // A client that follows no ASK (Debian's redis-py 4.3.4 cannot follow one to a node CLUSTER SLOTS does not
  // list): the slot's newest owner answers GET from the older generation itself.
  for (const i of some) {
    const owner = newest![pickNode(newest!, keySlot(`v/${i}`))]!;
    const [host, ownerPort] = owner.respAddress!.split(':');
    const plain = new Redis({
      host,
      port: Number(ownerPort),
      username: decodeURIComponent(username),
      password: decodeURIComponent(password),
    });
    t.teardown(() => plain.disconnect());
    t.is(await plain.get(`v/${i}`), `old ${i}`);
    t.is(await plain.get(`v/${i}/never-written`), null);
  }
  for (const i of some) {
    t.is(await redis.incr(`c/${i}`), 6, 'the counter goes on from 5');
    t.is(await redis.exists(`v/${i}`), 1);
    t.is(await redis.strlen(`v/${i}`), `old ${i}`.length);
    t.is(await redis.type(`v/${i}`), 'string');
    t.deepEqual(await redis.mget(`v/${i}`), [`old ${i}`]);
    t.is(await redis.set(`v/${i}`, 'clobbered', 'NX'), null, 'NX: the key exists');
    t.is(await redis.get(`v/${i}`), `old ${i}`);
    t.is(await redis.set(`v/${i}`, `new ${i}`, 'XX', 'GET'), `old ${i}`, 'XX … GET: the value it replaced');
    t.is(await redis.del(`d/${i}`), 1, 'DEL found it');
    t.is(await redis.get(`d/${i}`), null, 'and it stays deleted');
    t.is(await redis.getdel(`g/${i}`), `taken ${i}`);
    t.is(await redis.exists(`g/${i}`), 0);
  }
  // The native client agrees.
  const reader = await Satchel.attach(job.ticket, { timeoutMs: 8_000 });
  t.teardown(() => reader.close());
  for (const i of some) {
    t.is(await reader.incr(`c/${i}`, 1), 7);
    t.is(String(await reader.get(`v/${i}`)), `new ${i}`);
    t.is(await reader.get(`d/${i}`), null);
    t.is(await reader.get(`g/${i}`), null);
  }
});
