/**
 * The ports a LocalCluster's processes keep across restarts: read from the addresses they reported, and waited
 * for while a process that held them is going away.
 */
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** The port of `host:port`. */
export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** The port of an `http://host:port/…` URL; 0 (any free port) when there is none. */
export function portOfUrl(url: string | undefined): number {
  return url === undefined ? 0 : Number(new URL(url).port);
}

/** Resolves once each port can be bound on 127.0.0.1 again, or at the deadline (the start then says why). */
export async function portsFree(ports: number[], deadline: number): Promise<void> {
  for (const port of ports.filter((p) => p !== 0)) {
    while (Date.now() < deadline && !(await canBind(port))) await sleep(50);
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
