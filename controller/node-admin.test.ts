import net from 'node:net';
import test from 'ava';
import { FrameDecoder, FrameWriter, Op, Status } from '../proto/index.ts';
import { NodeAdmin } from './node-admin.ts';

/** A node that answers every frame OK, LIMIT_JOB after `holdLimitMs`; counts the connections it was given. */
async function fakeNode(holdLimitMs = 0) {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const writer = new FrameWriter(socket);
    const decoder = new FrameDecoder({
      maxBody: 1 << 20,
      onFrame: (f) => {
        const answer = () => {
          writer.frame(Status.OK, 0, f.id, 0, 0, '', null);
          writer.flush();
        };
        if (f.code === Op.LIMIT_JOB && holdLimitMs > 0) setTimeout(answer, holdLimitMs);
        else answer();
      },
      onOversize: () => socket.destroy(),
      onError: () => socket.destroy(),
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    address,
    open: () => sockets.size,
    accepted: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return check();
};

test('an idle connection to a node is closed, and the next call opens another', async (t) => {
  const node = await fakeNode();
  const admin = new NodeAdmin(new Uint8Array(32));
  t.teardown(async () => {
    admin.close();
    await node.close();
  });
  await admin.limitJob(node.address, 'job-1', true);
  t.is(admin.size, 1);
  admin.closeIdle(60_000); // used just now: kept
  t.is(admin.size, 1);
  t.is(node.open(), 1);
  admin.closeIdle(0);
  t.is(admin.size, 0);
  t.true(await until(() => node.open() === 0), 'the node saw the connection closed');
  await admin.limitJob(node.address, 'job-1', false);
  t.is(node.accepted(), 2);
  t.is(admin.size, 1);
});

test('a connection with a call in flight is not closed as idle', async (t) => {
  const node = await fakeNode(200);
  const admin = new NodeAdmin(new Uint8Array(32));
  t.teardown(async () => {
    admin.close();
    await node.close();
  });
  const limiting = admin.limitJob(node.address, 'job-1', true);
  t.true(await until(() => node.open() === 1));
  admin.closeIdle(0, performance.now() + 60_000);
  t.is(admin.size, 1);
  await t.notThrowsAsync(limiting);
  admin.closeIdle(0, performance.now() + 60_000);
  t.is(admin.size, 0);
});
