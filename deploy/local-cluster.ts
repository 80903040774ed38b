/**
 * A whole cluster on this machine as child processes: controller (with console), metadata, storage nodes.
 * `satchel up` runs one; tests and benchmarks start one on port 0 and stop it when done. Every process is
 * forked with an IPC channel: it reports its bound address over it, and exits if the channel closes.
 *
 * This file keeps the members (which process is which node; starts, restarts, freezes) and the order of things.
 * A role's process is child-process.ts, its command line role-args.ts, the state folder's files cluster-files.ts,
 * ports.ts finds the ports a restarted process gets back, process-restarts.ts when a dead process is started again,
 * and local-cluster-options.ts has the options.
 */
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultTenantKey } from '../controller/index.ts';
import type { Tier } from '../proto/index.ts';
import { ADMIN_SUBJECT, Backoff, SatchelError, signToken, VIEWER_SUBJECT } from '../proto/index.ts';
import { forkRole, readyOf, running, stopChild, waitStopped } from './child-process.ts';
import { type ClusterInfoFile, StateFiles } from './cluster-files.ts';
import type { LocalClusterOptions } from './local-cluster-options.ts';
import type { ProvisionReply, ProvisionRequest } from './local-provisioner.ts';
import { PortInUseError } from './port-in-use.ts';
import { portOf, portOfUrl, portsFree } from './ports.ts';
import { METADATA_PREFIX, metadataIndexOf, ProcessRestarts } from './process-restarts.ts';
import { controllerArgs, metadataArgs, type NodeLaunch, nodeArgs } from './role-args.ts';
import type { ReadyMessage } from './roles.ts';
import { loadOrCreateSecret } from './secret.ts';
import { processIdentity, StateLock } from './state-lock.ts';
import { TIER_PROFILES } from './tiers.ts';

interface Member {
  role: string;
  child: ChildProcess;
  ready: ReadyMessage;
  log: string;
  /** A storage node's: what startNode needs to start it again as the same node. */
  node?: NodeSpec;
  /** When it started (ms since 1970): the restart backoff's reset. */
  startedAt: number;
  /** The controller or a metadata server being stopped on purpose (restartController, restartMetadata): not restarted. */
  stopping?: boolean;
}

/**
 * A storage node as LocalCluster started it: the same id, ports, tier, capacity and folder (removed with it) on
 * every start.
 */
interface NodeSpec extends NodeLaunch {
  frozen: boolean;
  /** Stopped on purpose (killNode, removeNode): not restarted by `restartProcesses` until a startNode. */
  keptDown?: boolean;
  /** When it last started (ms since 1970), and the startNode under way, if one is. */
  startedAt?: number;
  started?: Promise<unknown>;
}

export const DEFAULT_DRAM_CAPACITY = TIER_PROFILES.dram.capacity;

/** startNode waits this long at most for a node's ports to be free again. */
const PORT_RETRY_MS = 5_000;
/** Between its starts while they are held (a start can lose a port freed a moment ago to another process). */
const PORT_BACKOFF = new Backoff({ baseMs: 100, capMs: 500 });

/** Clusters started in this process and not yet stopped (`stopLocalClusters`). */
const live = new Set<LocalCluster>();

/**
 * Stops every cluster this process started and has not stopped: what an interrupted command (a benchmark on
 * Ctrl-C, perf/main.ts) does before it exits, so their processes and folders do not outlive it.
 */
export async function stopLocalClusters(): Promise<void> {
  await Promise.allSettled([...live].map((cluster) => cluster.stop()));
}

export class LocalCluster {
  private readonly members: Member[] = [];
  private stopped: Promise<void> | null = null;
  /** Processes being started: a stop waits for them, so none is left running (an autoscaler launch racing it). */
  private readonly starting = new Set<Promise<unknown>>();
  /** Every forked process still running, with its identity for the lock (state-lock.ts). */
  private readonly children = new Map<ChildProcess, string | undefined>();
  /** What the cluster created in stateDir: cluster.json and the lock written, logs, data folders. */
  private readonly files: StateFiles;
  /** `restartProcesses`' timers; what they start is reported with the new process's pid. */
  private readonly restarts = new ProcessRestarts((event) =>
    this.options.onRestart?.({ ...event, pid: event.error === undefined ? this.restartedPid(event.id) : undefined }),
  );
  info!: ClusterInfoFile;

  private constructor(
    readonly stateDir: string,
    lock: StateLock,
    /** The topmost folder this cluster made to hold stateDir (stateDir itself or an ancestor). */
    madeDir: string | undefined,
    private readonly options: LocalClusterOptions,
  ) {
    this.files = new StateFiles(stateDir, lock, madeDir, () => ({
      info: this.info,
      children: [...this.children].map(([child, identity]) => ({ pid: child.pid!, process: identity })),
      pids: {
        controller: this.members.find((m) => m.role === 'controller')?.child.pid ?? null,
        metadata: (this.info?.metadata ?? []).map(
          (address) => this.members.find((m) => m.role === 'metadata' && m.ready.address === address)?.child.pid ?? null,
        ),
      },
    }));
  }

  /**
   * Locks the state folder (StateDirBusyError, having touched nothing, while a live cluster holds it), then starts
   * every process. A start that fails stops what it started and removes what it created, but the logs.
   */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const temporary = options.stateDir === undefined ? await mkdtemp(join(tmpdir(), 'satchel-')) : undefined;
    const lock = await StateLock.acquire(temporary ?? resolve(options.stateDir!));
    const cluster = new LocalCluster(lock.dir, lock, temporary ?? lock.madeDir, options);
    live.add(cluster);
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

  /** PID of the (first) metadata server process (fault tests kill it, then call restartMetadata). */
  get metadataPid(): number {
    return this.metadataMember(0).child.pid!;
  }

  /** PIDs of the metadata servers, in cluster.json's order (restartMetadata's `index`). */
  get metadataPids(): number[] {
    return this.info.metadata.map((_, i) => this.metadataMember(i).child.pid!);
  }

  /** PIDs of every running process of the cluster. */
  get pids(): number[] {
    return this.members.filter((m) => running(m.child)).map((m) => m.child.pid!);
  }

  /** Starts one more storage node of a tier (disk tiers keep their data in stateDir/data/<tier>-<n>). */
  async addNode(tier: Tier = 'dram', capacity?: number): Promise<ReadyMessage> {
    const bytes = capacity ?? this.options[`${tier}Capacity`] ?? TIER_PROFILES[tier].capacity;
    const controller = (await this.options.nodeController?.(this.info.controller)) ?? this.info.controller;
    const spec: NodeSpec = {
      id: '',
      tier,
      capacity: bytes,
      port: 0,
      metricsPort: 0,
      respPort: 0,
      dataPath: tier === 'dram' ? undefined : this.files.newDataPath(tier),
      controller,
      frozen: false,
    };
    const member = await this.spawn('storage-node', this.nodeArgs(spec));
    // Started on port 0 with a generated id: what it got is what every later start asks for.
    spec.id = member.ready.id!;
    spec.port = portOf(member.ready.address);
    spec.metricsPort = portOfUrl(member.ready.metrics);
    spec.respPort = member.ready.resp === undefined ? 0 : portOf(member.ready.resp);
    member.node = spec;
    this.info.nodes.push({
      id: spec.id,
      tier,
      address: member.ready.address,
      pid: member.child.pid!,
      metrics: member.ready.metrics,
      resp: member.ready.resp,
    });
    if (member.ready.metrics !== undefined) this.info.metrics.push(member.ready.metrics);
    await this.persist();
    return member.ready;
  }

  /** Stops one storage node (SIGTERM, as a clean stop) and deletes its data folder; it leaves the cluster. */
  async removeNode(nodeId: string): Promise<void> {
    await this.settleStart(nodeId);
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
    await this.settleStart(id);
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
    if (running(old.child))
      throw new SatchelError('BAD_REQUEST', `storage node ${id} is still running (pid ${old.child.pid}): kill it first`);
    if (spec.started !== undefined) throw new SatchelError('BAD_REQUEST', `storage node ${id} is being started already`);
    spec.keptDown = false;
    const started = this.startAgain(old, spec);
    spec.started = started;
    try {
      return await started;
    } finally {
      spec.started = undefined;
    }
  }

  /** Node `id` is to stay down (killNode, removeNode): a restart is not started, and one under way is waited for. */
  private async settleStart(id: string): Promise<void> {
    const spec = this.members.find((m) => m.node?.id === id)?.node;
    if (spec === undefined) return;
    spec.keptDown = true;
    await spec.started?.catch(() => {});
  }

  private async startAgain(old: Member, spec: NodeSpec): Promise<ReadyMessage> {
    const id = spec.id;
    const deadline = Date.now() + PORT_RETRY_MS;
    let member: Member;
    for (let failures = 1; ; failures++) {
      await portsFree([spec.port, spec.metricsPort, spec.respPort], deadline);
      try {
        member = await this.spawn('storage-node', this.nodeArgs(spec));
        break;
      } catch (error) {
        if (!(error instanceof PortInUseError) || Date.now() >= deadline) throw error;
        await sleep(PORT_BACKOFF.delay(failures));
      }
    }
    if (member.ready.id !== spec.id || member.ready.address !== old.ready.address) {
      this.forget(member);
      await stopChild(member.child, 'SIGKILL');
      throw new SatchelError(
        'UNAVAILABLE',
        `storage node ${id} came back as ${member.ready.id} at ${member.ready.address}, not at ${old.ready.address}`,
      );
    }
    member.node = spec;
    spec.frozen = false;
    spec.startedAt = Date.now();
    this.forget(old);
    const entry = this.info.nodes.find((n) => n.id === id);
    if (entry !== undefined) {
      entry.pid = member.child.pid!;
      delete entry.state;
    }
    await this.persist();
    return member.ready;
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
    await waitStopped(member.child.pid!);
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
      const elsewhere = this.options.provision;
      const work =
        request.action === 'launch'
          ? (elsewhere?.launch(request.tier) ?? this.addNode(request.tier).then((ready) => ready.id))
          : (elsewhere?.remove(request.nodeId ?? '') ?? this.removeNode(request.nodeId ?? '')).then(() => request.nodeId);
      work.then(
        (nodeId) => controller.connected && controller.send({ type: 'provisioned', id: request.id, nodeId } satisfies ProvisionReply),
        (error: unknown) =>
          controller.connected &&
          controller.send({ type: 'provisioned', id: request.id, error: (error as Error).message } satisfies ProvisionReply),
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

  private async boot(): Promise<void> {
    await this.persist(); // the lock lists what this cluster created (or inherited) from the start
    await this.files.clearTakenOver();
    this.files.claim('logs');
    await mkdir(join(this.stateDir, 'logs'), { recursive: true });
    this.files.claim('secret');
    const secret = await loadOrCreateSecret(this.files.secretFile);
    // Tokens and keys live here: the folder is the owner's only, and so are files an earlier cluster left.
    await chmod(this.stateDir, 0o700);
    await chmod(this.files.secretFile, 0o600);
    this.files.claim('controller');
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
    const metadata = await Promise.all(
      Array.from({ length: this.options.metadata ?? 1 }, () => this.spawn('metadata', this.metadataArgs(0, 0))),
    );
    for (const server of metadata) {
      this.info.metadata.push(server.ready.address);
      if (server.ready.metrics !== undefined) this.info.metrics.push(server.ready.metrics);
    }
    const counts: [Tier, number][] = [
      ['dram', this.options.dram ?? 1],
      ['ssd', this.options.ssd ?? 0],
      ['hdd', this.options.hdd ?? 0],
    ];
    await Promise.all(counts.flatMap(([tier, n]) => Array.from({ length: n }, () => this.addNode(tier))));
    await this.persist();
  }

  private controllerArgs(port: number, consolePort: number): string[] {
    return controllerArgs(this.options, this.files.secretFile, join(this.stateDir, 'controller'), port, consolePort);
  }

  /**
   * Stops the controller (SIGKILL: a crash; SIGTERM: a clean stop) and starts it again on the same ports with
   * the same state folder. Fault tests use it; the rest of the cluster keeps running meanwhile.
   */
  async restartController(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const old = this.member('controller');
    old.stopping = true;
    await stopChild(old.child, signal);
    await this.startControllerAgain(old);
  }

  /** The controller again, on its ports and with its state folder, in place of `old` (exited). */
  private async startControllerAgain(old: Member): Promise<void> {
    const controller = await this.spawn('controller', this.controllerArgs(portOf(this.info.controller), portOfUrl(this.info.console)));
    // By identity, not by an index from before the await: a node started meanwhile moves the others.
    this.forget(old);
    await this.persist();
    if (controller.ready.address !== this.info.controller) {
      controller.stopping = true; // this start failed: its own retry follows, not a restart of the process
      await stopChild(controller.child, 'SIGKILL');
      throw new SatchelError('UNAVAILABLE', `the controller came back at ${controller.ready.address}, not ${this.info.controller}`);
    }
  }

  /**
   * Stops the metadata server (SIGKILL: a crash; SIGTERM: a clean stop; a process already killed by PID just
   * gets restarted) and starts it again on the same gRPC and metrics ports: tickets name its address, so clients
   * holding one reach the new process. It comes back empty and announces itself to the controller, which sends
   * it every placement before it answers clients (metadata/README.md). Needs the controller up.
   */
  async restartMetadata(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL', index = 0): Promise<void> {
    const old = this.metadataMember(index);
    old.stopping = true;
    await stopChild(old.child, signal);
    await this.startMetadataAgain(old);
  }

  /** A metadata server again, on `old`'s ports (exited), in its place. */
  private async startMetadataAgain(old: Member): Promise<void> {
    const address = old.ready.address;
    const metadata = await this.spawn('metadata', this.metadataArgs(portOf(address), portOfUrl(old.ready.metrics)));
    this.forget(old);
    await this.persist();
    if (metadata.ready.address !== address) {
      metadata.stopping = true; // this start failed: its own retry follows, not a restart of the process
      await stopChild(metadata.child, 'SIGKILL');
      throw new SatchelError('UNAVAILABLE', `metadata came back at ${metadata.ready.address}, not ${address}`);
    }
  }

  /** The `index`-th metadata server in cluster.json's order (a restarted one keeps its place). */
  private metadataMember(index: number): Member {
    const address = this.info.metadata[index];
    const member = this.members.find((m) => m.role === 'metadata' && m.ready.address === address);
    if (member === undefined) throw new SatchelError('BAD_REQUEST', `no metadata server ${index} in this cluster`);
    return member;
  }

  private metadataArgs(port: number, metricsPort: number): string[] {
    return metadataArgs(this.options, this.files.secretFile, this.info.controller, port, metricsPort);
  }

  private nodeArgs(spec: NodeSpec): string[] {
    return nodeArgs(this.options, this.files.secretFile, spec);
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

  /** Writes cluster.json and the lock's record, after any write under way (cluster-files.ts). */
  private persist(): Promise<void> {
    return this.files.persist();
  }

  private spawn(role: string, args: string[]): Promise<Member> {
    if (this.stopped !== null) return Promise.reject(new SatchelError('UNAVAILABLE', `the cluster is stopping: no new ${role}`));
    const started = this.spawnNow(role, args);
    this.starting.add(started);
    void started.finally(() => this.starting.delete(started)).catch(() => {});
    return started;
  }

  private async spawnNow(role: string, args: string[]): Promise<Member> {
    const { log, fd } = this.files.openLog(role);
    const child = forkRole(role, args, fd, this.options.env, this.options.controllerHeap);
    this.children.set(child, child.pid === undefined ? undefined : processIdentity(child.pid));
    child.once('exit', () => {
      this.children.delete(child);
      if (this.stopped === null) void this.persist().catch(() => {});
    });
    void this.persist().catch(() => {});
    const ready = await readyOf(child, role, log).catch((error: unknown) => {
      // The log this error names is kept when the failed start removes the rest; a port in use names no log.
      if (!(error instanceof PortInUseError)) failedLogs.set(error as object, relative(this.stateDir, log));
      throw error;
    });
    const member: Member = { role, child, ready, log, startedAt: Date.now() };
    this.members.push(member);
    child.once('exit', () => this.exitedOnItsOwn(member));
    if (role === 'controller') this.serveProvisioner(child);
    this.options.onReady?.(ready);
    return member;
  }

  /**
   * A process that exited while the cluster runs (killed by PID, crashed): a node is marked down. With
   * `restartProcesses` it is started again, unless it was stopped on purpose (killNode); so are the controller and
   * a metadata server, unless restartController or restartMetadata stopped it (they start it themselves).
   */
  private exitedOnItsOwn(member: Member): void {
    if (this.stopped !== null || !this.members.includes(member)) return;
    const restart = this.options.restartProcesses === true;
    if (member.node === undefined) {
      if (!restart || member.stopping === true) return;
      // Not when stopped meanwhile, or started again by a caller already (which replaces the member).
      const wanted = () => this.stopped === null && member.stopping !== true && this.members.includes(member);
      if (member.role === 'controller')
        this.restarts.exited('controller', member.startedAt, wanted, () => this.startControllerAgain(member));
      else if (member.role === 'metadata') {
        const index = this.info.metadata.indexOf(member.ready.address);
        this.restarts.exited(`${METADATA_PREFIX}${index}`, member.startedAt, wanted, () => this.startMetadataAgain(member));
      }
      return;
    }
    const spec = member.node;
    spec.frozen = false;
    this.setNodeState(spec.id, 'down');
    void this.persist().catch(() => {});
    if (!restart || spec.keptDown === true) return;
    // Not when stopped meanwhile, killed or removed on purpose, or started by a caller already.
    const wanted = () =>
      this.stopped === null &&
      spec.keptDown !== true &&
      spec.started === undefined &&
      this.members.find((m) => m.node?.id === spec.id) === member;
    this.restarts.exited(spec.id, spec.startedAt, wanted, () => this.startNode(spec.id));
  }

  /** The pid of what a restart started, by its restart id (process-restarts.ts `describeRestartId`). */
  private restartedPid(id: string): number | undefined {
    if (id === 'controller') return this.controllerPid;
    const metadata = metadataIndexOf(id);
    if (metadata !== null) return this.metadataPids[metadata];
    return this.nodePid(id);
  }

  private async shutdown(keepLogs: boolean, keepLog?: string): Promise<void> {
    live.delete(this);
    await Promise.allSettled([...this.starting]);
    // Nodes first, controller last, so nobody logs errors about members that left before them.
    for (const member of [...this.members].reverse()) await stopChild(member.child);
    await Promise.all([...this.children.keys()].map((child) => stopChild(child)));
    await this.files.remove(keepLogs, keepLog);
  }
}

/** The log (relative to the state folder) an error of a failed start names: kept when the rest goes. */
const failedLogs = new WeakMap<object, string>();
