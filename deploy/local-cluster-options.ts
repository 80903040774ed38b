/** What `LocalCluster.start` takes (local-cluster.ts): the cluster's shape, ports, limits and hooks. */
import type { Tier } from '../proto/index.ts';
import type { ControllerHeap } from './child-process.ts';
import type { AutoscaleOptions } from './options.ts';
import type { RestartEvent } from './process-restarts.ts';
import type { ReadyMessage } from './roles.ts';
import type { StaleLock } from './state-lock.ts';

export interface LocalClusterOptions {
  /**
   * Where cluster.json, the secret and logs go; a fresh temporary folder (removed on stop) when omitted. The
   * cluster locks it (`satchel.lock`): start fails with StateDirBusyError while another live cluster holds it.
   */
  stateDir?: string;
  controllerPort?: number;
  consolePort?: number;
  dram?: number;
  ssd?: number;
  hdd?: number;
  ssdCapacity?: number;
  hddCapacity?: number;
  /** Emulated seek per HDD read and write (off by default). */
  hddSeekMs?: number;
  /** Bytes per DRAM node. */
  dramCapacity?: number;
  /** Network bandwidth each node declares (bytes/s), by tier; TIER_PROFILES otherwise. Benchmarks use it to
   * emulate nodes with smaller network links than this machine's loopback. */
  bandwidth?: Partial<Record<Tier, number>>;
  maxValueBytes?: number;
  /** Called with each process as it becomes ready (progress for `satchel up`). */
  onReady?: (message: ReadyMessage) => void;
  /** Called when the state folder's lock was left by a cluster that is gone, and this one took it over. */
  onTakeover?: (stale: StaleLock) => void;
  /**
   * A process that exits on its own (crashed, killed by PID) is started again as itself, with a backoff
   * (process-restarts.ts): a storage node as the same node (`startNode`), the controller on its ports with its
   * state folder, a metadata server on its ports (the controller refills it). Off by default (tests kill and
   * start processes themselves); `satchel up` turns it on. `onRestart` hears each restart, or why one failed.
   */
  restartProcesses?: boolean;
  onRestart?: (event: RestartEvent & { pid?: number }) => void;
  /** Extra environment for every process. */
  env?: NodeJS.ProcessEnv;
  /**
   * Leave the processes' logs in stateDir/logs after stop (everything else the cluster created is removed).
   * After a failed start the logs are always left: the error names the log of the process that failed.
   */
  keepLogs?: boolean;
  /** The controller's job lease (default 60 s). */
  leaseMs?: number;
  /** The controller's `--node-timeout-ms`: a node silent this long is lost (default 5000). */
  nodeTimeoutMs?: number;
  /** 'large': the controller runs with V8's own heap sizing, for thousands of nodes (child-process.ts; default 'small'). */
  controllerHeap?: ControllerHeap;
  /** Metadata servers to start (default 1); each job's placement is on `metadataCopies` of them (default 2). */
  metadata?: number;
  metadataCopies?: number;
  /** Placements the controller makes ahead of registrations (controller `spareJobs`; default 8, 0: none). */
  spareJobs?: number;
  /** Run the autoscaler (off by default here; `satchel up` turns it on). Unset fields keep the defaults. */
  autoscale?: AutoscaleOptions;
  /**
   * Paths of PEM files: every process serves TLS with `cert` and `key` (which must name 127.0.0.1) and checks
   * the others against `ca` (`--tls-cert`, `--tls-key`, `--tls-ca`); tickets carry the CA.
   */
  tls?: { cert: string; key: string; ca: string };
  /**
   * Called with the controller's address for each storage node added: the address that node registers and
   * reports to instead (a proxy the nemesis can cut: perf/nemesis). Kept for the node's later starts.
   */
  nodeController?: (controller: string) => string | Promise<string>;
  /**
   * Where the controller's provisioner requests go instead of to storage-node processes this cluster forks:
   * `launch` starts a node of the tier some other way (it registers itself) and resolves with its id, `remove`
   * stops one. `satchel bench scale` hands in its simulated nodes (perf/scale-nodes.ts).
   */
  provision?: { launch(tier: Tier): Promise<string>; remove(nodeId: string): Promise<void> };
}
