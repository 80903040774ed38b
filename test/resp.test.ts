/**
 * The RESP front door judged by stock clients: a job registered by the Node driver, spread over two DRAM nodes,
 * used through its redisUrl by redis-cli in cluster mode, ioredis's Cluster and Debian's redis-py RedisCluster,
 * each reading what the native client wrote and the reverse.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { Cluster } from 'ioredis';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';

const run = promisify(execFile);

function credentials(url: string): { username: string; password: string; host: string; port: number } {
  const u = new URL(url);
  return { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password), host: u.hostname, port: Number(u.port) };
}

async function redisCli(url: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-u', url, '--no-auth-warning', ...args], { timeout: 20_000 });
  return stdout.trimEnd();
}

const PYTHON = `
import sys, redis
from redis.cluster import RedisCluster
c = RedisCluster(host=sys.argv[1], port=int(sys.argv[2]), username=sys.argv[3], password=sys.argv[4])
got = [c.get(f"native/{i}") for i in range(50)]
assert all(got[i] == f"value-{i}".encode() for i in range(50)), got
for i in range(50):
    c.set(f"python/{i}", f"py-{i}")
print(c.incrby("counter", 5))
`;

test('a job used from redis-cli -c, ioredis Cluster and redis-py RedisCluster with its redisUrl, native and RESP seeing the same keys', async (t) => {
  const cluster = await LocalCluster.start({ dram: 2, ssd: 0, hdd: 0 });
  t.teardown(() => cluster.stop());
  t.true(
    cluster.info.nodes.every((n) => /^127\.0\.0\.1:\d+$/.test(n.resp ?? '')),
    'cluster.json lists each node’s RESP address',
  );
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('redis-clients', { peakThroughput: 1.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  const url = job.redisUrl!;
  t.regex(url, new RegExp(`^redis://${job.id}:v2\\.[^@]+@127\\.0\\.0\\.1:\\d+$`));
  await Promise.all(Array.from({ length: 50 }, (_, i) => job.put(`native/${i}`, `value-${i}`)));

  // redis-cli in cluster mode follows MOVED; without -c the wrong node answers MOVED with the owner.
  for (let i = 0; i < 50; i += 7) t.is(await redisCli(url, '-c', 'GET', `native/${i}`), `value-${i}`);
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => redisCli(url, 'GET', `native/${i}`)));
  t.true(
    answers.some((a) => /^MOVED \d+ 127\.0\.0\.1:\d+$/.test(a)),
    'keys of the other node get MOVED',
  );
  t.true(
    answers.some((a) => /^value-\d+$/.test(a)),
    'keys of this node are served',
  );
  t.is(await redisCli(url, '-c', 'SET', 'cli/key', 'from redis-cli'), 'OK');
  t.is((await job.get('cli/key'))?.toString(), 'from redis-cli');
  t.regex(await redisCli(url, 'MGET', 'native/1', 'native/2'), /^CROSSSLOT/);
  t.regex(await redisCli(url, '-c', 'SET', 'x', 'y', 'EX', '10'), /^ERR Satchel keys do not expire/);
  t.regex(await redisCli(url, '-c', 'EXPIRE', 'cli/key', '10'), /^ERR Satchel keys do not expire.* \[BAD_REQUEST\]$/);
  t.regex(await redisCli(url, '-c', 'LPUSH', 'cli/list', 'a'), /^ERR unknown command 'LPUSH'.*'a' \[BAD_REQUEST\]$/);
  const bare = url.replace(/\/\/[^@]+@/, '//');
  t.regex(await redisCli(bare, 'AUTH', job.id, 'v2.nope'), /^WRONGPASS/);
  t.regex(await redisCli(bare, 'GET', 'native/1'), /^NOAUTH .*\[UNAUTHORIZED\]$/);

  // The slot map covers every slot once, over both nodes.
  const slots = (await redisCli(url, 'CLUSTER', 'SLOTS')).split('\n');
  t.true(slots.length > 10);
  const nodes = (await redisCli(url, 'CLUSTER', 'NODES')).split('\n');
  t.is(nodes.length, 2);
  let covered = 0;
  for (const line of nodes)
    for (const range of line.split(' ').slice(8)) {
      const [a, b] = range.split('-').map(Number);
      covered += (b ?? a!) - a! + 1;
    }
  t.is(covered, 16384);

  // ioredis's Cluster: reads the native keys, writes its own.
  const { username, password, host, port } = credentials(url);
  const io = new Cluster([{ host, port }], { redisOptions: { username, password }, lazyConnect: true });
  t.teardown(() => io.disconnect());
  await io.connect();
  const got = await Promise.all(Array.from({ length: 50 }, (_, i) => io.get(`native/${i}`)));
  t.deepEqual(
    got,
    Array.from({ length: 50 }, (_, i) => `value-${i}`),
  );
  await Promise.all(Array.from({ length: 50 }, (_, i) => io.set(`ioredis/${i}`, `io-${i}`)));
  for (let i = 0; i < 50; i++) t.is((await job.get(`ioredis/${i}`))?.toString(), `io-${i}`);
  t.is(await io.incr('counter'), 1);

  // Debian's redis-py RedisCluster (python3-redis, made sure of by .ci/ensure-tools).
  const py = await run('/usr/bin/python3', ['-c', PYTHON, host, String(port), username, password], { timeout: 30_000 });
  t.is(py.stdout.trim(), '6', 'redis-py incremented the counter ioredis made');
  for (let i = 0; i < 50; i++) t.is((await job.get(`python/${i}`))?.toString(), `py-${i}`);
  t.is(await job.incr('counter', 0), 6, 'the native client reads the same counter');

  // After deregistration the job's data is gone and its credentials open nothing.
  await job.deregister();
  t.regex(await redisCli(bare, 'AUTH', username, password), /^ERR job .* was deregistered \[NO_SUCH_JOB\]$/);
  t.regex(await redisCli(url, '-c', 'GET', 'native/1'), /^NOAUTH/);
});
