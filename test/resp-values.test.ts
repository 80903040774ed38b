/**
 * The RESP front door's SET, GET and MGET against a real node (in this process), where its hot path keeps the
 * buffers of small values SET replaced for the next SETs (storage-node/resp/resp-data.ts `spares`): whatever is
 * overwritten, in whichever order and size, every read — RESP or native — gets the bytes last written, and
 * SET … GET the ones before.
 */
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { COPY_THRESHOLD, Op, Status, signToken } from '../proto/index.ts';
import { DramEngine } from '../storage-node/dram-engine.ts';
import { StorageServer } from '../storage-node/server.ts';
import { connect } from './helpers/node-session.ts';

const secret = randomBytes(32);
const JOB = 'resp-values';

async function start(t: ExecutionContext) {
  const server = new StorageServer({
    id: 'dram-resp',
    engine: new DramEngine(256 * 1024 * 1024),
    secret,
    logger: pino({ level: 'silent' }),
  });
  const address = await server.listen(0, '127.0.0.1');
  const resp = await server.listenResp(0, '127.0.0.1');
  t.teardown(() => server.close());
  const token = signToken(secret, JOB, Date.now() + 600_000);
  const [host, port] = resp.split(':');
  const redis = new Redis({
    host,
    port: Number(port),
    username: JOB,
    password: token,
    protocol: 2,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
  });
  await redis.connect();
  t.teardown(() => redis.disconnect());
  return { redis, native: connect(t, address, token) };
}

/** A value whose every byte says which write it was. */
function written(write: number, size: number): Buffer {
  const value = Buffer.alloc(size);
  for (let i = 0; i < size; i++) value[i] = (write * 31 + i) & 0xff;
  return value;
}

test('overwrites of every size, pipelined on two connections: each GET has the bytes of its key’s last SET', async (t) => {
  const { redis, native } = await start(t);
  const other = redis.duplicate();
  await other.connect();
  t.teardown(() => other.disconnect());
  const sizes = [1, 100, 1024, 4096, COPY_THRESHOLD, COPY_THRESHOLD + 1, 70_000];
  const last = new Map<string, Buffer>();
  let write = 0;
  for (let round = 0; round < 20; round++) {
    const a = redis.pipeline();
    const b = other.pipeline();
    for (let k = 0; k < 16; k++) {
      const key = `k{${k % 4}}/${k}`;
      const value = written(++write, sizes[(round + k) % sizes.length]!);
      (k % 2 === 0 ? a : b).set(key, value);
      last.set(key, value);
    }
    await Promise.all([a.exec(), b.exec()]);
    // Reads between rounds: GET, MGET of one slot, and the native client, all the last bytes.
    for (const [key, value] of last) t.true((await redis.getBuffer(key))?.equals(value), `${key} after round ${round}`);
    const slot0 = [...last.keys()].filter((key) => key.startsWith('k{0}'));
    const many = await redis.mgetBuffer(...slot0);
    for (const [i, key] of slot0.entries()) t.true(many[i]?.equals(last.get(key)!), `MGET ${key}`);
    const reply = await native.request({ op: Op.GET, key: 'k{1}/1' });
    t.is(reply.status, Status.OK);
    t.true(reply.body.equals(last.get('k{1}/1')!), 'the native client reads the same bytes');
  }
});

test('SET … GET answers the value it replaced, and the next SETs do not change that answer', async (t) => {
  const { redis } = await start(t);
  const first = written(1, 1024);
  const second = written(2, 1024);
  await redis.set('swap', first);
  const pipeline = redis.pipeline();
  pipeline.callBuffer('SET', 'swap', second, 'GET');
  // Same size, in the same read: these may reuse the buffer the SET … GET let go of.
  for (let i = 3; i < 10; i++) pipeline.set(`other/${i}`, written(i, 1024));
  const results = (await pipeline.exec())!;
  t.true((results[0]![1] as Buffer).equals(first));
  t.true((await redis.getBuffer('swap'))?.equals(second));
  const old = (await redis.callBuffer('SET', 'swap', written(11, 1024), 'GET')) as Buffer;
  t.true(old.equals(second));
  t.true((await redis.getBuffer('swap'))?.equals(written(11, 1024)));
  for (let i = 3; i < 10; i++) t.true((await redis.getBuffer(`other/${i}`))?.equals(written(i, 1024)));
});

test('NX and XX leave the value alone and keep nothing of the refused write', async (t) => {
  const { redis } = await start(t);
  t.is(await redis.set('cond', written(1, 512), 'XX'), null);
  t.is(await redis.getBuffer('cond'), null);
  t.is(await redis.set('cond', written(2, 512), 'NX'), 'OK');
  t.is(await redis.set('cond', written(3, 512), 'NX'), null);
  t.true((await redis.getBuffer('cond'))?.equals(written(2, 512)));
  t.is(await redis.set('cond', written(4, 512), 'XX'), 'OK');
  t.true((await redis.getBuffer('cond'))?.equals(written(4, 512)));
});

test('keys in UTF-8 and in ASCII name the same entries for RESP and native clients, in pipelines that mix them', async (t) => {
  const { redis, native } = await start(t);
  const keys = ['plain/ascii', 'ключ/é', '{日本}/値', 'mixed/ü-and-ascii', 'tab\tkey'];
  const pipeline = redis.pipeline();
  for (const [i, key] of keys.entries()) pipeline.set(key, `v${i}`);
  await pipeline.exec();
  for (const [i, key] of keys.entries()) {
    const reply = await native.request({ op: Op.GET, key });
    t.is(reply.status, Status.OK, key);
    t.is(reply.body.toString(), `v${i}`, key);
    t.is((await native.request({ op: Op.PUT, key, value: Buffer.from(`n${i}`) })).status, Status.OK);
  }
  t.deepEqual(await redis.mget(keys[2]!), ['n2']);
  const reads = redis.pipeline();
  for (const key of keys) reads.get(key);
  t.deepEqual(
    (await reads.exec())!.map(([, value]) => value),
    keys.map((_, i) => `n${i}`),
  );
  t.is(await redis.del(...keys.slice(1, 2)), 1);
  t.is((await native.request({ op: Op.GET, key: keys[1]! })).status, Status.NOT_FOUND);
});
