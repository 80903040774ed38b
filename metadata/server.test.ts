import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import test from 'ava';
import { pino } from 'pino';
import { Controller } from '../controller/index.ts';
import { SatchelError } from '../proto/index.ts';
import { MetadataServer } from './server.ts';

/** A port nothing listens on (taken, then given back). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A logger whose lines are kept, parsed. */
function capturingLogger(): { logger: pino.Logger; lines: { msg: string; attempt?: number }[] } {
  const lines: { msg: string; attempt?: number }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

test('registering with a controller that is not there is retried, with backoff, until the attempts are used up', async (t) => {
  const port = await freePort();
  const { logger, lines } = capturingLogger();
  const server = new MetadataServer({ secret: randomBytes(32), logger, controller: `127.0.0.1:${port}`, announceAttempts: 3 });
  t.teardown(() => server.close());
  const started = Date.now();
  const error = await t.throwsAsync(server.listen(0, '127.0.0.1'));
  t.true(error instanceof SatchelError && error.code === 'UNAVAILABLE', String(error));
  const retries = lines.filter((l) => l.msg === 'registering with the controller failed; retrying');
  t.deepEqual(
    retries.map((l) => l.attempt),
    [1, 2],
    'three attempts, two waits',
  );
  // Two waits of at least half of 200 and 400 ms.
  t.true(Date.now() - started >= 300, `${Date.now() - started} ms`);
});

test('a controller that comes up while the metadata server retries gets it registered', async (t) => {
  const port = await freePort();
  const secret = randomBytes(32);
  const logger = pino({ level: 'silent' });
  const server = new MetadataServer({ secret, logger, controller: `127.0.0.1:${port}` });
  t.teardown(() => server.close());
  const listening = server.listen(0, '127.0.0.1');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const controller = new Controller({ secret, logger });
  t.teardown(() => controller.close());
  await controller.listen(port, '127.0.0.1');
  const address = await listening;
  t.deepEqual(controller.metadataAddresses, [address]);
});
