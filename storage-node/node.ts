import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  advertisedAddress,
  clientTlsOf,
  closeMetricsEndpoint,
  type MetricsEndpoint,
  SatchelError,
  type ServerTls,
  serveMetrics,
  type Tier,
} from '../proto/index.ts';
import { ControllerLink } from './controller-link.ts';
import type { DeviceEmulation } from './disk/device.ts';
import { DiskEngine } from './disk/disk-engine.ts';
import { DramEngine } from './dram-engine.ts';
import type { StorageEngine } from './engine.ts';
import { HeapTrimmer } from './heap-trim.ts';
import { HugePageSwitch } from './huge-pages.ts';
import { IdleCollector } from './idle-gc.ts';
import { PlacementLookup } from './placement-lookup.ts';
import { StorageServer, type StorageServerOptions } from './server.ts';

/** The limits a node holds against hostile or broken clients (server-options.ts, README "Limits"); defaults there. */
export type NodeLimits = Pick<
  StorageServerOptions,
  | 'helloTimeoutMs'
  | 'maxPreAuthConnections'
  | 'maxOutputBytes'
  | 'softOutputBytes'
  | 'softOutputMs'
  | 'maxParkedPerConnection'
  | 'maxParkedPerJob'
  | 'maxInflightBodyBytes'
  | 'dataTokenCopies'
>;

export interface StorageNodeOptions extends NodeLimits {
  tier: Tier;
  /** Bytes the node may hold. */
  capacity: number;
  /** The directory a disk tier (ssd, hdd) keeps its data in; required for them. Wiped when the node starts. */
  path?: string;
  /** Emulated seek time and bandwidth cap for a disk tier (the hdd tier on a machine without a spinning disk). */
  emulate?: DeviceEmulation;
  /** Bytes/s the node declares to the controller. */
  bandwidth?: number;
  secret: Uint8Array;
  logger: Logger;
  id?: string;
  host?: string;
  /** The host clients should dial when it is not the one bound (a pod binding 0.0.0.0). */
  advertiseHost?: string;
  port?: number;
  /** The controller to register with (host:port). */
  controller?: string;
  maxValueBytes?: number;
  /** Connections one job may hold open to this node (default 1024). */
  maxConnectionsPerJob?: number;
  /** Serve Prometheus metrics on this port (0: any free port); undefined: no metrics server. */
  metricsPort?: number;
  /** The host the metrics server binds (default `host`). */
  metricsHost?: string;
  /**
   * Open the RESP front door (resp/: Redis clients of the node's jobs) on this port (0: any free port; undefined:
   * none). It binds `host`, speaks TLS when the node does, and is registered with the controller.
   */
  respPort?: number;
  /**
   * Serve the data plane over TLS with `cert` and `key`, and check the controller's certificate against `ca`
   * when registering and reporting (PEM; `--tls-cert`, `--tls-key`, `--tls-ca`).
   */
  tls?: ServerTls;
  /**
   * Report the process's CPU to the controller (default true). False where several nodes share one process
   * (test/helpers/in-process.ts): that CPU is everyone's, and one node reporting it as hot keeps new jobs off it.
   */
  reportCpu?: boolean;
}

export interface RunningStorageNode {
  id: string;
  /** Fresh at every start: the controller tells incarnations of one node id apart by it. */
  bootId: string;
  address: string;
  /** host:port of the RESP front door, or null without `respPort`. */
  respAddress: string | null;
  server: StorageServer;
  /** `http://host:port/metrics`, or null without `metricsPort`. */
  metricsAddress: string | null;
  close(): Promise<void>;
}

/** Starts a storage node's data plane, registers it with the controller and reports to it every second. */
export async function startStorageNode(options: StorageNodeOptions): Promise<RunningStorageNode> {
  if (!(options.capacity > 0)) throw new SatchelError('BAD_REQUEST', 'capacity must be a positive number of bytes');
  const engine = await openEngine(options);
  const id = options.id ?? `${options.tier}-${randomBytes(3).toString('hex')}`;
  const bootId = randomBytes(8).toString('hex');
  const server = new StorageServer({
    // With a controller, only the jobs it announced to this process (job-table.ts).
    announcedJobsOnly: options.controller !== undefined,
    bootId,
    id,
    engine,
    secret: options.secret,
    logger: options.logger,
    maxValueBytes: options.maxValueBytes,
    tls: options.tls,
    peerTls: clientTlsOf(options.tls),
    maxConnectionsPerJob: options.maxConnectionsPerJob,
    helloTimeoutMs: options.helloTimeoutMs,
    maxPreAuthConnections: options.maxPreAuthConnections,
    maxOutputBytes: options.maxOutputBytes,
    softOutputBytes: options.softOutputBytes,
    softOutputMs: options.softOutputMs,
    maxParkedPerConnection: options.maxParkedPerConnection,
    maxParkedPerJob: options.maxParkedPerJob,
    maxInflightBodyBytes: options.maxInflightBodyBytes,
    dataTokenCopies: options.dataTokenCopies,
  });
  // Receive buffers of large PUTs go back to the server's pool once written to disk; reads of large values
  // borrow from it until sent.
  if (engine instanceof DiskEngine) {
    engine.recycle = (value) => server.pool.release(value);
    engine.allocateValue = (size) => server.pool.allocate(size);
  }
  let address: string;
  try {
    address = advertisedAddress(await server.listen(options.port ?? 0, options.host ?? '127.0.0.1'), options.advertiseHost);
  } catch (error) {
    await engine.close();
    throw error;
  }
  let respAddress: string | null = null;
  if (options.respPort !== undefined) {
    try {
      respAddress = advertisedAddress(await server.listenResp(options.respPort, options.host ?? '127.0.0.1'), options.advertiseHost);
    } catch (error) {
      await server.close();
      throw error;
    }
    server.respAddress = respAddress;
  }
  let metrics: MetricsEndpoint | null = null;
  if (options.metricsPort !== undefined) {
    const host = options.metricsHost ?? options.host ?? '127.0.0.1';
    try {
      metrics = await serveMetrics(await server.metrics.registry(), options.metricsPort, host);
    } catch (error) {
      await server.close();
      throw error;
    }
    // A wildcard bind is reached through the advertised host, like the data plane.
    if ((host === '0.0.0.0' || host === '::') && options.advertiseHost) {
      metrics.address = `http://${advertisedAddress(new URL(metrics.address).host, options.advertiseHost)}/metrics`;
    }
  }
  const metricsAddress = metrics?.address ?? null;
  const closeMetrics = async () => {
    if (metrics !== null) await closeMetricsEndpoint(metrics);
  };
  options.logger.info(
    {
      node: id,
      bootId,
      tier: options.tier,
      address,
      resp: respAddress,
      metrics: metricsAddress,
      capacity: options.capacity,
      path: options.path,
    },
    'storage node listening',
  );
  let link: ControllerLink | null = null;
  if (options.controller !== undefined) {
    server.lookup = new PlacementLookup({
      controller: options.controller,
      secret: options.secret,
      logger: options.logger,
      tls: clientTlsOf(options.tls),
    });
    link = new ControllerLink({
      controller: options.controller,
      secret: options.secret,
      logger: options.logger,
      tls: clientTlsOf(options.tls),
      reportCpu: options.reportCpu,
      node: {
        id,
        tier: options.tier,
        address,
        capacity: options.capacity,
        bandwidth: options.bandwidth ?? 1e9,
        bootId,
        ...(respAddress === null ? {} : { respAddress }),
      },
    });
    link.attach(server);
    try {
      await link.register();
    } catch (error) {
      link.close();
      await closeMetrics();
      await server.close();
      throw error;
    }
    link.startReporting();
  }
  // Freed heap back to the OS (heap-trim.ts); garbage an idle node would otherwise keep for minutes (idle-gc.ts).
  const trimmer = await HeapTrimmer.start({ logger: options.logger });
  const idleCollector =
    link === null ? null : new IdleCollector({ activity: () => server.counters.ops, afterCollect: () => trimmer.trim() });
  // Huge pages while serving, none while idle (huge-pages.ts: khugepaged refilled a trimmed idle heap).
  const hugePages = await HugePageSwitch.start({ logger: options.logger, activity: () => server.counters.ops });
  return {
    id,
    bootId,
    address,
    respAddress,
    server,
    metricsAddress,
    close: async () => {
      idleCollector?.close();
      hugePages.close();
      trimmer.close();
      link?.close();
      await closeMetrics();
      await server.close();
    },
  };
}

/** The engine for the node's tier: DRAM in memory, SSD and HDD in LevelDB plus segment files under `path`. */
async function openEngine(options: StorageNodeOptions): Promise<StorageEngine> {
  switch (options.tier) {
    case 'dram':
      return new DramEngine(options.capacity);
    case 'ssd':
    case 'hdd':
      if (typeof options.path !== 'string' || options.path.length === 0) {
        throw new SatchelError('BAD_REQUEST', `the ${options.tier} tier needs a data directory (path)`);
      }
      return DiskEngine.open({ tier: options.tier, path: options.path, capacity: options.capacity, emulate: options.emulate });
    default:
      throw new SatchelError('BAD_REQUEST', `unknown tier ${String(options.tier)}: expected dram, ssd or hdd`);
  }
}
