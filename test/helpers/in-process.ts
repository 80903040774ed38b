/**
 * A whole cluster inside the test process (controller, metadata server, DRAM nodes), for tests that need to see a
 * node's engine directly. Same wire protocols as `satchel up`; only the process boundaries are missing.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Controller, defaultTenantKey } from '../../controller/index.ts';
import { MetadataServer } from '../../metadata/index.ts';
import { ADMIN_SUBJECT, signToken } from '../../proto/index.ts';
import { type NodeLimits, type RunningStorageNode, startStorageNode } from '../../storage-node/index.ts';

export interface InProcessCluster {
  secret: Buffer;
  adminToken: string;
  /** The default tenant's key: `Satchel.connect(controllerAddress, { key: tenantKey })`. */
  tenantKey: string;
  controller: Controller;
  controllerAddress: string;
  metadata: MetadataServer;
  nodes: RunningStorageNode[];
  /** Bytes held over every node. */
  used(): number;
  /**
   * Stops node `index` and starts a new process-equivalent in its place: the same id, address and capacity, a
   * fresh boot id and an empty engine (what a Kubernetes pod restarted after a crash looks like).
   */
  restartNode(index: number): Promise<RunningStorageNode>;
  /** Starts one more DRAM node (id `dram-<its index>`), as a scale-up or a replacement pod with a new name does. */
  addNode(): Promise<RunningStorageNode>;
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
    /** Limits every node holds against hostile clients (storage-node/README.md "Limits"). */
    nodeLimits?: NodeLimits;
    /** The controller address node `i` registers and reports to (a proxy a test can cut); the controller's own by default. */
    nodeController?: (i: number) => string | undefined;
    /** Open each node's RESP front door (storage-node/resp/) on a free port. */
    resp?: boolean;
    /** Runs once the controller listens, before the nodes start (to put a proxy in front of it, say). */
    beforeNodes?: (controllerAddress: string) => Promise<void>;
  } = {},
): Promise<InProcessCluster> {
  // SATCHEL_TEST_LOG=info shows every server's lines (one process here: they interleave), to debug a test.
  const logger = pino({ level: process.env.SATCHEL_TEST_LOG ?? 'silent' });
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
  const startNode = (i: number, port = 0) =>
    startStorageNode({
      tier: 'dram',
      capacity: options.capacity ?? 64 * 1024 * 1024,
      secret,
      logger,
      id: `dram-${i}`,
      port,
      controller: options.nodeController?.(i) ?? controllerAddress,
      maxValueBytes: options.maxValueBytes,
      maxConnectionsPerJob: options.maxConnectionsPerJob,
      // One process for every node: its CPU says nothing of one node's, and a node reported hot gets no new jobs.
      reportCpu: false,
      ...(options.resp === true ? { respPort: 0 } : {}),
      ...options.nodeLimits,
    });
  await options.beforeNodes?.(controllerAddress);
  for (let i = 0; i < (options.dram ?? 1); i++) nodes.push(await startNode(i));
  return {
    secret,
    adminToken: signToken(secret, ADMIN_SUBJECT),
    tenantKey: defaultTenantKey(secret),
    controller,
    controllerAddress,
    metadata,
    nodes,
    used: () => nodes.reduce((n, node) => n + node.server.engine.used, 0),
    async restartNode(index) {
      const old = nodes[index]!;
      await old.close();
      const port = Number(old.address.slice(old.address.lastIndexOf(':') + 1));
      nodes[index] = await startNode(index, port);
      return nodes[index]!;
    },
    async addNode() {
      const node = await startNode(nodes.length);
      nodes.push(node);
      return node;
    },
    async close() {
      await Promise.all(nodes.map((n) => n.close().catch(() => {})));
      await metadata.close();
      await controller.close();
    },
  };
}

/**
 * Whether job `jobId`'s placement keeps a remnant (controller/README.md "Remnants") with `lost` nodes marked lost
 * and nothing pending: after every copy of some keys died, the state the job stays in.
 */
export function remnantSettled(cluster: InProcessCluster, jobId: string, lost: number): boolean {
  const record = cluster.controller.registry.jobs.get(jobId)!;
  const remnant = record.placement.generations.find((g) => g.remnant === true);
  return remnant !== undefined && remnant.nodes.filter((n) => n.lost === true).length === lost && record.pending === undefined;
}
