/**
 * `bench soak`'s baseline, run beside the client processes for the whole soak: what this machine alone adds to a
 * request and its answer between two Node.js processes over loopback. It speaks the client processes' protocol
 * (soak-protocol.ts), so the driver ticks it like one of them, and runs as one of them does: `lanes` connections
 * to an echo process (this module run with `echo`), one request in flight on each, paced at one client process's
 * share of the rate, each request a small value's size (16 B to 64 KiB, as the soak's); the echo process answers
 * each with 4 bytes. No routing, auth, storage or client library: what is left is scheduling, wake-ups and the
 * socket path, which Satchel's figures cannot beat.
 *
 * Why: on a 2-core VM the machine alone is most of the soak's tail. Measured here (2026-12-06, soak 250 ops/s):
 * a bare ping-pong between two processes one request every 250 ms took p50 0.76 ms where back-to-back ones took
 * 0.06 ms (vCPUs asleep between requests), and the soak's p99 moved between 9 and 58 ms across runs of the same
 * build hours apart. The soak's p99 is read against this one's from the same run.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addSample, answerDriver, emptyStats, type LaneState, Pacer, type SoakWorkerConfig, smallValueSize } from './soak-protocol.ts';

/** The echo process's answer to every request. */
const ACK = Buffer.alloc(4);
/** The largest small value (smallValueSize). */
const SMALL_MAX = 64 * 1024;

/** Answers each length-prefixed request (u32 big-endian length, then that many bytes) with ACK. */
function serveEcho(socket: net.Socket): void {
  const header = Buffer.alloc(4);
  let headerHave = 0;
  let bodyLeft = -1;
  socket.on('data', (chunk: Buffer) => {
    let answers = 0;
    for (let i = 0; i < chunk.length; ) {
      if (bodyLeft < 0) {
        const n = Math.min(4 - headerHave, chunk.length - i);
        chunk.copy(header, headerHave, i, i + n);
        headerHave += n;
        i += n;
        if (headerHave < 4) break;
        bodyLeft = header.readUInt32BE(0);
        headerHave = 0;
      }
      const n = Math.min(bodyLeft, chunk.length - i);
      bodyLeft -= n;
      i += n;
      if (bodyLeft === 0) {
        answers++;
        bodyLeft = -1;
      }
    }
    for (; answers > 0; answers--) socket.write(ACK);
  });
  socket.on('error', () => socket.destroy());
}

export interface EchoServer {
  readonly port: number;
  close(): void;
}

/** The echo side on 127.0.0.1, a port the OS picks. */
export function startEchoServer(): Promise<EchoServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveEcho(socket);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close: () => {
          for (const socket of sockets) socket.destroy();
          server.close();
        },
      }),
    );
  });
}

/** One lane: a connection, one request in flight. */
export class FloorLane {
  private readonly header = Buffer.alloc(4);
  private received = 0;
  private answered: (() => void) | null = null;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      if (this.received >= 4 && this.answered !== null) {
        this.received -= 4;
        const answered = this.answered;
        this.answered = null;
        answered();
      }
    });
  }

  static connect(port: number): Promise<FloorLane> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => resolve(new FloorLane(socket)));
    });
  }

  /** Sends `body` and resolves with the answer. */
  request(body: Buffer): Promise<void> {
    return new Promise((resolve) => {
      this.answered = resolve;
      this.header.writeUInt32BE(body.length, 0);
      this.socket.cork();
      this.socket.write(this.header);
      this.socket.write(body);
      this.socket.uncork();
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

const state: LaneState = { stats: emptyStats(), running: true };
let echo: ChildProcess | null = null;

async function start(config: SoakWorkerConfig): Promise<{ done: Promise<void> }> {
  echo = fork(fileURLToPath(import.meta.url), ['echo'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv });
  const port = await new Promise<number>((resolve, reject) => {
    echo!.once('message', (message: { port: number }) => resolve(message.port));
    echo!.once('exit', (code) => reject(new Error(`the echo process exited (${code})`)));
  });
  const lanes = await Promise.all(Array.from({ length: config.lanes }, () => FloorLane.connect(port)));
  const pool = randomBytes(2 * SMALL_MAX);
  const period = config.opsPerSecond > 0 ? (config.lanes / config.opsPerSecond) * 1000 : 0;
  const runLane = async (lane: FloorLane) => {
    const pacer = new Pacer(period);
    while (state.running) {
      await pacer.wait();
      if (!state.running) break;
      const size = smallValueSize();
      const offset = Math.floor(Math.random() * (pool.length - size));
      const t0 = performance.now();
      await lane.request(pool.subarray(offset, offset + size));
      addSample((state.stats.ops.floor ??= {}), (performance.now() - t0) * 1000);
    }
    lane.close();
  };
  // Wrapped: an async function returning a promise would wait for it.
  return { done: Promise.all(lanes.map(runLane)).then(() => undefined) };
}

const isMain = process.argv[1] !== undefined && resolvePath(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain && process.argv[2] === 'echo') {
  const server = await startEchoServer();
  process.send!({ port: server.port });
  // Ends with its parent.
  process.on('disconnect', () => process.exit(0));
} else if (isMain) {
  answerDriver('baseline', state, start, () => echo?.kill());
}
