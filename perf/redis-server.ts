import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { SatchelError } from '../proto/index.ts';

/** A throwaway redis-server for the baseline: no persistence, loopback only, a free port; `extra` arguments after. */
export class RedisProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(extra: string[] = []): Promise<RedisProcess> {
    const port = await freePort();
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        '--maxmemory',
        '0',
        ...extra,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const spawned = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (error) => resolve(error));
    });
    if (spawned !== null) {
      throw new SatchelError(
        'UNAVAILABLE',
        `cannot start redis-server (${spawned.message}); install it (apt-get install redis-server) or pass --redis HOST:PORT`,
      );
    }
    const redis = new RedisProcess(child, '127.0.0.1', port);
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(port))) {
      if (Date.now() > deadline || child.exitCode !== null) {
        await redis.stop();
        throw new SatchelError('UNAVAILABLE', 'redis-server did not start listening');
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return redis;
  }

  /** The redis-server process (for its memory and CPU). */
  get pid(): number {
    return this.child.pid!;
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGTERM');
    });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
