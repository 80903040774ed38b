/**
 * One system's client for `bench micro`, in a process of its own (forked by micro.ts): Satchel's from a job's
 * ticket, or ioredis. Each system gets its own process because two clients in one heap measure each other: after
 * ioredis had run at 64 in flight, Satchel's client in the same process saw its young objects promoted 20× as
 * often (139 against 6.5 MB in 4 s), a full collection every ~150 ms, and 1 KiB GET p99 4.2 ms against 1.2 ms
 * in a process that ran only Satchel (perf/RESULTS.md). The driver answers one request at a time, in order.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Satchel, SatchelError } from '../client/index.ts';
import { LatencyRecorder, type LatencySummary } from './stats.ts';

export type MicroTarget = { kind: 'satchel'; ticket: string } | { kind: 'redis'; host: string; port: number };

export type ToMicroDriver =
  | { id: number; open: MicroTarget }
  /** Writes a value of `size` under each of the size's keys (GETs then read them). */
  | { id: number; fill: { size: number } }
  /** `concurrency` loops, each with one call in flight, for `seconds`; latencies kept only when `record`. */
  | { id: number; drive: { op: 'get' | 'put'; size: number; concurrency: number; seconds: number; record: boolean } }
  /** The latencies recorded since the last summary, and a fresh recorder. */
  | { id: number; summary: true };

export type FromMicroDriver =
  | { id: number; ok: true }
  | { id: number; count: number; seconds: number }
  | { id: number; latencies: LatencySummary }
  | { id: number; error: { code: SatchelError['code']; message: string } };

/** Distinct keys per size: operations rotate over them so no single entry is hot in a cache line. */
const KEYS_PER_SIZE = 64;

function keyOf(size: number, i: number): string {
  return `bench/${size}/${i}`;
}

interface Store {
  get(key: string): Promise<unknown>;
  put(key: string, value: Buffer): Promise<unknown>;
  close(): Promise<void>;
}

async function open(target: MicroTarget): Promise<Store> {
  if (target.kind === 'satchel') {
    const job = await Satchel.attach(target.ticket);
    return { get: (k) => job.get(k), put: (k, v) => job.put(k, v), close: () => job.close() };
  }
  const redis = new Redis({ host: target.host, port: target.port, protocol: 2, lazyConnect: true, maxRetriesPerRequest: 1 });
  // Kept for the message: connect() itself rejects with only "Connection is closed".
  let lastError: Error | null = null;
  redis.on('error', (error: Error) => {
    lastError = error;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    const why = (lastError as Error | null)?.message ?? (error as Error).message;
    throw new SatchelError('UNAVAILABLE', `cannot reach Redis at ${target.host}:${target.port}: ${why}`);
  }
  return {
    get: (k) => redis.getBuffer(k),
    put: (k, v) => redis.set(k, v),
    close: async () => {
      redis.disconnect();
    },
  };
}

/** `concurrency` loops, each with one call in flight, until `seconds` pass; returns the calls completed. */
async function drive(
  once: (i: number) => Promise<unknown>,
  concurrency: number,
  seconds: number,
  latencies: LatencyRecorder | null,
): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  let count = 0;
  let next = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await once(next++);
      latencies?.add((performance.now() - t0) * 1000);
      count++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return count;
}

function serve(): void {
  let store: Store | null = null;
  const values = new Map<number, Buffer>();
  let latencies = new LatencyRecorder();
  const handle = async (message: ToMicroDriver): Promise<FromMicroDriver> => {
    if ('open' in message) {
      store = await open(message.open);
      return { id: message.id, ok: true };
    }
    if (store === null) throw new SatchelError('BAD_REQUEST', 'bench micro driver: not open');
    const s = store;
    if ('fill' in message) {
      const value = randomBytes(message.fill.size);
      values.set(message.fill.size, value);
      for (let i = 0; i < KEYS_PER_SIZE; i++) await s.put(keyOf(message.fill.size, i), value);
      return { id: message.id, ok: true };
    }
    if ('drive' in message) {
      const { op, size, concurrency, seconds, record } = message.drive;
      const value = values.get(size);
      if (value === undefined) throw new SatchelError('BAD_REQUEST', `bench micro driver: no values of ${size} bytes written`);
      const once =
        op === 'get' ? (i: number) => s.get(keyOf(size, i % KEYS_PER_SIZE)) : (i: number) => s.put(keyOf(size, i % KEYS_PER_SIZE), value);
      const started = performance.now();
      const count = await drive(once, concurrency, seconds, record ? latencies : null);
      return { id: message.id, count, seconds: (performance.now() - started) / 1000 };
    }
    const summary = latencies.summary();
    latencies = new LatencyRecorder();
    return { id: message.id, latencies: summary };
  };
  // One at a time: the parent never has two requests out to one driver, and a drive must not share the process.
  let queue = Promise.resolve();
  process.on('message', (message: ToMicroDriver) => {
    queue = queue.then(() =>
      handle(message).then(
        (answer) => {
          process.send!(answer);
        },
        (error: unknown) => {
          const code = error instanceof SatchelError ? error.code : 'UNAVAILABLE';
          process.send!({ id: message.id, error: { code, message: error instanceof Error ? error.message : String(error) } });
        },
      ),
    );
  });
  // The parent gone (finished, killed, crashed): nobody is left to drive this.
  process.on('disconnect', () => {
    void (store as Store | null)?.close().catch(() => {});
    process.exit(0);
  });
}

serve();
