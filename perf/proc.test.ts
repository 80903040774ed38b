import dgram from 'node:dgram';
import { open, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { descriptorsAdded, fdTargetsOf } from './proc.ts';

test('what each descriptor is: a file by its path, a TCP socket by its ends and state, a UDP socket by its ends', async (t) => {
  if (process.platform !== 'linux') {
    t.pass('no /proc');
    return;
  }
  const path = join(tmpdir(), `satchel-proc-test-${process.pid}`);
  const file = await open(path, 'w');
  const server = net.createServer((socket) => socket.on('error', () => {}));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const socketPath = join(tmpdir(), `satchel-proc-test-${process.pid}.sock`);
  const unixServer = net.createServer();
  await new Promise<void>((resolve) => unixServer.listen(socketPath, resolve));
  const client = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    udp.close();
    client.destroy();
    server.close();
    unixServer.close();
    await file.close();
    await rm(path, { force: true });
  });
  const targets = (await fdTargetsOf(process.pid))!;
  t.true(targets.includes(path), 'the open file');
  t.true(targets.includes(`tcp 127.0.0.1:${port} ⇄ 0.0.0.0:0 LISTEN`), targets.join('\n'));
  t.true(targets.includes(`tcp 127.0.0.1:${client.localPort} ⇄ 127.0.0.1:${port} ESTABLISHED`), 'the client end');
  t.true(targets.includes(`unix socket ${socketPath}`), 'a bound unix socket');
  t.true(targets.includes(`udp 127.0.0.1:${udp.address().port} ⇄ 0.0.0.0:0`), 'a bound UDP socket');
  t.is(await fdTargetsOf(2 ** 22 + 12345), null, 'no such process: null, not a throw');
});

test('descriptors added: counted with repeats, most first, those closed ignored', (t) => {
  const before = ['/data/LOG', 'tcp a ⇄ b ESTABLISHED', 'pipe:[1]'];
  const after = ['/data/LOG', '/data/LOG', 'pipe:[1]', 'socket:[9]', 'socket:[9]', 'socket:[9]', '/data/000005.log'];
  t.deepEqual(descriptorsAdded(before, after), ['socket:[9] ×3', '/data/000005.log', '/data/LOG']);
  t.deepEqual(descriptorsAdded(after, before), ['tcp a ⇄ b ESTABLISHED']);
  t.deepEqual(descriptorsAdded(before, before), []);
});
