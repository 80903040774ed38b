/**
 * A DRAM node reuses a replaced small value's buffer for the next PUT or SET of its size (ValuePool.keepSmall):
 * no value may ever read another's bytes. Keys are rewritten with values of a few sizes and deleted, through both
 * protocols, and every key is read back through both against a model after each round.
 */
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Op, Status, signToken } from '../proto/index.ts';
import { connect } from '../test/helpers/node-session.ts';
import { DramEngine } from './dram-engine.ts';
import { StorageServer } from './server.ts';

test('rewrites and deletes over reused small buffers: every key reads back its own last value, on both protocols', async (t) => {
  t.timeout(60_000);
  const secret = randomBytes(32);
  const server = new StorageServer({
    id: 'dram-small',
    engine: new DramEngine(256 * 1024 * 1024),
    secret,
    logger: pino({ level: 'silent' }),
  });
  const address = await server.listen(0, '127.0.0.1');
  const resp = await server.listenResp(0, '127.0.0.1');
  t.teardown(() => server.close());
  const job = 'small-values-job';
  const token = signToken(secret, job);
  const native = connect(t, address, token);
  // The first request makes the job known to the node (no controller here: announcedJobsOnly is off).
  t.is((await native.request({ op: Op.PUT, key: 'first', value: Buffer.from('x') })).status, Status.OK);
  const i = resp.lastIndexOf(':');
  const redis = new Redis({ host: resp.slice(0, i), port: Number(resp.slice(i + 1)), username: job, password: token, lazyConnect: true });
  await redis.connect();
  t.teardown(() => redis.disconnect());

  const sizes = [1, 100, 1024, 16 * 1024];
  const model = new Map<string, Buffer | null>();
  const keys = Array.from({ length: 64 }, (_, k) => `k${k}`);
  let written = 0;
  /** A value no other write has: its number in its first bytes, the rest a fill that differs from the last. */
  const fresh = (size: number) => {
    const value = Buffer.alloc(size, written % 251);
    if (size >= 4) value.writeUInt32LE(written, 0);
    written++;
    return value;
  };
  for (let round = 0; round < 30; round++) {
    const writes: Promise<unknown>[] = [];
    for (const key of keys) {
      const r = Math.random();
      if (r < 0.8) {
        const value = fresh(sizes[written % sizes.length]!);
        model.set(key, value);
        writes.push(r < 0.4 ? native.request({ op: Op.PUT, key, value }) : redis.set(key, value));
      } else {
        model.set(key, null);
        writes.push(r < 0.9 ? native.request({ op: Op.DELETE, key }) : redis.del(key));
      }
    }
    await Promise.all(writes);
    const natives = await Promise.all(keys.map((key) => native.request({ op: Op.GET, key })));
    const resps = await Promise.all(keys.map((key) => redis.getBuffer(key)));
    for (const [k, key] of keys.entries()) {
      const expected = model.get(key) ?? null;
      const reply = natives[k]!;
      if (expected === null) {
        t.is(reply.status, Status.NOT_FOUND, `${key}, round ${round}, native`);
        t.is(resps[k], null, `${key}, round ${round}, RESP`);
      } else {
        t.true(reply.status === Status.OK && Buffer.from(reply.body!).equals(expected), `${key}, round ${round}, native`);
        t.true(resps[k]?.equals(expected) === true, `${key}, round ${round}, RESP`);
      }
    }
  }
  t.true(
    sizes.some((size) => server.pool.takeSmall(size) !== undefined),
    'replaced buffers were kept for reuse',
  );
});
