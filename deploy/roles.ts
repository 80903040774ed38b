/**
 * One Satchel process per role, as `satchel controller | metadata | storage-node` run them. Each announces
 * itself when ready (an IPC message when started by `satchel up`, a log line always), stops cleanly on
 * SIGINT/SIGTERM, and exits when the parent that started it over IPC goes away, so no process outlives
 * its cluster.
 */
import type { Logger } from 'pino';
import { type AutoscalerConfig, buildConsole, Controller, DEFAULT_AUTOSCALER, type Provisioner } from '../controller/index.ts';
import { MetadataServer } from '../metadata/index.ts';
import { ADMIN_SUBJECT, type ServerTls, signToken, type Tier, VIEWER_SUBJECT } from '../proto/index.ts';
import { type DeviceEmulation, startStorageNode } from '../storage-node/index.ts';
import { LocalProvisioner } from './local-provisioner.ts';
import type { AutoscaleOptions } from './options.ts';
import { PortInUseError } from './port-in-use.ts';

export interface ReadyMessage {
  type: 'ready';
  role: string;
  address: string;
  /** `http://host:port/metrics` of a metadata server or storage node started with a metrics port. */
  metrics?: string;
  console?: string;
  id?: string;
  /** host:port of a storage node's RESP front door, when it has one. */
  resp?: string;
}

export interface ControllerRoleOptions {
  host: string;
  port: number;
  /** Serve gRPC over TLS; calls to metadata servers and nodes check them against its CA (`--tls-*`). */
  tls?: ServerTls;
  consoleHost: string;
  consolePort: number;
  secret: Buffer;
  logger: Logger;
  stateDir?: string;
  leaseMs?: number;
  /** A node silent this long is lost (Controller `nodeTimeoutMs`). */
  nodeTimeoutMs?: number;
  /** Job token lifetime (Controller `tokenTtlMs`). */
  tokenTtlMs?: number;
  /** Bytes a job may hold (Controller `jobQuotaBytes`). */
  jobQuotaBytes?: number;
  /** Metadata servers holding each job's placement (Controller `metadataCopies`). */
  metadataCopies?: number;
  /** Placements made ahead of registrations (Controller `spareJobs`; 0: none). */
  spareJobs?: number;
  /** Make the default tenant (Controller `defaultTenant`; default true). */
  defaultTenant?: boolean;
  advertiseHost?: string;
  provisioner?: 'none' | 'local' | 'kubernetes';
  /** Kubernetes namespace of the storage StatefulSets. */
  namespace?: string;
  /** Run the autoscaler (needs a provisioner). */
  autoscale?: AutoscaleOptions;
}

/** The provisioner a controller was asked for; the Kubernetes client is loaded only when it is used. */
async function makeProvisioner(options: ControllerRoleOptions): Promise<Provisioner | undefined> {
  switch (options.provisioner ?? 'none') {
    case 'local':
      return new LocalProvisioner();
    case 'kubernetes': {
      const { KubernetesProvisioner } = await import('./kubernetes-provisioner.ts');
      return new KubernetesProvisioner({ namespace: options.namespace!, logger: options.logger });
    }
    default:
      return undefined;
  }
}

/** Flags → the autoscaler's config: what is not given keeps DEFAULT_AUTOSCALER's value. */
export function autoscalerConfig(options: AutoscaleOptions): AutoscalerConfig {
  const d = DEFAULT_AUTOSCALER;
  return {
    ...d,
    low: options.band ? options.band[0] / 100 : d.low,
    high: options.band ? options.band[1] / 100 : d.high,
    upAfterMs: options.scaleUpAfterMs ?? d.upAfterMs,
    downAfterMs: options.scaleDownAfterMs ?? d.downAfterMs,
    cooldownMs: options.cooldownMs ?? d.cooldownMs,
    minNodes: { ...d.minNodes, ...options.minNodes },
    maxNodes: { ...d.maxNodes, ...options.maxNodes },
  };
}

export async function runController(options: ControllerRoleOptions): Promise<ReadyMessage> {
  const controller = new Controller({
    secret: options.secret,
    logger: options.logger,
    tls: options.tls,
    stateDir: options.stateDir,
    leaseMs: options.leaseMs,
    nodeTimeoutMs: options.nodeTimeoutMs,
    tokenTtlMs: options.tokenTtlMs,
    jobQuotaBytes: options.jobQuotaBytes,
    metadataCopies: options.metadataCopies,
    spareJobs: options.spareJobs,
    defaultTenant: options.defaultTenant,
    advertiseHost: options.advertiseHost,
    provisioner: await makeProvisioner(options),
    autoscaler: options.autoscale === undefined ? undefined : autoscalerConfig(options.autoscale),
  });
  const address = await controller.listen(options.port, options.host).catch((error: unknown) => {
    throw PortInUseError.from(error, [[options.port, 'controller']]);
  });
  const app = buildConsole(controller, {
    adminToken: signToken(options.secret, ADMIN_SUBJECT),
    viewerToken: signToken(options.secret, VIEWER_SUBJECT),
    logger: options.logger,
  });
  await app.listen({ host: options.consoleHost, port: options.consolePort }).catch((error: unknown) => {
    throw PortInUseError.from(error, [[options.consolePort, 'console']]);
  });
  const bound = app.server.address();
  const consoleUrl = `http://${options.consoleHost}:${typeof bound === 'object' && bound ? bound.port : options.consolePort}`;
  options.logger.info({ address, console: consoleUrl }, 'controller ready');
  stopOnSignal(options.logger, async () => {
    await app.close();
    await controller.close();
  });
  return announce({ type: 'ready', role: 'controller', address, console: consoleUrl });
}

export interface MetadataRoleOptions {
  host: string;
  port: number;
  /** Serve gRPC over TLS; the controller is checked against its CA (`--tls-*`). */
  tls?: ServerTls;
  controller: string;
  secret: Buffer;
  logger: Logger;
  advertiseHost?: string;
  /** Serve `/metrics` on this port (0: any free one); none when omitted. */
  metricsPort?: number;
}

export async function runMetadata(options: MetadataRoleOptions): Promise<ReadyMessage> {
  const server = new MetadataServer({
    secret: options.secret,
    logger: options.logger,
    controller: options.controller,
    advertiseHost: options.advertiseHost,
    tls: options.tls,
    metricsPort: options.metricsPort,
    metricsHost: options.host,
  });
  const address = await server.listen(options.port, options.host).catch((error: unknown) => {
    throw PortInUseError.from(error, [
      [options.port, 'metadata server'],
      [options.metricsPort, 'metrics endpoint'],
    ]);
  });
  options.logger.info({ address, metrics: server.metricsAddress }, 'metadata ready');
  stopOnSignal(options.logger, () => server.close());
  return announce({ type: 'ready', role: 'metadata', address, metrics: server.metricsAddress ?? undefined });
}

export interface StorageNodeRoleOptions {
  tier: Tier;
  /** Serve the data plane over TLS; the controller is checked against its CA (`--tls-*`). */
  tls?: ServerTls;
  path?: string;
  bandwidth?: number;
  emulate?: DeviceEmulation;
  host: string;
  port: number;
  controller: string;
  capacity: number;
  maxValueBytes?: number;
  maxConnectionsPerJob?: number;
  id?: string;
  advertiseHost?: string;
  /** Serve `/metrics` on this port (0: any free one); none when omitted. */
  metricsPort?: number;
  /** Open the RESP front door on this port (0: any free one); none when omitted. */
  respPort?: number;
  secret: Buffer;
  logger: Logger;
}

export async function runStorageNode(options: StorageNodeRoleOptions): Promise<ReadyMessage> {
  const node = await startStorageNode(options).catch((error: unknown) => {
    throw PortInUseError.from(error, [
      [options.port, 'storage node'],
      [options.metricsPort, 'metrics endpoint'],
      [options.respPort, 'RESP front door'],
    ]);
  });
  stopOnSignal(options.logger, () => node.close());
  return announce({
    type: 'ready',
    role: 'storage-node',
    address: node.address,
    id: node.id,
    metrics: node.metricsAddress ?? undefined,
    resp: node.respAddress ?? undefined,
  });
}

function announce(message: ReadyMessage): ReadyMessage {
  process.send?.(message);
  return message;
}

function stopOnSignal(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const shutdown = (why: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ why }, 'stopping');
    const force = setTimeout(() => process.exit(1), 5_000);
    force.unref();
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  // Started by `satchel up` over IPC: when it goes away (even killed), so do we.
  if (process.send !== undefined) process.once('disconnect', () => shutdown('parent gone'));
}
