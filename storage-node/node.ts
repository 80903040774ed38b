import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ADMIN_SUBJECT, CONTROLLER_SERVICE, ControlClient, SatchelError, signToken, type ControllerMethods } from '../proto/index.ts';
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

/** Starts a storage node's data plane and registers it with the controller (retrying until it answers). */
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
  if (options.controller !== undefined) {
    try {
      await register(options.controller, { id, address, options });
    } catch (error) {
      await server.close();
      throw error;
    }
  }
  return { id, address, server, close: () => server.close() };
}

async function register(controllerAddress: string, node: { id: string; address: string; options: StorageNodeOptions }): Promise<void> {
  const controller = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, controllerAddress, 5_000);
  const request = {
    node: {
      id: node.id,
      tier: node.options.tier,
      address: node.address,
      capacity: node.options.capacity,
      bandwidth: node.options.bandwidth ?? 1e9,
    },
    token: signToken(node.options.secret, ADMIN_SUBJECT),
  };
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await controller.call('RegisterNode', request);
        node.options.logger.info({ controller: controllerAddress }, 'registered with controller');
        return;
      } catch (error) {
        if (!(error instanceof SatchelError) || error.code !== 'UNAVAILABLE' || attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  } finally {
    controller.close();
  }
}
