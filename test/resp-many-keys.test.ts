/**
 * Multi-key commands with many keys: each key's step is a loop turn, not a call deeper (resp-in-turn.ts). Before,
 * MSET, MGET, EXISTS or DEL of 20,000 keys of one slot from redis-cli took the node down with "Maximum call stack
 * size exceeded" (2026-12-07).
 */
import test from 'ava';
import { Cluster } from 'ioredis';
import { Satchel } from '../client/index.ts';
import { startInProcessCluster } from './helpers/in-process.ts';

test('MSET, MGET, EXISTS and DEL of 20,000 keys: answered, and the node serves on', async (t) => {
  const cluster = await startInProcessCluster({ dram: 1, resp: true });
  t.teardown(() => cluster.close());
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey, timeoutMs: 8_000 });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('many-keys', {});
  t.teardown(() => job.deregister().catch(() => {}));
  const { username, password, hostname, port } = new URL(job.redisUrl!);
  const redis = new Cluster([{ host: hostname, port: Number(port) }], {
    redisOptions: { username: decodeURIComponent(username), password: decodeURIComponent(password) },
  });
  t.teardown(() => redis.disconnect());
  const keys = Array.from({ length: 20_000 }, (_, i) => `{many}k${i}`);
  t.is(await redis.mset(...keys.flatMap((key, i) => [key, `v${i}`])), 'OK');
  const values = await redis.mget(...keys);
  t.is(values.length, keys.length);
  t.deepEqual([values[0], values[19_999]], ['v0', 'v19999']);
  t.is(await redis.exists(...keys), keys.length);
  t.is(await redis.del(...keys), keys.length);
  t.is(await redis.exists(...keys), 0);
  t.is(await redis.set('after', 'still serving'), 'OK');
  t.is(String(await job.get('after')), 'still serving');
});
