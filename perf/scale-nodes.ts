/**
 * `satchel bench scale`'s simulated storage nodes: each one a TCP listener on 127.0.0.1 speaking enough of the
 * data-plane frame protocol (proto's FrameDecoder and FrameWriter) to take what the controller sends a node —
 * HELLO, ANNOUNCE, DROP_JOB, LIMIT_JOB, and a drain's LIST (an empty page: the model holds no keys) — and a
 * control-plane link that registers and reports like storage-node/controller-link.ts (RegisterNode over proto's
 * ControlClient, grpc-js as real nodes, then a report every `reportMs` on a ReportNodes stream), with figures from the model
 * (scale-model.ts). Many live in this process; the fleet is also the provisioner the controller's autoscaler
 * launches and removes nodes through (LocalCluster's `provision`).
 */
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { CONTROLLER_SERVICE, ControlClient, MessageStreamClient, REPORT_NODES, type SharedSessions } from '../proto/grpc.ts';
import {
  AnnounceFlag,
  type ControllerMethods,
  DROP_MOVED,
  decodeAnnounceBody,
  encodeKeyList,
  FrameDecoder,
  FrameWriter,
  type NodeReport,
  type NodeReportReply,
  Op,
  SatchelError,
  Status,
  type Tier,
} from '../proto/index.ts';
import { type ModelJob, NodeModel } from './scale-model.ts';
import { LatencyRecorder } from './stats.ts';

export interface FleetOptions {
  /** The controller's gRPC address, and the admin token nodes present (cluster.json `adminToken`). */
  controller: string;
  adminToken: string;
  capacity: Record<Tier, number>;
  bandwidth: Record<Tier, number>;
  /** Real ms between a node's reports (a real node: 1000). */
  reportMs: number;
  /**
   * Nodes whose report streams share one HTTP/2 connection (1: a connection each, as real nodes; at most 64, the
   * streams the controller takes on one). A node holds a listener and a report connection, the controller the
   * other end of each and more: 10,000 nodes with a connection each are past this machine's 20,000 open files.
   */
  nodesPerConnection: number;
  /** The jobs the driver registered, by id (a node learns its jobs' ids from ANNOUNCE, their figures here). */
  jobs: ReadonlyMap<string, ModelJob>;
  /** Simulated ms since the run started. */
  now(): number;
}

/** What the fleet counted: reports answered and failed, what the controller sent nodes, what moves held. */
export interface FleetCounters {
  reports: number;
  reportFailures: Map<string, number>;
  announces: number;
  drops: number;
  moves: number;
  limits: number;
  lists: number;
  /** Bytes the model says moved jobs held on the nodes they moved off (DROP_JOB with DROP_MOVED). */
  bytesMoved: number;
  launched: number;
  removed: number;
}

interface SimNode {
  model: NodeModel;
  server: net.Server;
  sockets: Set<net.Socket>;
  address: string;
  bootId: string;
  reports: MessageStreamClient<NodeReport, NodeReportReply>;
  timer: NodeJS.Timeout | null;
  lastReportAt: number;
  reporting: boolean;
}

export class SimFleet {
  private readonly nodes = new Map<string, SimNode>();
  private readonly next: Record<Tier, number> = { dram: 0, ssd: 0, hdd: 0 };
  private closed = false;
  /** The report connections nodes share (`nodesPerConnection` > 1), one per group of nodes in launch order. */
  private readonly reportConnections: ReportConnection[] = [];
  private launchedCount = 0;
  readonly reportLatency = new LatencyRecorder();
  readonly counters: FleetCounters = {
    reports: 0,
    reportFailures: new Map(),
    announces: 0,
    drops: 0,
    moves: 0,
    limits: 0,
    lists: 0,
    bytesMoved: 0,
    launched: 0,
    removed: 0,
  };

  constructor(private readonly options: FleetOptions) {}

  /** Nodes running now, by tier. */
  countByTier(): Record<Tier, number> {
    const counts: Record<Tier, number> = { dram: 0, ssd: 0, hdd: 0 };
    for (const node of this.nodes.values()) counts[node.model.tier]++;
    return counts;
  }

  /** Bytes the nodes hold now by the model, by tier (what their next reports say). */
  get size(): number {
    return this.nodes.size;
  }

  /** Starts a node of `tier`, registers it, and has it report from then on; resolves with its id. */
  async launch(tier: Tier): Promise<string> {
    if (this.closed) throw new SatchelError('UNAVAILABLE', 'the simulation is stopping');
    const id = `sim-${tier}-${++this.next[tier]}`;
    const model = new NodeModel(id, tier, this.options.capacity[tier], this.options.bandwidth[tier]);
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => this.serve(model, socket, sockets));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const node: SimNode = {
      model,
      server,
      sockets,
      address,
      bootId: randomBytes(8).toString('hex'),
      reports: new MessageStreamClient(REPORT_NODES, this.options.controller, undefined, this.reportConnection()),
      timer: null,
      lastReportAt: performance.now(),
      reporting: false,
    };
    this.nodes.set(id, node);
    try {
      await this.register(node);
    } catch (error) {
      await this.stopNode(node);
      throw error;
    }
    // Reports of nodes started together spread over the period, as real nodes' do (they start at different times).
    const first = setTimeout(() => {
      node.timer = setInterval(() => void this.report(node), this.options.reportMs);
      void this.report(node);
    }, Math.random() * this.options.reportMs);
    node.timer = first;
    this.counters.launched++;
    return id;
  }

  /** Stops a node (the provisioner's remove, after the controller drained it). */
  async remove(nodeId: string): Promise<void> {
    const node = this.nodes.get(nodeId);
    if (node === undefined) throw new SatchelError('BAD_REQUEST', `no simulated node ${nodeId}`);
    await this.stopNode(node);
    this.counters.removed++;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.nodes.values()].map((node) => this.stopNode(node)));
    for (const connection of this.reportConnections) connection.close();
  }

  /** The shared connection the next node reports on; none (a connection of its own) with `nodesPerConnection` 1. */
  private reportConnection(): SharedSessions | undefined {
    const group = this.options.nodesPerConnection;
    const index = this.launchedCount++;
    if (group <= 1) return undefined;
    const at = Math.floor(index / group);
    let connection = this.reportConnections[at];
    if (connection === undefined) {
      connection = new ReportConnection(this.options.controller);
      this.reportConnections[at] = connection;
    }
    return connection;
  }

  private async stopNode(node: SimNode): Promise<void> {
    this.nodes.delete(node.model.id);
    if (node.timer !== null) {
      clearTimeout(node.timer);
      clearInterval(node.timer);
    }
    node.reports.close();
    for (const socket of node.sockets) socket.destroy();
    await new Promise<void>((resolve) => node.server.close(() => resolve()));
  }

  /**
   * RegisterNode on a connection of its own, as a real node (its own process) has, closed once answered: a real
   * node's closes after 30 s unused (storage-node/controller-link.ts), and ten thousand launched at once would
   * hold ten thousand.
   */
  private async register(node: SimNode): Promise<void> {
    const { model } = node;
    const client = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, this.options.controller, 10_000, undefined, { own: true });
    try {
      await client.call('RegisterNode', {
        token: this.options.adminToken,
        node: {
          id: model.id,
          tier: model.tier,
          address: node.address,
          capacity: model.capacity,
          bandwidth: model.bandwidth,
          bootId: node.bootId,
        },
      });
    } finally {
      client.close();
    }
  }

  /** One report, as controller-link.ts sends it; a slow controller makes the node skip a beat, not pile calls up. */
  private async report(node: SimNode): Promise<void> {
    if (node.reporting || !this.nodes.has(node.model.id)) return;
    node.reporting = true;
    const now = performance.now();
    const intervalS = (now - node.lastReportAt) / 1000;
    node.lastReportAt = now;
    const figures = node.model.report(this.options.jobs, this.options.now(), intervalS);
    try {
      const reply = await node.reports.send(
        {
          nodeId: node.model.id,
          token: this.options.adminToken,
          bootId: node.bootId,
          latencyP50Us: 0,
          latencyP99Us: 0,
          ...figures,
        },
        10_000,
      );
      this.reportLatency.add((performance.now() - now) * 1000);
      this.counters.reports++;
      if (reply.unknown && this.nodes.has(node.model.id)) await this.register(node);
    } catch (error) {
      const code = error instanceof SatchelError ? error.code : 'ERROR';
      this.counters.reportFailures.set(code, (this.counters.reportFailures.get(code) ?? 0) + 1);
    } finally {
      node.reporting = false;
    }
  }

  /** One connection from the controller (an admin one, or a drain's copy loop): every request answered at once. */
  private serve(model: NodeModel, socket: net.Socket, sockets: Set<net.Socket>): void {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    const writer = new FrameWriter(socket);
    const answer = (id: number, status: number, flags: number, arg: number, body: Uint8Array | null) => {
      writer.frame(status, flags, id, 0, arg, '', body);
    };
    const decoder = new FrameDecoder({
      maxBody: 64 * 1024 * 1024,
      onFrame: (f) => {
        const keyEnd = f.bodyStart + f.keyLength;
        const key = f.buf.toString('utf8', f.bodyStart, keyEnd);
        switch (f.code) {
          case Op.ANNOUNCE: {
            const { placement } = decodeAnnounceBody(f.buf.toString('utf8', keyEnd, f.bodyStart + f.bodyLength));
            model.announce(key, f.arg, placement, (f.flags & AnnounceFlag.REPLICATED) !== 0);
            this.counters.announces++;
            return answer(f.id, Status.OK, 0, 0, null);
          }
          case Op.DROP_JOB: {
            const held = model.drop(key, this.options.jobs.get(key), this.options.now());
            this.counters.drops++;
            if ((f.arg & DROP_MOVED) !== 0) {
              this.counters.moves++;
              this.counters.bytesMoved += held;
            }
            return answer(f.id, Status.OK, 0, 0, null);
          }
          case Op.LIMIT_JOB:
            this.counters.limits++;
            if (f.arg === 1) model.limited.add(key);
            else model.limited.delete(key);
            return answer(f.id, Status.OK, 0, 0, null);
          case Op.LIST:
            // The model holds bytes, not keys: a drain's copy loop finds nothing to copy (bytesMoved is the model's).
            this.counters.lists++;
            return answer(f.id, Status.OK, 0, 0, encodeKeyList([]));
          case Op.GET:
          case Op.STAT:
            return answer(f.id, Status.NOT_FOUND, 0, 0, null);
          case Op.PUT:
          case Op.DELETE:
            return answer(f.id, Status.OK, 0, 1, null);
          default:
            // HELLO (any token: the controller's admin one, or a job's), PING.
            return answer(f.id, Status.OK, 0, 0, null);
        }
      },
      onOversize: (f) => answer(f.id, Status.TOO_LARGE, 0, 0, null),
      onError: () => socket.destroy(),
    });
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      writer.flush();
    });
  }
}

/** One HTTP/2 connection to the controller that a group of simulated nodes' report streams share; reopened when it fails. */
class ReportConnection implements SharedSessions {
  private current: http2.ClientHttp2Session | null = null;

  constructor(private readonly address: string) {}

  session(): http2.ClientHttp2Session {
    if (this.current === null || this.current.destroyed || this.current.closed) {
      const session = http2.connect(`http://${this.address}`);
      session.on('error', () => {}); // each stream on it reports its failure
      session.unref();
      this.current = session;
    }
    return this.current;
  }

  close(): void {
    this.current?.destroy();
    this.current = null;
  }
}
