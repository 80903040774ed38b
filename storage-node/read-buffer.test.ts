import net from 'node:net';
import test from 'ava';
import { readIntoSharedBuffer } from './read-buffer.ts';

/** A server whose accepted sockets read into the shared buffer; each read's bytes are copied into `got`. */
async function serve(t: { teardown(fn: () => void): void }) {
  const got = new Map<net.Socket, Buffer[]>();
  const views: Buffer[] = [];
  const accepted: net.Socket[] = [];
  const waiters: (() => void)[] = [];
  const server = net.createServer((socket) => {
    got.set(socket, []);
    accepted.push(socket);
    const shared = readIntoSharedBuffer(socket, (chunk) => {
      views.push(chunk);
      got.get(socket)!.push(Buffer.from(chunk));
      for (const wake of waiters.splice(0)) wake();
      return undefined;
    });
    if (!shared) throw new Error('readIntoSharedBuffer refused a plain accepted socket');
    socket.on('data', () => {
      throw new Error("a socket reading into the shared buffer emitted 'data'");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const clients: net.Socket[] = [];
  t.teardown(() => {
    for (const c of clients) c.destroy();
    for (const s of accepted) s.destroy();
    server.close();
  });
  const until = async (ok: () => boolean) => {
    const deadline = Date.now() + 5_000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
  };
  const connect = async () => {
    const client = net.connect({ port, host: '127.0.0.1', noDelay: true });
    clients.push(client);
    await new Promise((resolve) => client.once('connect', resolve));
    await until(() => accepted.length >= clients.length);
    return { client, socket: accepted[clients.length - 1]! };
  };
  const bytesOf = (socket: net.Socket) => Buffer.concat(got.get(socket)!);
  return { connect, bytesOf, until, views };
}

test('reads of several accepted sockets land in one buffer, each delivered intact to its own socket', async (t) => {
  const { connect, bytesOf, until, views } = await serve(t);
  const a = await connect();
  const b = await connect();
  const sentA: Buffer[] = [];
  const sentB: Buffer[] = [];
  for (let i = 0; i < 50; i++) {
    const x = Buffer.alloc(100 + i, 0x41 + (i % 26));
    const y = Buffer.alloc(3000 + i, 0x61 + (i % 26));
    sentA.push(x);
    sentB.push(y);
    a.client.write(x);
    b.client.write(y);
    if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  // One write larger than a read: it arrives over several reads of the same buffer.
  const big = Buffer.alloc(300_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  sentA.push(big);
  a.client.write(big);
  const wantA = Buffer.concat(sentA);
  const wantB = Buffer.concat(sentB);
  await until(() => bytesOf(a.socket).length >= wantA.length && bytesOf(b.socket).length >= wantB.length);
  t.true(bytesOf(a.socket).equals(wantA));
  t.true(bytesOf(b.socket).equals(wantB));
  // Every read, of either socket, was a view of the same memory: nothing allocated per read.
  t.true(views.length > 2);
  t.true(views.every((view) => view.buffer === views[0]!.buffer && view.byteOffset === views[0]!.byteOffset));
});

test('pause() stops the reads into the shared buffer and resume() starts them again; end arrives', async (t) => {
  const { connect, bytesOf, until } = await serve(t);
  const { client, socket } = await connect();
  client.write('first');
  await until(() => bytesOf(socket).toString() === 'first');
  socket.pause();
  client.write('second');
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.is(bytesOf(socket).toString(), 'first', 'a paused socket read nothing');
  socket.resume();
  await until(() => bytesOf(socket).toString() === 'firstsecond');
  const ended = new Promise((resolve) => socket.once('end', resolve));
  client.end();
  await ended;
  t.pass();
});

test('a socket that is not a plain accepted TCP socket is left to its data events', (t) => {
  const unconnected = new net.Socket();
  t.false(readIntoSharedBuffer(unconnected, () => undefined));
  unconnected.destroy();
});
