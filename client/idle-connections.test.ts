import test from 'ava';
import { decodeTicket, Op } from '../proto/index.ts';
import { startFakeCluster } from './fake-node.suite.ts';
import { closeIdleOf } from './idle-connections.ts';
import { Satchel } from './index.ts';

const hellos = (node: { requests: { code: number }[] }) => node.requests.filter((r) => r.code === Op.HELLO).length;
/** Sockets that keep this process alive (process.getActiveResourcesInfo names each ref'd handle). */
// Serial tests: the count is the whole process's.
const heldSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

test.serial("a closed handle's connection serves the next handle of the same ticket, without keeping the process alive", async (t) => {
  const cluster = await startFakeCluster(t, { nodes: 1 });
  const node = cluster.nodes[0]!;
  const first = await Satchel.attach(cluster.ticket);
  await first.put('k', 'v');
  const held = heldSockets(); // the client's socket and the fake node's, among others
  await first.close();
  t.is(node.sockets.size, 1, 'kept open');
  t.is(heldSockets(), held - 1, "the client's kept socket holds nothing");

  const second = await Satchel.attach(cluster.ticket);
  t.is((await second.get('k'))?.toString(), 'v');
  t.is(hellos(node), 1, 'one connection, one HELLO');
  t.is(heldSockets(), held, 'in use again, it holds the process as any connection does');
  await second.close();
  closeIdleOf(decodeTicket(cluster.ticket).token);
});

test.serial(
  'handles open together each get a connection, and later handles take the kept ones; other timeouts get their own',
  async (t) => {
    const cluster = await startFakeCluster(t, { nodes: 1 });
    const node = cluster.nodes[0]!;
    const together = await Promise.all([Satchel.attach(cluster.ticket), Satchel.attach(cluster.ticket)]);
    await Promise.all(together.map((job, i) => job.put(`k${i}`, 'v')));
    t.is(hellos(node), 2);
    await Promise.all(together.map((job) => job.close()));
    const later = await Promise.all([Satchel.attach(cluster.ticket), Satchel.attach(cluster.ticket)]);
    t.deepEqual(
      (await Promise.all(later.map((job, i) => job.get(`k${i}`)))).map((v) => v?.toString()),
      ['v', 'v'],
    );
    t.is(hellos(node), 2, 'both kept connections were taken');
    await Promise.all(later.map((job) => job.close()));

    const patient = await Satchel.attach(cluster.ticket, { timeoutMs: 12_345 });
    await patient.get('k0');
    t.is(hellos(node), 3, 'a handle with another timeout opens its own');
    await patient.close();
    closeIdleOf(decodeTicket(cluster.ticket).token);
  },
);

test.serial("a kept connection its node closed is opened again by the next handle's call; closeIdleOf closes the kept ones", async (t) => {
  const cluster = await startFakeCluster(t, { nodes: 1 });
  const node = cluster.nodes[0]!;
  const first = await Satchel.attach(cluster.ticket);
  await first.put('k', 'v');
  await first.close();
  for (const socket of node.sockets) socket.destroy();
  // The client sees the close within a turn or two of its event loop (a restarted node's, a process later).
  await new Promise((resolve) => setTimeout(resolve, 100));
  const second = await Satchel.attach(cluster.ticket);
  t.is((await second.get('k'))?.toString(), 'v');
  t.is(hellos(node), 2, 'a new connection, with its HELLO');
  await second.close();
  t.is(node.sockets.size, 1);
  closeIdleOf(decodeTicket(cluster.ticket).token);
  await new Promise<void>((resolve) => {
    const check = () => (node.sockets.size === 0 ? resolve() : setTimeout(check, 10));
    check();
  });
  t.is(node.sockets.size, 0, 'closed');
});
