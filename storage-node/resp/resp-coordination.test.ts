/**
 * WAITFOR and PSUBSCRIBE on one in-process node (no controller: the node serves every slot of any job), driven by
 * ioredis and by a raw socket where the exact reply bytes matter; the native frame protocol on the same node wakes
 * and is heard by them.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Op, Status, signToken } from '../../proto/index.ts';
import { connect } from '../../test/helpers/node-session.ts';
import { eventually } from '../../test/helpers/raw-client.ts';
import { DramEngine } from '../dram-engine.ts';
import { StorageServer } from '../server.ts';

const secret = randomBytes(32);
const logger = pino({ level: 'silent' });
const JOB = 'job-r';
const token = signToken(secret, JOB);

interface Node {
  server: StorageServer;
  address: string;
  resp: { host: string; port: number };
}

async function startNode(t: ExecutionContext): Promise<Node> {
  const server = new StorageServer({ id: 'resp-test', engine: new DramEngine(64 * 1024 * 1024), secret, logger });
  const address = await server.listen(0, '127.0.0.1');
  const [host, port] = (await server.listenResp(0, '127.0.0.1')).split(':');
  t.teardown(() => server.close());
  return { server, address, resp: { host: host!, port: Number(port) } };
}

function redis(t: ExecutionContext, node: Node): Redis {
  const client = new Redis({ ...node.resp, username: JOB, password: token, lazyConnect: false, maxRetriesPerRequest: 0 });
  t.teardown(() => client.disconnect());
  return client;
}

/** A raw RESP connection: what it sends, and everything it has been answered, as text. */
async function raw(t: ExecutionContext, node: Node): Promise<{ send(text: string): void; received(): string; close(): void }> {
  const socket = net.connect(node.resp.port, node.resp.host);
  await new Promise((resolve) => socket.once('connect', resolve));
  t.teardown(() => socket.destroy());
  let received = '';
  socket.on('data', (chunk) => {
    received += chunk.toString('latin1');
  });
  return { send: (text) => socket.write(text), received: () => received, close: () => socket.destroy() };
}

function command(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

test('WAITFOR answers a key that exists at once, waits for one that does not, and nil when the time is up', async (t) => {
  const node = await startNode(t);
  const writer = redis(t, node);
  const reader = redis(t, node);
  await writer.set('ready', 'now');
  t.is(await reader.call('WAITFOR', 'ready', '5'), 'now');

  const waited = reader.call('WAITFOR', 'later', '10');
  await eventually(() => node.server.coordination.waiters === 1, 5_000, 'the read parked');
  await writer.set('later', 'here');
  t.is(await waited, 'here');

  const started = Date.now();
  t.is(await reader.call('WAITFOR', 'never', '0.2'), null);
  t.true(Date.now() - started >= 150, 'nil only once the timeout passed');
  t.is(node.server.coordination.active, 0);

  await t.throwsAsync(reader.call('WAITFOR', 'x', 'soon'), { message: /timeout is not a float/ });
  await t.throwsAsync(reader.call('WAITFOR', 'x', '-1'), { message: /timeout is negative/ });
});

test('a blocked connection answers its later pipelined commands after the WAITFOR, in order', async (t) => {
  const node = await startNode(t);
  const writer = redis(t, node);
  const c = await raw(t, node);
  c.send(command('AUTH', JOB, token) + command('WAITFOR', 'k', '10') + command('PING') + command('GET', 'k'));
  await eventually(() => node.server.coordination.waiters === 1 && c.received() !== '', 5_000, 'the read parked');
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(c.received(), '+OK\r\n', 'nothing after the blocking read is answered while it waits');
  await writer.set('k', 'v1');
  await eventually(() => c.received().includes('PONG'), 5_000, 'the commands behind it answered').catch((e) => {
    t.log(JSON.stringify(c.received()));
    throw e;
  });
  await eventually(() => c.received() === '+OK\r\n$2\r\nv1\r\n+PONG\r\n$2\r\nv1\r\n', 5_000, 'the GET after it');
});

test('a native PUT wakes a WAITFOR; a closed connection forgets its blocked read', async (t) => {
  const node = await startNode(t);
  const reader = redis(t, node);
  const waited = reader.call('WAITFOR', 'from-native', '10');
  await eventually(() => node.server.coordination.waiters === 1, 5_000, 'the read parked');
  const native = connect(t, node.address, token);
  t.is((await native.request({ op: Op.PUT, epoch: 0, key: 'from-native', value: Buffer.from('bytes') })).status, Status.OK);
  t.is(await waited, 'bytes');

  const c = await raw(t, node);
  c.send(command('AUTH', JOB, token) + command('WAITFOR', 'gone', '60'));
  await eventually(() => node.server.coordination.waiters === 1, 5_000, 'the read parked');
  c.close();
  await eventually(() => node.server.coordination.active === 0, 5_000, 'the closed connection’s read forgotten');
  t.is(node.server.coordination.waiters, 0);
});

test('PSUBSCRIBE __keyspace@0__:<prefix>* hears set and del of the prefix, from RESP and native writers alike', async (t) => {
  const node = await startNode(t);
  const writer = redis(t, node);
  const subscriber = redis(t, node);
  const heard: string[] = [];
  subscriber.on('pmessage', (pattern: string, channel: string, message: string) => heard.push(`${pattern} ${channel} ${message}`));
  t.is(await subscriber.psubscribe('__keyspace@0__:a/*'), 1);
  await writer.set('a/1', 'x');
  await writer.set('b/1', 'not heard');
  await writer.incr('a/n');
  await writer.del('a/1');
  const native = connect(t, node.address, token);
  await native.request({ op: Op.PUT, epoch: 0, key: 'a/2', value: Buffer.from('y') });
  await eventually(() => heard.length >= 4, 5_000, 'four events');
  t.deepEqual(heard, [
    '__keyspace@0__:a/* __keyspace@0__:a/1 set',
    '__keyspace@0__:a/* __keyspace@0__:a/n set',
    '__keyspace@0__:a/* __keyspace@0__:a/1 del',
    '__keyspace@0__:a/* __keyspace@0__:a/2 set',
  ]);
  t.is(await subscriber.punsubscribe('__keyspace@0__:a/*'), 0);
  t.is(node.server.coordination.watches, 0, 'PUNSUBSCRIBE ends the watch on the node');
  await writer.set('a/3', 'after');
  await writer.ping();
  t.is(heard.length, 4);
});

test('PSUBSCRIBE: RESP2 subscribed mode allows only (P)SUBSCRIBE, PING, QUIT; RESP3 gets pushes and any command', async (t) => {
  const node = await startNode(t);
  const writer = redis(t, node);
  const two = await raw(t, node);
  two.send(command('AUTH', JOB, token) + command('PSUBSCRIBE', '__keyspace@0__:*') + command('GET', 'k') + command('PING'));
  const subscribed = '+OK\r\n*3\r\n$10\r\npsubscribe\r\n$16\r\n__keyspace@0__:*\r\n:1\r\n';
  await eventually(() => two.received().endsWith('$0\r\n\r\n'), 5_000, 'the PING answered');
  t.is(
    two.received(),
    `${subscribed}-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context [BAD_REQUEST]\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n`,
  );
  await writer.set('k', 'v');
  const event = '*4\r\n$8\r\npmessage\r\n$16\r\n__keyspace@0__:*\r\n$16\r\n__keyspace@0__:k\r\n$3\r\nset\r\n';
  await eventually(() => two.received().endsWith(event), 5_000, 'the RESP2 event').catch((e) => {
    t.log(JSON.stringify(two.received()));
    throw e;
  });

  const three = await raw(t, node);
  three.send(command('HELLO', '3', 'AUTH', JOB, token));
  await eventually(() => three.received().includes('modules'), 5_000, 'HELLO answered');
  const hello = three.received();
  three.send(command('PSUBSCRIBE', '__keyspace@0__:k*') + command('GET', 'k'));
  await eventually(() => three.received().endsWith('$1\r\nv\r\n'), 5_000, 'GET answered while subscribed');
  t.is(three.received().slice(hello.length), '>3\r\n$10\r\npsubscribe\r\n$17\r\n__keyspace@0__:k*\r\n:1\r\n$1\r\nv\r\n');
  await writer.del('k');
  await eventually(() => three.received().endsWith('$3\r\ndel\r\n'), 5_000, 'the RESP3 push');
  t.true(three.received().includes('>4\r\n$8\r\npmessage\r\n'));
});

test('PSUBSCRIBE refuses patterns Satchel does not publish; a deregistered job ends the subscription with a message', async (t) => {
  const node = await startNode(t);
  const subscriber = redis(t, node);
  for (const pattern of ['news*', '__keyspace@0__:a?*', '__keyspace@0__:a', '__keyevent@0__:set'])
    await t.throwsAsync(subscriber.psubscribe(pattern), { message: /PSUBSCRIBE __keyspace@0__:<prefix>\*/ }, pattern);
  await t.throwsAsync(subscriber.subscribe('news'), { message: /has no channels/ });
  const heard: string[] = [];
  subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => heard.push(`${channel} ${message}`));
  await subscriber.psubscribe('__keyspace@0__:*');
  node.server.jobs.drop(JOB);
  node.server.coordination.dropped(JOB, false, 1);
  await eventually(() => heard.length === 1, 5_000, 'the end message');
  t.deepEqual(heard, ['__satchel__:job deregistered']);
  t.is(node.server.coordination.active, 0);
});

test('a placement change under a WAITFOR: the read stays while the node still owns the key, else it is MOVED to the owner', async (t) => {
  const node = await startNode(t);
  const self = { id: 'resp-test', resp: `${node.resp.host}:${node.resp.port}`, weight: 1 };
  const other = { id: 'other', resp: '127.0.0.1:7999', weight: 1 };
  const announce = (epoch: number, generation: (typeof self)[]) => {
    node.server.jobs.announce(JOB, epoch, 0, { epoch, replicas: 1, generations: [generation] });
    node.server.coordination.epochChanged(JOB, epoch);
  };
  announce(1, [self]);
  const writer = redis(t, node);
  const reader = redis(t, node);
  const stays = reader.call('WAITFOR', 'stays', '10');
  await eventually(() => node.server.coordination.waiters === 1, 5_000, 'the read parked');
  announce(2, [self]);
  await eventually(() => node.server.coordination.waiters === 1, 5_000, 'parked again at the new epoch');
  await writer.set('stays', 'still here');
  t.is(await stays, 'still here');

  const slot = Number(await writer.call('CLUSTER', 'KEYSLOT', 'leaves'));
  const leaves = reader.call('WAITFOR', 'leaves', '10');
  await eventually(() => node.server.coordination.waiters === 1, 5_000, 'the read parked');
  announce(3, [other]);
  await t.throwsAsync(leaves, { message: `MOVED ${slot} 127.0.0.1:7999` });
  t.is(node.server.coordination.active, 0);
});
