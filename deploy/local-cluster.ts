/**
 * A whole cluster on this machine as child processes: controller (with console), metadata, storage nodes.
 * `satchel up` runs one; tests and benchmarks start one on port 0 and stop it when done. Every process is
 * forked with an IPC channel: it reports its bound address over it, and exits if the channel closes.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, rmdir, writeFile, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, relative, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ADMIN_SUBJECT, SatchelError, VIEWER_SUBJECT, signToken } from '../proto/index.ts';
import type { ProvisionReply, ProvisionRequest } from './local-provisioner.ts';
import type { AutoscaleOptions } from './options.ts';
import { PortInUseError } from './port-in-use.ts';
import type { ReadyMessage } from './roles.ts';
import { loadOrCreateSecret } from './secret.ts';
import { StateLock, createdPaths, processIdentity, type StaleLock } from './state-lock.ts';
import { TIER_PROFILES } from './tiers.ts';
import { defaultTenantKey } from '../controller/index.ts';
import type { Tier } from '../proto/index.ts';

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
}

/** The autoscaler's policy as `satchel controller` flags take it (controller/autoscaler.ts has the defaults). */
export interface ClusterInfoFile {
  controller: string;
  console: string;
  adminToken: string;
  /** Read-only console access (`/api`, the live stream, `/metrics`): the page takes it from `#token=`. */
  viewerToken: string;
  /** The default tenant's key: `Satchel.connect(controller, { key: tenantKey })` registers jobs with it. */
  tenantKey: string;
  metadata: string[];
  nodes: {
    id: string;
    tier: string;
    address: string;
    /** The node's current (or last) process. */
    pid: number;
    metrics?: string;
    /** Absent while it runs; 'down' once its process exited (killNode, or killed by PID); 'frozen' by freezeNode. */
    state?: 'down' | 'frozen';
  }[];
  /** `/metrics` of every process: the controller's console, each metadata server, each node. */
  metrics: string[];
}

interface Member {
  role: string;
  child: ChildProcess;
  ready: ReadyMessage;
  log: string;
  /** A storage node's: what startNode needs to start it again as the same node. */
  node?: NodeSpec;
}

/** A storage node as LocalCluster started it: the same id, ports, tier, capacity and folder on every start. */
interface NodeSpec {
  id: string;
  tier: Tier;
  capacity: number;
  port: number;
  metricsPort: number;
  /** A disk node's data folder (the node wipes it at start), removed with it. */
  dataPath?: string;
  /** Where the node registers and reports: the controller, or what `nodeController` put in front of it. */
  controller: string;
  frozen: boolean;
  /** A startNode is under way. */
  starting: boolean;
}

export const DEFAULT_DRAM_CAPACITY = TIER_PROFILES.dram.capacity;

/**
 * glibc malloc settings for storage nodes. glibc returns free memory at the top of the heap to the OS past
 * 128 KiB by default, and a node streaming large values then page-faults the same memory back in for every
 * read chunk. Measured with 1 MiB PUTs one at a time: 543 µs of system time per PUT on the node with the
 * default, 190 µs with a 128 MiB threshold (wall time 886 → 507 µs). Setting it also freezes glibc's mmap
 * threshold at 128 KiB, so every 1 MiB block would get fresh pages from mmap and fault them in: a 32 MiB
 * threshold keeps blocks on the heap, where freed memory is reused (a 256×256 sort: 6.1 → 3.5 s of the node's
 * CPU copying into new buffers). What the heap keeps free the node gives back every 10 s itself
 * (storage-node/heap-trim.ts: with a smaller mmap threshold instead, malloc still took large blocks from free
 * heap space first, and the heap still kept the most the node had ever held). Containers running
 * `satchel storage-node` should set the same variables (deploy/kubernetes does).
 */
export const STORAGE_NODE_ENV = { MALLOC_TRIM_THRESHOLD_: String(128 * 1024 * 1024), MALLOC_MMAP_THRESHOLD_: String(32 * 1024 * 1024) };

/**
 * V8 flags of the control plane (controller, metadata): they hold a few MB of live state and answer a few
 * hundred calls a second, so memory matters more than V8's speed. With V8's defaults their heap grew in a
 * saw-tooth (at least 8 MB of garbage between full collections, a young generation growing to 16 MB) and a
 * 10-minute soak saw the controller's RSS grow 10–14 % after its first minute with a flat live heap;
 * `--optimize-for-size` (full collections every 2 MB, a 1 MB young generation) and smaller LevelDB buffers
 * (controller/store.ts) held it to 3 % (perf/RESULTS.md). Not for storage nodes: their data path pays for it
 * (bench micro, 64 KiB PUTs × 64 in flight: 22,953 → 16,804/s).
 * Node refuses the flag in NODE_OPTIONS, so it goes on the command line; containers do the same.
 */
export const CONTROL_PLANE_V8_FLAGS = ['--optimize-for-size'];

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
/** startNode waits this long at most for a node's ports to be free again. */
const PORT_RETRY_MS = 5_000;
const CLI = fileURLToPath(new URL(`./cli${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export class LocalCluster {
  private readonly members: Member[] = [];
  private stopped: Promise<void> | null = null;
  /** Processes being started: a stop waits for them, so none is left running (an autoscaler launch racing it). */
  private readonly starting = new Set<Promise<unknown>>();
  /** Every forked process still running, with its identity for the lock (state-lock.ts). */
  private readonly children = new Map<ChildProcess, string | undefined>();
  /**
   * What this cluster created in stateDir, relative ('.' for the folder itself), in order: stop removes these
   * and nothing else. A takeover inherits what the lock of the gone cluster listed.
   */
  private readonly created = new Set<string>();
  /** cluster.json and lock writes, one after another; none once the files are being removed. */
  private persisting: Promise<void> = Promise.resolve();
  private cleaning = false;
  private diskNodes = 0;
  private spawned = 0;
  info!: ClusterInfoFile;

  private constructor(
    readonly stateDir: string,
    private readonly lock: StateLock,
    /** The topmost folder this cluster made to hold stateDir (stateDir itself or an ancestor). */
    private readonly madeDir: string | undefined,
    private readonly options: LocalClusterOptions,
  ) {
    if (madeDir !== undefined) this.created.add('.');
    for (const path of createdPaths(lock.takenOver?.record)) this.created.add(path);
  }

  /**
   * Locks the state folder (StateDirBusyError, having touched nothing, while a live cluster holds it), then starts
   * every process. A start that fails stops what it started and removes what it created, but the logs.
   */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const temporary = options.stateDir === undefined ? await mkdtemp(join(tmpdir(), 'satchel-')) : undefined;
    const lock = await StateLock.acquire(temporary ?? resolve(options.stateDir!));
    const cluster = new LocalCluster(lock.dir, lock, temporary ?? lock.madeDir, options);
    if (lock.takenOver !== undefined) options.onTakeover?.(lock.takenOver);
    try {
      await cluster.boot();
    } catch (error) {
      // The log the error names stays; the rest goes (--keep-logs keeps them all).
      cluster.stopped ??= cluster.shutdown(options.keepLogs === true, failedLogs.get(error as object));
      await cluster.stopped;
      throw error;
    }
    return cluster;
  }

  get controller(): string {
    return this.info.controller;
  }

  get adminToken(): string {
    return this.info.adminToken;
  }

  /** The default tenant's key (cluster.json `tenantKey`): what `Satchel.connect` needs to register jobs. */
  get tenantKey(): string {
    return this.info.tenantKey;
  }

  /** Read-only console access (cluster.json `viewerToken`). */
  get viewerToken(): string {
    return this.info.viewerToken;
  }

  /** The address node `id` registers and reports to (the controller's, or `nodeController`'s), if it is ours. */
  nodeControllerAddress(id: string): string | undefined {
    return this.members.find((m) => m.node?.id === id)?.node?.controller;
  }

  /** PIDs of the running storage nodes, by node id (fault tests kill them). */
  get nodePids(): Map<string, number> {
    return new Map(this.members.filter((m) => m.node !== undefined && running(m.child)).map((m) => [m.node!.id, m.child.pid!]));
  }

  /** PID of the controller process (fault tests kill it, then call restartController). */
  get controllerPid(): number {
    return this.member('controller').child.pid!;
  }

  /** PID of the metadata server process (fault tests kill it, then call restartMetadata). */
  get metadataPid(): number {
    return this.member('metadata').child.pid!;
  }

  /** PIDs of every running process of the cluster. */
  get pids(): number[] {
    return this.members.filter((m) => running(m.child)).map((m) => m.child.pid!);
  }

  /** Starts one more storage node of a tier (disk tiers keep their data in stateDir/data/<tier>-<n>). */
  async addNode(tier: Tier = 'dram', capacity?: number): Promise<ReadyMessage> {
    const bytes = capacity ?? this.options[`${tier}Capacity`] ?? TIER_PROFILES[tier].capacity;
    const controller = (await this.options.nodeController?.(this.info.controller)) ?? this.info.controller;
    const spec: NodeSpec = { id: '', tier, capacity: bytes, port: 0, metricsPort: 0, dataPath: tier === 'dram' ? undefined : this.newDataPath(tier), controller, frozen: false, starting: false };
    const member = await this.spawn('storage-node', this.nodeArgs(spec));
    // Started on port 0 with a generated id: what it got is what every later start asks for.
    spec.id = member.ready.id!;
    spec.port = portOf(member.ready.address);
    spec.metricsPort = member.ready.metrics === undefined ? 0 : Number(new URL(member.ready.metrics).port);
    member.node = spec;
    this.info.nodes.push({ id: spec.id, tier, address: member.ready.address, pid: member.child.pid!, metrics: member.ready.metrics });
    if (member.ready.metrics !== undefined) this.info.metrics.push(member.ready.metrics);
    await this.persist();
    return member.ready;
  }

  /** Stops one storage node (SIGTERM, as a clean stop) and deletes its data folder; it leaves the cluster. */
  async removeNode(nodeId: string): Promise<void> {
    const index = this.members.findIndex((m) => m.node?.id === nodeId);
    if (index === -1) throw new SatchelError('BAD_REQUEST', `no storage node ${nodeId} in this cluster`);
    const [member] = this.members.splice(index, 1);
    await stopChild(member!.child);
    if (member!.node?.dataPath !== undefined) await rm(member!.node.dataPath, { recursive: true, force: true });
    const gone = this.info.nodes.find((n) => n.id === nodeId);
    this.info.nodes = this.info.nodes.filter((n) => n.id !== nodeId);
    this.info.metrics = this.info.metrics.filter((m) => m !== gone?.metrics);
    await this.persist();
  }

  /**
   * Kills a storage node's process (SIGKILL: a crash; SIGTERM: a clean stop, SIGKILL after 5 s) and waits for
   * it to exit. The node stays in the cluster, `state: 'down'` in `info` and cluster.json, its data folder kept,
   * until startNode or removeNode. A node not running is left as it is. Works on a frozen node.
   */
  async killNode(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const member = this.nodeMember(id);
    if (!running(member.child)) return;
    await stopChild(member.child, signal);
    member.node.frozen = false;
    this.setNodeState(id, 'down');
    await this.persist();
  }

  /**
   * Starts a storage node whose process is gone, as the same node: the same `--id`, data port, metrics port,
   * tier, capacity and data folder (a disk node wipes it at start: its data is ephemeral). Waits until it is
   * ready; retries for up to 5 s while its ports are still held (being released, or taken meanwhile). Refuses
   * (BAD_REQUEST) while the old process still runs.
   */
  async startNode(id: string): Promise<ReadyMessage> {
    const old = this.nodeMember(id);
    const spec = old.node;
    if (running(old.child)) throw new SatchelError('BAD_REQUEST', `storage node ${id} is still running (pid ${old.child.pid}): kill it first`);
    if (spec.starting) throw new SatchelError('BAD_REQUEST', `storage node ${id} is being started already`);
    spec.starting = true;
    try {
      const deadline = Date.now() + PORT_RETRY_MS;
      let member: Member;
      for (;;) {
        await portsFree([spec.port, spec.metricsPort], deadline);
        try {
          member = await this.spawn('storage-node', this.nodeArgs(spec));
          break;
        } catch (error) {
          if (!(error instanceof PortInUseError) || Date.now() >= deadline) throw error;
          await sleep(100);
        }
      }
      if (member.ready.id !== spec.id || member.ready.address !== old.ready.address) {
        this.forget(member);
        await stopChild(member.child, 'SIGKILL');
        throw new SatchelError('UNAVAILABLE', `storage node ${id} came back as ${member.ready.id} at ${member.ready.address}, not at ${old.ready.address}`);
      }
      member.node = spec;
      spec.frozen = false;
      this.forget(old);
      const entry = this.info.nodes.find((n) => n.id === id);
      if (entry !== undefined) {
        entry.pid = member.child.pid!;
        delete entry.state;
      }
      await this.persist();
      return member.ready;
    } finally {
      spec.starting = false;
    }
  }

  /** killNode, then startNode: the node comes back as itself, with a new process and empty. */
  async restartNode(id: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<ReadyMessage> {
    await this.killNode(id, signal);
    return this.startNode(id);
  }

  /**
   * Freezes a storage node (SIGSTOP): its connections stay open and nothing answers, as with a paused VM or a
   * long GC pause. Resolves once the process is stopped (on Linux, /proc says so). stop() thaws it first.
   */
  async freezeNode(id: string): Promise<void> {
    const member = this.nodeMember(id);
    if (!running(member.child)) throw new SatchelError('BAD_REQUEST', `storage node ${id} is not running`);
    member.child.kill('SIGSTOP');
    member.node.frozen = true;
    const pid = member.child.pid!;
    const until = Date.now() + 1_000;
    while (Date.now() < until && existsSync(`/proc/${pid}/status`) && !/^State:\s+T/m.test(readText(`/proc/${pid}/status`))) await sleep(5);
    this.setNodeState(id, 'frozen');
    await this.persist();
  }

  /** Resumes a node frozen by freezeNode (SIGCONT); a node that is not frozen is left as it is. */
  async thawNode(id: string): Promise<void> {
    const member = this.nodeMember(id);
    if (!running(member.child) || !member.node.frozen) return;
    member.child.kill('SIGCONT');
    member.node.frozen = false;
    this.setNodeState(id, undefined);
    await this.persist();
  }

  /** PID of a storage node's process, undefined while it is down; BAD_REQUEST for an id not in the cluster. */
  nodePid(id: string): number | undefined {
    const member = this.nodeMember(id);
    return running(member.child) ? member.child.pid : undefined;
  }

  /** The local provisioner (in the controller process) asks over IPC; answers go back the same way. */
  private serveProvisioner(controller: ChildProcess): void {
    controller.on('message', (message: unknown) => {
      const request = message as ProvisionRequest;
      if (request?.type !== 'provision' || this.stopped !== null) return;
      const work = request.action === 'launch' ? this.addNode(request.tier).then((ready) => ready.id) : this.removeNode(request.nodeId ?? '').then(() => request.nodeId);
      work.then(
        (nodeId) => controller.connected && controller.send({ type: 'provisioned', id: request.id, nodeId } satisfies ProvisionReply),
        (error: unknown) => controller.connected && controller.send({ type: 'provisioned', id: request.id, error: (error as Error).message } satisfies ProvisionReply),
      );
    });
  }

  /**
   * Stops every process (SIGTERM, then SIGKILL after 5 s; frozen ones are resumed to get it), removes what the
   * cluster created (the logs too unless `keepLogs`) and releases the folder's lock. Idempotent.
   */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown(this.options.keepLogs === true);
    return this.stopped;
  }

  private get secretFile(): string {
    return join(this.stateDir, 'secret');
  }

  private async boot(): Promise<void> {
    await this.persist(); // the lock lists what this cluster created (or inherited) from the start
    await this.clearTakenOver();
    this.claim('logs');
    await mkdir(join(this.stateDir, 'logs'), { recursive: true });
    this.claim('secret');
    const secret = await loadOrCreateSecret(this.secretFile);
    // Tokens and keys live here: the folder is the owner's only, and so are files an earlier cluster left.
    await chmod(this.stateDir, 0o700);
    await chmod(this.secretFile, 0o600);
    this.claim('controller');
    const controller = await this.spawn('controller', this.controllerArgs(this.options.controllerPort ?? 0, this.options.consolePort ?? 0));
    this.info = {
      controller: controller.ready.address,
      console: controller.ready.console!,
      adminToken: signToken(secret, ADMIN_SUBJECT),
      viewerToken: signToken(secret, VIEWER_SUBJECT),
      tenantKey: defaultTenantKey(secret),
      metadata: [],
      nodes: [],
      metrics: [`${controller.ready.console!}/metrics`],
    };
    await this.persist();
    const metadata = await this.spawn('metadata', this.metadataArgs(0, 0));
    this.info.metadata.push(metadata.ready.address);
    if (metadata.ready.metrics !== undefined) this.info.metrics.push(metadata.ready.metrics);
    const counts: [Tier, number][] = [['dram', this.options.dram ?? 1], ['ssd', this.options.ssd ?? 0], ['hdd', this.options.hdd ?? 0]];
    await Promise.all(counts.flatMap(([tier, n]) => Array.from({ length: n }, () => this.addNode(tier))));
    await this.persist();
  }

  /**
   * A gone cluster's state describes processes that are all dead (its controller's database lists its metadata
   * server and nodes): what it created goes, as its own stop would have removed it, but its logs, which may say
   * why it died (they go at this cluster's stop, unless kept).
   */
  private async clearTakenOver(): Promise<void> {
    const gone = createdPaths(this.lock.takenOver?.record).reverse();
    for (const path of gone) if (path !== '.' && !isLog(path)) await rm(join(this.stateDir, path), { recursive: true, force: true });
  }

  private controllerArgs(port: number, consolePort: number): string[] {
    const args = ['controller', '--port', String(port), '--console-port', String(consolePort)];
    args.push('--secret-file', this.secretFile, '--state-dir', join(this.stateDir, 'controller'), '--provisioner', 'local');
    if (this.options.leaseMs !== undefined) args.push('--lease-ms', String(this.options.leaseMs));
    if (this.options.nodeTimeoutMs !== undefined) args.push('--node-timeout-ms', String(this.options.nodeTimeoutMs));
    args.push(...this.tlsArgs);
    const scale = this.options.autoscale;
    if (scale !== undefined) {
      args.push('--autoscale');
      const perTier = (counts: Partial<Record<Tier, number>>) => Object.entries(counts).map(([tier, n]) => `${tier}=${n}`).join(',');
      if (scale.band) args.push('--band', `${scale.band[0]}-${scale.band[1]}`);
      if (scale.minNodes) args.push('--min-nodes', perTier(scale.minNodes));
      if (scale.maxNodes) args.push('--max-nodes', perTier(scale.maxNodes));
      if (scale.scaleUpAfterMs !== undefined) args.push('--scale-up-after-ms', String(scale.scaleUpAfterMs));
      if (scale.scaleDownAfterMs !== undefined) args.push('--scale-down-after-ms', String(scale.scaleDownAfterMs));
      if (scale.cooldownMs !== undefined) args.push('--cooldown-ms', String(scale.cooldownMs));
    }
    return args;
  }

  /** A storage node's command line: on its first start ports 0 and no id; on later ones what it got then. */
  private nodeArgs(spec: NodeSpec): string[] {
    const args = ['storage-node', '--tier', spec.tier, '--port', String(spec.port), '--metrics-port', String(spec.metricsPort), '--controller', spec.controller];
    if (spec.id !== '') args.push('--id', spec.id);
    args.push('--capacity', String(spec.capacity), '--bandwidth', String(this.options.bandwidth?.[spec.tier] ?? TIER_PROFILES[spec.tier].bandwidth));
    if (spec.dataPath !== undefined) args.push('--path', spec.dataPath);
    if (spec.tier === 'hdd' && this.options.hddSeekMs !== undefined) args.push('--seek-ms', String(this.options.hddSeekMs));
    if (this.options.maxValueBytes !== undefined) args.push('--max-value', String(this.options.maxValueBytes));
    return [...args, ...this.tlsArgs, '--secret-file', this.secretFile];
  }

  /** A disk node's folder, data/<tier>-<n>: a fresh name, or one this cluster owns (a gone cluster's, taken over). */
  private newDataPath(tier: Tier): string {
    this.claim('data');
    for (;;) {
      const name = join('data', `${tier}-${this.diskNodes++}`);
      if (this.created.has('data') || this.created.has(name) || !existsSync(join(this.stateDir, name))) {
        this.claim(name);
        return join(this.stateDir, name);
      }
    }
  }

  /**
   * Stops the controller (SIGKILL: a crash; SIGTERM: a clean stop) and starts it again on the same ports with
   * the same state folder. Fault tests use it; the rest of the cluster keeps running meanwhile.
   */
  async restartController(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const old = this.member('controller');
    await stopChild(old.child, signal);
    // By identity, not by the index from before the await: a node started meanwhile moves the others.
    this.forget(old);
    const port = portOf(this.info.controller);
    const consolePort = Number(new URL(this.info.console).port);
    await this.spawn('controller', this.controllerArgs(port, consolePort));
    await this.persist();
  }

  /**
   * Stops the metadata server (SIGKILL: a crash; SIGTERM: a clean stop; a process already killed by PID just
   * gets restarted) and starts it again on the same gRPC and metrics ports: tickets name its address, so clients
   * holding one reach the new process. It comes back empty and announces itself to the controller, which sends
   * it every placement before it answers clients (metadata/README.md). Needs the controller up.
   */
  async restartMetadata(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const old = this.member('metadata');
    await stopChild(old.child, signal);
    this.forget(old);
    const address = old.ready.address;
    const metricsPort = old.ready.metrics === undefined ? 0 : Number(new URL(old.ready.metrics).port);
    const metadata = await this.spawn('metadata', this.metadataArgs(portOf(address), metricsPort));
    await this.persist();
    if (metadata.ready.address !== address) throw new SatchelError('UNAVAILABLE', `metadata came back at ${metadata.ready.address}, not ${address}`);
  }

  private metadataArgs(port: number, metricsPort: number): string[] {
    return ['metadata', '--port', String(port), '--metrics-port', String(metricsPort), '--controller', this.info.controller, ...this.tlsArgs, '--secret-file', this.secretFile];
  }

  /** Every process gets the same certificate (it names 127.0.0.1) and CA. */
  private get tlsArgs(): string[] {
    const tls = this.options.tls;
    return tls === undefined ? [] : ['--tls-cert', tls.cert, '--tls-key', tls.key, '--tls-ca', tls.ca];
  }

  private member(role: string): Member {
    const member = this.members.find((m) => m.role === role);
    if (member === undefined) throw new SatchelError('BAD_REQUEST', `no ${role} in this cluster`);
    return member;
  }

  /** Removes a member from the list (once, by identity: a missing one removes nothing). */
  private forget(member: Member): void {
    const index = this.members.indexOf(member);
    if (index !== -1) this.members.splice(index, 1);
  }

  private nodeMember(id: string): Member & { node: NodeSpec } {
    const member = this.members.find((m) => m.node?.id === id);
    if (member === undefined) throw new SatchelError('BAD_REQUEST', `no storage node ${id} in this cluster`);
    return member as Member & { node: NodeSpec };
  }

  private setNodeState(id: string, state: 'down' | 'frozen' | undefined): void {
    const entry = this.info.nodes.find((n) => n.id === id);
    if (entry === undefined) return;
    if (state === undefined) delete entry.state;
    else entry.state = state;
  }

  /** Records a path as this cluster's if nothing is there yet (the lock keeps any other cluster out). */
  private claim(path: string): void {
    if (!existsSync(join(this.stateDir, path))) this.created.add(path);
  }

  /** Writes cluster.json (once the controller is up) and the lock (processes, what was created), in turn. */
  private persist(): Promise<void> {
    const write = this.persisting.then(() => this.writeState());
    this.persisting = write.catch(() => {});
    return write;
  }

  private async writeState(): Promise<void> {
    if (this.cleaning) return;
    if (this.info !== undefined) {
      this.claim('cluster.json');
      const { controller, console, adminToken, viewerToken, tenantKey } = this.info;
      const text = JSON.stringify({ controller, console, adminToken, viewerToken, tenantKey, metadata: this.info.metadata, nodes: this.info.nodes, metrics: this.info.metrics }, null, 2) + '\n';
      await writeFile(join(this.stateDir, 'cluster.json'), text, { mode: 0o600 });
      // `mode` applies only to a file writeFile creates: one left by an earlier cluster keeps its own.
      await chmod(join(this.stateDir, 'cluster.json'), 0o600);
    }
    await this.lock.update({
      controller: this.info?.controller,
      console: this.info?.console,
      children: [...this.children].map(([child, identity]) => ({ pid: child.pid!, process: identity })),
      created: [...this.created],
    });
  }

  private spawn(role: string, args: string[]): Promise<Member> {
    if (this.stopped !== null) return Promise.reject(new SatchelError('UNAVAILABLE', `the cluster is stopping: no new ${role}`));
    const started = this.spawnNow(role, args);
    this.starting.add(started);
    void started.finally(() => this.starting.delete(started)).catch(() => {});
    return started;
  }

  /** A new log file, logs/<role>-<n>.log: numbered by spawn, never one already there (a restart's, or kept). */
  private openLog(role: string): { log: string; fd: number } {
    for (;;) {
      const name = join('logs', `${role}-${this.spawned++}.log`);
      try {
        const fd = openSync(join(this.stateDir, name), 'wx', 0o600);
        this.created.add(name);
        return { log: join(this.stateDir, name), fd };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
  }

  private async spawnNow(role: string, args: string[]): Promise<Member> {
    const { log, fd } = this.openLog(role);
    const child = fork(CLI, args, {
      stdio: ['ignore', fd, fd, 'ipc'],
      env: { ...(role === 'storage-node' ? STORAGE_NODE_ENV : {}), ...process.env, ...this.options.env },
      execArgv: role === 'storage-node' ? process.execArgv : [...process.execArgv, ...CONTROL_PLANE_V8_FLAGS],
    });
    closeSync(fd);
    this.children.set(child, child.pid === undefined ? undefined : processIdentity(child.pid));
    child.once('exit', () => {
      this.children.delete(child);
      if (this.stopped === null) void this.persist().catch(() => {});
    });
    void this.persist().catch(() => {});
    const ready = await new Promise<ReadyMessage>((resolve, reject) => {
      const timer = setTimeout(() => fail(`${role} did not start within ${READY_TIMEOUT_MS} ms`, false), READY_TIMEOUT_MS);
      const fail = (what: string, exited: boolean) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.kill('SIGKILL');
        const named = (error: SatchelError) => {
          if (!(error instanceof PortInUseError)) failedLogs.set(error, relative(this.stateDir, log));
          reject(error);
        };
        readFile(log, 'utf8').then(
          (text) => named(startError(what, log, text, exited)),
          () => named(new SatchelError('UNAVAILABLE', `${what} (its log: ${log})`)),
        );
      };
      const onMessage = (message: unknown) => {
        const m = message as ReadyMessage;
        if (m?.type !== 'ready') return;
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(m);
      };
      const onExit = (code: number | null, signal: string | null) => fail(`${role} exited during start (${signal === null ? `code ${code}` : `signal ${signal}`})`, true);
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    const member: Member = { role, child, ready, log };
    this.members.push(member);
    child.once('exit', () => this.exitedOnItsOwn(member));
    if (role === 'controller') this.serveProvisioner(child);
    this.options.onReady?.(ready);
    return member;
  }

  /** A process that exited while the cluster runs (killed by PID, crashed): a node is marked down. */
  private exitedOnItsOwn(member: Member): void {
    if (this.stopped !== null || !this.members.includes(member) || member.node === undefined) return;
    member.node.frozen = false;
    this.setNodeState(member.node.id, 'down');
    void this.persist().catch(() => {});
  }

  private async shutdown(keepLogs: boolean, keepLog?: string): Promise<void> {
    await Promise.allSettled([...this.starting]);
    // Nodes first, controller last, so nobody logs errors about members that left before them.
    for (const member of [...this.members].reverse()) await stopChild(member.child);
    await Promise.all([...this.children.keys()].map((child) => stopChild(child)));
    this.cleaning = true;
    await this.persisting;
    // Only what this cluster created (or took over from a gone one): a folder that was there, a secret someone
    // put there, another run's kept logs stay.
    const kept = (path: string) => (keepLogs && isLog(path)) || (keepLog !== undefined && (path === keepLog || keepLog.startsWith(path + sep)));
    for (const path of [...this.created].reverse()) {
      if (path !== '.' && !kept(path)) await rm(join(this.stateDir, path), { recursive: true, force: true });
    }
    await this.lock.release();
    if (this.created.has('.')) await removeEmptyFolders(this.stateDir, this.madeDir);
  }
}

const isLog = (path: string) => path === 'logs' || path.startsWith(`logs${sep}`);

/** The log (relative to the state folder) an error of a failed start names: kept when the rest goes. */
const failedLogs = new WeakMap<object, string>();

/**
 * Why a process did not start, from its log: its own `satchel: …` lines (not the usage text after them), or the
 * log's last lines when it printed none. A port in use comes back as a PortInUseError, for the caller to name
 * its own flag.
 */
function startError(what: string, log: string, text: string, exited: boolean): SatchelError {
  const said = exited ? satchelLines(text) : [];
  const port = said.length > 0 ? PortInUseError.parse(said.join('\n')) : undefined;
  if (port !== undefined) return port;
  const lines = said.length > 0 ? said : text.trimEnd().split('\n').slice(-15);
  return new SatchelError('UNAVAILABLE', `${what}: ${lines.join('\n  ')}\n  (its log: ${log})`);
}

/** The error lines the CLI printed (`satchel: message`, maybe on several lines, then a blank line or the end). */
function satchelLines(text: string): string[] {
  const lines = text.split('\n');
  const found: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('satchel: ')) continue;
    found.push(lines[i]!.slice('satchel: '.length));
    while (i + 1 < lines.length && lines[i + 1] !== '' && !lines[i + 1]!.startsWith('{') && !lines[i + 1]!.startsWith('Usage:')) found.push(lines[++i]!);
  }
  return found;
}

/** rmdir stateDir, then each parent up to `top` while they are empty; never their contents. */
async function removeEmptyFolders(dir: string, top: string | undefined): Promise<void> {
  for (let folder = dir; ; folder = resolve(folder, '..')) {
    try {
      await rmdir(folder);
    } catch {
      return; // not empty, or gone
    }
    if (top === undefined || folder === top || !folder.startsWith(top + sep)) return;
  }
}

/** Resolves once each port can be bound on 127.0.0.1 again, or at the deadline (the start then says why). */
async function portsFree(ports: number[], deadline: number): Promise<void> {
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

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Stops a child and waits for its exit: `signal`, then SIGCONT (a frozen process gets a SIGTERM only once
 * resumed; SIGCONT to a running one does nothing), then SIGKILL after 5 s.
 */
function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!running(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
    if (signal !== 'SIGKILL' && signal !== 'SIGSTOP') child.kill('SIGCONT');
  });
}
