/**
 * A whole cluster inside the test process (controller, metadata server, DRAM nodes), for tests that need to see a
 * node's engine directly. Same wire protocols as `satchel up`; only the process boundaries are missing.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Controller } from '../../controller/index.ts';
import { MetadataServer } from '../../metadata/index.ts';
import { ADMIN_SUBJECT, signToken } from '../../proto/index.ts';
import { startStorageNode, type RunningStorageNode } from '../../storage-node/index.ts';

export interface InProcessCluster {
  secret: Buffer;
  adminToken: string;
  controller: Controller;
  controllerAddress: string;
  metadata: MetadataServer;
  nodes: RunningStorageNode[];
  /** Bytes held over every node. */
  used(): number;
  close(): Promise<void>;
}

export async function startInProcessCluster(
  options: {
    dram?: number;
    capacity?: number;
    maxValueBytes?: number;
    nodeTimeoutMs?: number;
    tokenTtlMs?: number;
    leaseMs?: number;
    jobQuotaBytes?: number;
    maxConnectionsPerJob?: number;
  } = {},
): Promise<InProcessCluster> {
  const logger = pino({ level: 'silent' });
  const secret = randomBytes(32);
  const controller = new Controller({
    secret,
    logger,
    nodeTimeoutMs: options.nodeTimeoutMs,
    tokenTtlMs: options.tokenTtlMs,
    leaseMs: options.leaseMs,
    jobQuotaBytes: options.jobQuotaBytes,
  });
  const controllerAddress = await controller.listen(0, '127.0.0.1');
  const metadata = new MetadataServer({ secret, logger, controller: controllerAddress });
  await metadata.listen(0, '127.0.0.1');
  const nodes: RunningStorageNode[] = [];
  for (let i = 0; i < (options.dram ?? 1); i++) {
    nodes.push(
      await startStorageNode({
        tier: 'dram',
        capacity: options.capacity ?? 64 * 1024 * 1024,
        secret,
        logger,
        id: `dram-${i}`,
        controller: controllerAddress,
        maxValueBytes: options.maxValueBytes,
        maxConnectionsPerJob: options.maxConnectionsPerJob,
      }),
    );
  }
  return {
    secret,
    adminToken: signToken(secret, ADMIN_SUBJECT),
    controller,
    controllerAddress,
    metadata,
    nodes,
    used: () => nodes.reduce((n, node) => n + node.server.engine.used, 0),
    async close() {
      await Promise.all(nodes.map((n) => n.close().catch(() => {})));
      await metadata.close();
      await controller.close();
    },
  };
}
