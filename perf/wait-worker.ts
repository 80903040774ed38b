/**
 * The waiting side of `bench wait`, in its own process: told over IPC which key to wait for next, it waits
 * (Satchel `waitFor`, or Redis BLPOP on its own connection) and reports when the value arrived, on
 * `process.hrtime` (CLOCK_MONOTONIC: the same clock as the process that wrote the key).
 */
import { Redis } from 'ioredis';
import { type Job, Satchel } from '../client/index.ts';

type Setup = { system: 'satchel'; ticket: string } | { system: 'redis'; host: string; port: number };
type Message = { setup: Setup } | { wait: string } | { stop: true };

let job: Job | null = null;
let redis: Redis | null = null;

const send = (message: unknown) => process.send!(message);

process.on('message', (message: Message) => {
  if ('setup' in message) {
    void setup(message.setup).then(
      () => send({ ready: true }),
      (error: unknown) => send({ error: String(error) }),
    );
  } else if ('wait' in message) {
    const key = message.wait;
    const waiting =
      job !== null ? job.waitFor(key, { timeoutMs: 30_000 }).then(() => undefined) : redis!.blpop(key, 30).then(() => undefined);
    send({ parked: key });
    waiting.then(
      () => send({ arrived: key, at: process.hrtime.bigint().toString() }),
      (error: unknown) => send({ error: String(error) }),
    );
  } else {
    void Promise.all([job?.close(), redis?.quit()]).finally(() => process.exit(0));
  }
});

async function setup(options: Setup): Promise<void> {
  await Promise.all([job?.close(), redis?.quit()]);
  job = null;
  redis = null;
  if (options.system === 'satchel') {
    job = await Satchel.attach(options.ticket);
    // Opens the connection to the node now, so the first measured wait does not pay for it.
    await job.get('warm-up');
  } else {
    redis = new Redis({ host: options.host, port: options.port, protocol: 2 });
    await redis.ping();
  }
}
