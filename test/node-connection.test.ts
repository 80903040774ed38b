import { randomBytes } from 'node:crypto';
import net from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { type FakeNode, type FakeRequest, startFakeNode } from '../client/fake-node.suite.ts';
import {
  FrameWriter,
  hostOf,
  NodeConnection,
  type NodeConnectionOptions,
  Op,
  portOf,
  type SatchelError,
  Status,
  signToken,
} from '../proto/index.ts';
import { DramEngine } from '../storage-node/dram-engine.ts';
import { StorageServer } from '../storage-node/server.ts';
import { rejection } from './helpers/assert.ts';
import { eventually, freePort } from './helpers/raw-client.ts';

const TOKEN = 'v1.job-a.fake';

async function fake(t: ExecutionContext, onRequest?: (r: FakeRequest) => void): Promise<FakeNode> {
  const node = await startFakeNode(onRequest);
  t.teardown(() => node.close());
  return node;
}

function connect(t: ExecutionContext, address: string, options: NodeConnectionOptions = {}, token = TOKEN): NodeConnection {
  const connection = new NodeConnection(address, token, options);
  t.teardown(() => connection.destroy());
  return connection;
}

test('HELLO with the token goes first, then the request; the reply comes back', async (t) => {
  const node = await fake(t, (r) => r.answer(Status.OK, Buffer.from(`echo:${r.key}`), { arg: 42, flags: 3, epoch: 9 }));
  const c = connect(t, node.address);
  const reply = await c.request({ op: Op.GET, epoch: 7, arg: 5, key: 'the-key' });
  t.is(reply.status, Status.OK);
  t.is(reply.body.toString(), 'echo:the-key');
  t.is(reply.arg, 42);
  t.is(reply.flags, 3);
  t.is(reply.epoch, 9);
  t.deepEqual(
    node.requests.map((r) => [r.code, r.key]),
    [
      [Op.HELLO, TOKEN],
      [Op.GET, 'the-key'],
    ],
  );
  t.is(node.requests[1]!.epoch, 7, 'the epoch travels in the frame');
  t.is(node.requests[1]!.arg, 5);
});

test('replies are matched by id, in any order', async (t) => {
  const held: FakeRequest[] = [];
  const node = await fake(t, (r) => held.push(r));
  const c = connect(t, node.address);
  const calls = Array.from({ length: 50 }, (_, i) => c.request({ op: Op.GET, key: `k${i}` }));
  await node.received(50);
  for (const r of [...held].reverse()) r.answer(Status.OK, Buffer.from(r.key));
  const replies = await Promise.all(calls);
  t.deepEqual(
    replies.map((r) => r.body.toString()),
    Array.from({ length: 50 }, (_, i) => `k${i}`),
  );
});

test('a node that never answers → TIMEOUT', async (t) => {
  const node = await fake(t); // answers HELLO, nothing else
  const c = connect(t, node.address, { timeoutMs: 200 });
  const error = await rejection(t, c.request({ op: Op.GET, key: 'k' }));
  t.is(error.code, 'TIMEOUT');
  t.is(c.inflight, 0, 'the timed-out request is forgotten');
});

test('a raw TCP server that accepts and never answers anything (not even HELLO) → TIMEOUT', async (t) => {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const c = connect(t, `127.0.0.1:${(server.address() as net.AddressInfo).port}`, { timeoutMs: 200 });
  const results = await Promise.allSettled([
    c.request({ op: Op.PUT, key: 'a', value: Buffer.from('x') }),
    c.request({ op: Op.GET, key: 'b' }),
  ]);
  for (const r of results) {
    t.is(r.status, 'rejected');
    t.is(((r as PromiseRejectedResult).reason as SatchelError).code, 'TIMEOUT');
  }
});

test('a late answer after a TIMEOUT is ignored and the connection keeps working', async (t) => {
  let first: FakeRequest | null = null;
  const node = await fake(t, (r) => {
    if (r.key === 'slow') first = r;
    else r.answer(Status.OK, Buffer.from('fast'));
  });
  const c = connect(t, node.address, { timeoutMs: 200 });
  const error = await rejection(t, c.request({ op: Op.GET, key: 'slow' }));
  t.is(error.code, 'TIMEOUT');
  first!.answer(Status.OK, Buffer.from('too late'));
  const reply = await c.request({ op: Op.GET, key: 'next' });
  t.is(reply.body.toString(), 'fast');
});

/** One answer frame's bytes, as a node writes it (for tests that send it in pieces). */
function answerBytes(id: number, status: number, body: Buffer): Buffer {
  const chunks: Uint8Array[] = [];
  const writer = new FrameWriter({ write: (chunk) => chunks.push(chunk) });
  writer.frame(status, 0, id, 0, 0, '', body);
  writer.flush();
  return Buffer.concat(chunks);
}

test('`into`: an OK answer of its length is read into it (the body a view of it); another length or status gets its own buffer', async (t) => {
  const size = 600 * 1024; // past one read of the client's socket: assembled, not a view of the read buffer
  const value = randomBytes(size);
  const node = await fake(t, (r) => {
    if (r.key === 'missing') r.answer(Status.NOT_FOUND, Buffer.alloc(size, 1));
    else r.answer(Status.OK, value);
  });
  const c = connect(t, node.address);
  const into = Buffer.alloc(size + 10).subarray(5, 5 + size);
  const reply = await c.request({ op: Op.GET, key: 'big', into });
  t.true(reply.body.equals(value));
  t.true(reply.body.buffer === into.buffer && reply.body.byteOffset === into.byteOffset, 'the body is `into` itself');
  t.true(into.equals(value));

  const other = Buffer.alloc(size - 1);
  const elsewhere = await c.request({ op: Op.GET, key: 'big', into: other });
  t.true(elsewhere.body.equals(value));
  t.true(other.equals(Buffer.alloc(size - 1)), 'a body of another length leaves `into` untouched');
  const notFound = await c.request({ op: Op.GET, key: 'missing', into: Buffer.alloc(size) });
  t.is(notFound.status, Status.NOT_FOUND);
  t.not(notFound.body.buffer, into.buffer);
});

test('`into`: a request that times out while its answer is being read gets none of the rest of it; the connection keeps working', async (t) => {
  const size = 600 * 1024;
  let slow: FakeRequest | null = null;
  const node = await fake(t, (r) => {
    if (r.key === 'slow') slow = r;
    else r.answer(Status.OK, Buffer.from('next'));
  });
  const c = connect(t, node.address, { timeoutMs: 300 });
  const into = Buffer.alloc(size);
  const answered = c.request({ op: Op.GET, key: 'slow', into });
  await node.received(1);
  const frame = answerBytes(slow!.id, Status.OK, Buffer.alloc(size, 0xab));
  const half = 24 + size / 2;
  slow!.socket.write(frame.subarray(0, half));
  t.is((await rejection(t, answered)).code, 'TIMEOUT');
  slow!.socket.write(frame.subarray(half));
  // The next answer comes after the rest of the late one on the same socket: once it is here, all of it was read.
  t.is((await c.request({ op: Op.GET, key: 'after' })).body.toString(), 'next');
  t.true(into.subarray(half - 24).equals(Buffer.alloc(size / 2)), 'nothing past the timeout landed in `into`');
});

test('the node goes away with requests in flight → UNAVAILABLE, no hang; the next call reconnects', async (t) => {
  let drop = true;
  const node = await fake(t, (r) => {
    if (drop) return; // hold
    r.answer(Status.OK, Buffer.from('back'));
  });
  const c = connect(t, node.address, { timeoutMs: 30_000 });
  const calls = Array.from({ length: 20 }, (_, i) => c.request({ op: Op.GET, key: `k${i}` }));
  await node.received(20);
  for (const s of node.sockets) s.destroy();
  const results = await Promise.allSettled(calls);
  t.true(results.every((r) => r.status === 'rejected' && (r.reason as SatchelError).code === 'UNAVAILABLE'));
  t.is(c.inflight, 0);
  drop = false;
  // Reconnects (after a short backoff: calls in the meantime fail fast with UNAVAILABLE).
  let reply = '' as string;
  await eventually(async () => {
    try {
      reply = (await c.request({ op: Op.GET, key: 'again' })).body.toString();
      return true;
    } catch (error) {
      t.is((error as SatchelError).code, 'UNAVAILABLE');
      return false;
    }
  });
  t.is(reply, 'back');
});

test('a real node closed while requests are in flight → UNAVAILABLE', async (t) => {
  const secret = randomBytes(32);
  const server = new StorageServer({ id: 'n', engine: new DramEngine(1 << 30), secret, logger: pino({ level: 'silent' }) });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  const c = connect(t, address, { timeoutMs: 30_000 }, signToken(secret, 'job-a'));
  t.is((await c.request({ op: Op.PUT, key: 'k', value: Buffer.alloc(1 << 20) })).status, Status.OK);
  const calls = Array.from({ length: 200 }, () => c.request({ op: Op.GET, key: 'k' }));
  await server.close();
  const results = await Promise.allSettled(calls);
  // Some may have been answered before the close; every other one fails with UNAVAILABLE, none hangs.
  for (const r of results) {
    if (r.status === 'fulfilled') t.is(r.value.status, Status.OK);
    else t.is((r.reason as SatchelError).code, 'UNAVAILABLE');
  }
  t.is(c.inflight, 0);
});

test('connection refused → UNAVAILABLE at once, not a TIMEOUT', async (t) => {
  const port = await freePort();
  const c = connect(t, `127.0.0.1:${port}`, { timeoutMs: 20_000 });
  const error = await rejection(t, c.request({ op: Op.GET, key: 'k' }));
  t.is(error.code, 'UNAVAILABLE');
  // Right after a failure the connection backs off instead of hammering the node: still UNAVAILABLE.
  t.is((await rejection(t, c.request({ op: Op.GET, key: 'k' }))).code, 'UNAVAILABLE');
});

test('close() waits for calls in flight, then refuses new ones with CLOSED', async (t) => {
  const held: FakeRequest[] = [];
  const node = await fake(t, (r) => held.push(r));
  const c = connect(t, node.address);
  const events: string[] = [];
  const calls = Array.from({ length: 5 }, (_, i) =>
    c.request({ op: Op.GET, key: `k${i}` }).then((r) => {
      events.push(`reply ${r.body.toString()}`);
    }),
  );
  await node.received(5);
  const closing = c.close().then(() => events.push('closed'));
  t.is((await rejection(t, c.request({ op: Op.GET, key: 'late' }))).code, 'CLOSED');
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(events, [], 'close() has not finished while calls are in flight');
  for (const r of held) r.answer(Status.OK, Buffer.from(r.key));
  await Promise.all([...calls, closing]);
  t.deepEqual(events, ['reply k0', 'reply k1', 'reply k2', 'reply k3', 'reply k4', 'closed']);
  await c.close(); // idempotent
});

test('close() with nothing in flight returns at once; destroy() fails calls in flight with CLOSED', async (t) => {
  const node = await fake(t);
  const idle = connect(t, node.address);
  await idle.close();
  const c = connect(t, node.address);
  const call = c.request({ op: Op.GET, key: 'k' });
  await node.received(1);
  c.destroy();
  t.is((await rejection(t, call)).code, 'CLOSED');
});

test('flow control: requests wait in the client while too many value bytes are in flight', async (t) => {
  const held: FakeRequest[] = [];
  const node = await fake(t, (r) => held.push(r));
  const c = connect(t, node.address, { maxInflightBytes: 100 * 1024 });
  const value = Buffer.alloc(64 * 1024, 1);
  const calls = Array.from({ length: 4 }, (_, i) => c.request({ op: Op.PUT, key: `k${i}`, value }));
  await node.received(1);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(held.length, 1, 'only one 64 KiB PUT fits in a 100 KiB window');
  for (let answered = 0; answered < 4; answered++) {
    await node.received(answered + 1);
    t.is(held.length, answered + 1);
    held[answered]!.answer(Status.OK);
  }
  const replies = await Promise.all(calls);
  t.true(replies.every((r) => r.status === Status.OK));
  t.deepEqual(
    held.map((r) => r.key),
    ['k0', 'k1', 'k2', 'k3'],
    'in order',
  );
});

test('a request waiting for the window times out too', async (t) => {
  const node = await fake(t);
  const c = connect(t, node.address, { maxInflightBytes: 1024, timeoutMs: 200 });
  const results = await Promise.allSettled([
    c.request({ op: Op.PUT, key: 'a', value: Buffer.alloc(1000) }),
    c.request({ op: Op.PUT, key: 'b', value: Buffer.alloc(1000) }),
  ]);
  t.deepEqual(
    results.map((r) => r.status === 'rejected' && (r.reason as SatchelError).code),
    ['TIMEOUT', 'TIMEOUT'],
  );
  t.is(node.requests.filter((r) => r.code === Op.PUT).length, 1, 'the second never left the client');
});

test('a reply over maxResponseBytes → TOO_LARGE for that call; the next call works', async (t) => {
  const node = await fake(t, (r) => r.answer(Status.OK, r.key === 'big' ? Buffer.alloc(10_000) : Buffer.from('ok')));
  const c = connect(t, node.address, { maxResponseBytes: 4096 });
  t.is((await rejection(t, c.request({ op: Op.GET, key: 'big' }))).code, 'TOO_LARGE');
  t.is((await c.request({ op: Op.GET, key: 'small' })).body.toString(), 'ok');
});

test('a refused HELLO fails the calls behind it with the node error', async (t) => {
  // startFakeNode always accepts HELLO: this one refuses it.
  const refusing = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      const body = Buffer.from('invalid token');
      const header = Buffer.alloc(24);
      header.writeUInt32BE(body.length, 0);
      header[4] = 1;
      header[5] = Status.UNAUTHORIZED;
      socket.end(Buffer.concat([header, body]));
    });
  });
  await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
  t.teardown(() => refusing.close());
  const c = connect(t, `127.0.0.1:${(refusing.address() as net.AddressInfo).port}`);
  const error = await rejection(t, c.request({ op: Op.GET, key: 'k' }));
  t.is(error.code, 'UNAUTHORIZED');
  t.is(error.message, 'invalid token');
});

test('hostOf / portOf parse host:port, including bracketed IPv6; a bad address is BAD_REQUEST', (t) => {
  t.is(hostOf('127.0.0.1:7070'), '127.0.0.1');
  t.is(portOf('127.0.0.1:7070'), 7070);
  t.is(hostOf('[::1]:80'), '::1');
  t.is(portOf('[::1]:80'), 80);
  for (const bad of ['nohost', 'h:notaport', 'h:70000', 'h:-1']) {
    const error = t.throws(() => portOf(bad));
    t.is((error as SatchelError).code, 'BAD_REQUEST', bad);
  }
});

test('a key past the frame limit is refused in the client; the connection and other calls are untouched', async (t) => {
  const node = await fake(t, (r) => r.answer(Status.OK, Buffer.from(r.key)));
  const c = connect(t, node.address);
  const ok = c.request({ op: Op.GET, key: 'fine' });
  const error = await rejection(t, c.request({ op: Op.GET, key: 'é'.repeat(513) })); // 1026 UTF-8 bytes
  t.is(error.code, 'BAD_REQUEST');
  t.is((await ok).body.toString(), 'fine');
  t.is((await c.request({ op: Op.GET, key: 'k'.repeat(1024) })).body.length, 1024, 'exactly the limit still goes');
  t.false(
    node.requests.some((r) => r.key.startsWith('é')),
    'nothing malformed reached the node',
  );
});
