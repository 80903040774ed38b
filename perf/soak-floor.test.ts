/**
 * The soak's baseline (soak-floor.ts) must answer every request once, however the stream is cut, or its round
 * trips would be the wrong ones to read Satchel's against. As a process, ticked by the driver, it is covered by
 * test/bench.test.ts (bench soak: its figures in every interval).
 */
import net from 'node:net';
import test from 'ava';
import { FloorLane, startEchoServer } from './soak-floor.ts';

function frame(size: number): Buffer {
  const bytes = Buffer.alloc(4 + size, 7);
  bytes.writeUInt32BE(size, 0);
  return bytes;
}

test('the echo side answers each request with 4 bytes, requests cut anywhere and several in one write', async (t) => {
  const echo = await startEchoServer();
  t.teardown(() => echo.close());
  const socket = net.connect(echo.port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
  });
  const stream = Buffer.concat([frame(0), frame(16), frame(70_000), frame(3)]);
  // Pieces of 5 bytes: headers and bodies split across reads.
  for (let i = 0; i < stream.length; i += 5000) {
    for (let j = i; j < Math.min(i + 5000, stream.length); j += 5) socket.write(stream.subarray(j, Math.min(j + 5, stream.length)));
    await new Promise((resolve) => setImmediate(resolve));
  }
  for (let waited = 0; received < 16 && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(received, 16, 'four answers, no more');
});

test('a lane waits for its answer', async (t) => {
  const echo = await startEchoServer();
  t.teardown(() => echo.close());
  const lane = await FloorLane.connect(echo.port);
  t.teardown(() => lane.close());
  for (const size of [1, 1024, 65_536]) await lane.request(Buffer.alloc(size));
  t.pass();
});
