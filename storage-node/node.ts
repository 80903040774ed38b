import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { SatchelError } from '../proto/index.ts';
import { ControllerLink } from './controller-link.ts';
import { DramEngine } from './dram-engine.ts';
import { StorageServer } from './server.ts';

export interface StorageNodeOptions {
  tier: 'dram';
  /** Bytes the node may hold. */
  capacity: number;
  /** Bytes/s the node declares to the controller. */
  bandwidth?: number;
  secret: Uint8Array;
  logger: Logger;
  id?: string;
  host?: string;
  port?: number;
  /** The controller to register with (host:port). */
  controller?: string;
  maxValueBytes?: number;
}

export interface RunningStorageNode {
  id: string;
  address: string;
  server: StorageServer;
  close(): Promise<void>;
}

/** Starts a storage node's data plane, registers it with the controller and reports to it every second. */
export async function startStorageNode(options: StorageNodeOptions): Promise<RunningStorageNode> {
  if (options.tier !== 'dram') throw new SatchelError('BAD_REQUEST', `tier ${options.tier} is not available in this version`);
  if (!(options.capacity > 0)) throw new SatchelError('BAD_REQUEST', 'capacity must be a positive number of bytes');
  const id = options.id ?? `${options.tier}-${randomBytes(3).toString('hex')}`;
  const server = new StorageServer({
    id,
    engine: new DramEngine(options.capacity),
    secret: options.secret,
    logger: options.logger,
    maxValueBytes: options.maxValueBytes,
  });
  const address = await server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  options.logger.info({ node: id, tier: options.tier, address, capacity: options.capacity }, 'storage node listening');
  let link: ControllerLink | null = null;
  if (options.controller !== undefined) {
    link = new ControllerLink({
      controller: options.controller,
      secret: options.secret,
      logger: options.logger,
      node: { id, tier: options.tier, address, capacity: options.capacity, bandwidth: options.bandwidth ?? 1e9 },
    });
    try {
      await link.register();
    } catch (error) {
      link.close();
      await server.close();
      throw error;
    }
    link.startReporting(server);
  }
  return {
    id,
    address,
    server,
    close: async () => {
      link?.close();
      await server.close();
    },
  };
}
