/**
 * Connections to one storage node for the node's own tests, closed when the test ends: the client's pipelined
 * NodeConnection with a given token, or a raw socket (raw-client.ts). Not a test file itself.
 */
import type { ExecutionContext } from 'ava';
import { NodeConnection } from '../../proto/index.ts';
import { RawClient } from './raw-client.ts';

export function connect(t: ExecutionContext, address: string, token: string, timeoutMs = 5_000): NodeConnection {
  const connection = new NodeConnection(address, token, { timeoutMs });
  t.teardown(() => connection.destroy());
  return connection;
}

export async function rawConnect(t: ExecutionContext, address: string): Promise<RawClient> {
  const raw = await RawClient.connect(address);
  t.teardown(() => raw.destroy());
  return raw;
}
