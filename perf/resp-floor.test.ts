/**
 * The floor server of `bench resp --floor` answers what redis-benchmark sends, however the stream is cut: if it
 * dropped or garbled a command, its requests/s would be a ceiling that was never a store.
 */
import net from 'node:net';
import test from 'ava';
import { startFloorServer } from './resp-floor.ts';

function command(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Sends `bytes` in pieces of `piece` bytes and collects the replies until `expected` bytes came back. */
async function exchange(port: number, bytes: Buffer, piece: number, expected: number): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const chunks: Buffer[] = [];
  let got = 0;
  const done = new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= expected) resolve();
    }),
  );
  for (let i = 0; i < bytes.length; i += piece) {
    socket.write(bytes.subarray(i, i + piece));
    // Let each piece arrive as its own read.
    if (piece < bytes.length) await new Promise((resolve) => setImmediate(resolve));
  }
  await done;
  socket.destroy();
  return Buffer.concat(chunks).toString('latin1');
}

test('the floor server answers pipelined SET, GET, DBSIZE whole or cut into any pieces', async (t) => {
  const floor = await startFloorServer();
  t.teardown(() => floor.close());
  const value = Buffer.alloc(1024, 'v');
  const other = Buffer.alloc(1024, 'w');
  const stream = Buffer.concat([
    command('SET', 'key:1', value),
    command('set', 'key:1', other), // same length: written in place
    command('GET', 'key:1'),
    command('SET', 'key:2', 'short'),
    command('GET', 'key:2'),
    command('GET', 'missing'),
    command('DBSIZE'),
    command('FLUSHALL'),
  ]);
  const expected = `+OK\r\n+OK\r\n$1024\r\n${other.toString('latin1')}\r\n+OK\r\n$5\r\nshort\r\n$-1\r\n:2\r\n-ERR unknown command 'FLUSHALL'\r\n`;
  for (const piece of [stream.length, 7, 1]) {
    t.is(await exchange(floor.port, stream, piece, expected.length), expected, `pieces of ${piece} bytes`);
  }
});

test('the floor server ends a connection that breaks the protocol', async (t) => {
  const floor = await startFloorServer();
  t.teardown(() => floor.close());
  const reply = await exchange(floor.port, Buffer.from('*1\r\n+PING\r\n'), 64, '-ERR Protocol error\r\n'.length);
  t.is(reply, '-ERR Protocol error\r\n');
});
