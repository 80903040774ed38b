import type { Logger } from 'pino';
import { CONTROLLER_SERVICE, ControlClient, MessageStreamClient, REPORT_NODES } from '../proto/grpc.ts';
import {
  ADMIN_SUBJECT,
  type ClientTls,
  type ControllerMethods,
  type JobUsage,
  type NodeInfo,
  type NodeReport,
  type NodeReportReply,
  retry,
  signToken,
  TRANSIENT_CODES,
} from '../proto/index.ts';
import { TRAFFIC_IN, TRAFFIC_OPS, TRAFFIC_OUT, TRAFFIC_SERVICE_US } from './metrics.ts';
import type { StorageServer } from './server.ts';

export interface ControllerLinkOptions {
  controller: string;
  secret: Uint8Array;
  logger: Logger;
  node: NodeInfo;
  /** How often the node reports at most (default 1 s; more often when the controller's lease is short). */
  reportEveryMs?: number;
  /** The controller serves TLS: its certificate is checked against this CA. */
  tls?: ClientTls;
  /** Report the process's CPU (default true; false for nodes sharing a process: StorageNodeOptions.reportCpu). */
  reportCpu?: boolean;
}

/**
 * A node's link to the controller: registration (retried while the controller is not up yet), then a report
 * every second with CPU, bytes in and out, operations, and the jobs it holds (bytes, epoch, and each job's own
 * requests: ops, bytes in and out, service time). A controller that
 * answers "unknown node" (it lost its state, or knows another incarnation) gets a fresh registration. Every
 * answer renews the node's lease (server.ts `renewLease`), counted from when the call was sent; reports come at
 * least three times per lease, so one lost report does not let it lapse.
 *
 * A job refused FULL for want of room gets a report out within REPORT_SOON_MS of its first refusal since the
 * last report, not at the next tick: the controller grants growth only on a node's report of FULL, and the
 * function that was refused waits for it.
 */
/** How soon after a job's first FULL refusal (since the last report) a report goes out. */
export const REPORT_SOON_MS = 50;

/** A report (and registration) unanswered this long has failed; the next one is sent on a fresh stream. */
const REPORT_TIMEOUT_MS = 5_000;

/**
 * Registration's retry (proto's one policy, backoff.ts): 200 ms after the first failure, doubling to 2 s, each
 * with jitter, so nodes started together do not call a controller coming up in lockstep. UNAVAILABLE (the
 * controller not up yet) and TIMEOUT (up but slow: RegisterNode also places jobs waiting for a node) are retried;
 * a retry is harmless, as the controller takes a registration of a known id and boot id again as the same node.
 */
export const REGISTER_RETRY = { baseMs: 200, capMs: 2_000, retryOn: TRANSIENT_CODES } as const;

/** The unary control connection (RegisterNode; ReportNode with an older controller) closes after this long unused. */
const CONTROL_IDLE_MS = 30_000;

export class ControllerLink {
  private readonly client: ControlClient<ControllerMethods>;
  /** Reports on one stream (ReportNodes); the unary ReportNode when the controller does not have it. */
  private readonly reports: MessageStreamClient<NodeReport, NodeReportReply>;
  private readonly token: string;
  private timer: NodeJS.Timeout | null = null;
  private lastCpu = process.cpuUsage();
  private lastAt = performance.now();
  private reporting = false;
  private server: StorageServer | null = null;
  private everyMs: number;
  /** A report asked for sooner than the tick (a FULL refusal), debounced. */
  private soon: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly options: ControllerLinkOptions) {
    // Closed when idle: after RegisterNode the reports go on their own stream, and a connection each node held
    // idle would be one more of the controller's sockets per node (20,000 at 10,000 nodes, bench scale).
    this.client = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, options.controller, REPORT_TIMEOUT_MS, options.tls, {
      idleMs: CONTROL_IDLE_MS,
    });
    this.reports = new MessageStreamClient(REPORT_NODES, options.controller, options.tls);
    this.token = signToken(options.secret, ADMIN_SUBJECT);
    this.everyMs = options.reportEveryMs ?? 1_000;
  }

  /** Registers the node, in at most `attempts` calls (REGISTER_RETRY). */
  async register(attempts = 20): Promise<void> {
    const reply = await retry(
      async () => {
        const sentAt = Date.now();
        const reply = await this.client.call('RegisterNode', { node: this.options.node, token: this.token });
        this.leaseGranted(sentAt, reply.leaseMs);
        return reply;
      },
      {
        ...REGISTER_RETRY,
        attempts,
        onRetry: (error, attempt, delayMs) =>
          this.options.logger.warn(
            { err: error, attempt, delayMs: Math.round(delayMs) },
            'registering with the controller failed; retrying',
          ),
      },
    );
    this.options.logger.info(
      { controller: this.options.controller, bootId: this.options.node.bootId, leaseMs: reply.leaseMs },
      'registered with controller',
    );
  }

  /** The node's server: reports describe it, and leases are granted to it (also those of registration). */
  attach(server: StorageServer): void {
    this.server = server;
    server.onFullRefusal = () => this.reportSoon();
  }

  /** A report within REPORT_SOON_MS (one for any number of asks meanwhile), or right after one in progress. */
  private reportSoon(): void {
    if (this.soon !== null || this.closed) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      if (this.reporting) this.reportSoon();
      else void this.report();
    }, REPORT_SOON_MS);
    this.soon.unref();
  }

  startReporting(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = setInterval(() => void this.report(), this.everyMs);
    this.timer.unref();
  }

  /** A registration or report sent at `sentAt` was answered with a lease of `leaseMs` (0: none, an old controller). */
  private leaseGranted(sentAt: number, leaseMs: number | undefined): void {
    if (leaseMs === undefined || !(leaseMs > 0)) return;
    this.server?.renewLease(sentAt, leaseMs);
    const every = Math.max(100, Math.min(this.options.reportEveryMs ?? 1_000, Math.floor(leaseMs / 3)));
    if (every !== this.everyMs) {
      this.everyMs = every;
      if (this.timer !== null) this.startReporting();
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.soon !== null) clearTimeout(this.soon);
    this.soon = null;
    if (this.server !== null) this.server.onFullRefusal = null;
    this.client.close();
    this.reports.close();
  }

  private async report(): Promise<void> {
    const server = this.server;
    if (server === null || this.reporting) return; // a slow controller: skip a beat rather than pile up calls
    this.reporting = true;
    try {
      const sentAt = Date.now();
      const now = performance.now();
      const cpu = process.cpuUsage(this.lastCpu);
      const elapsedMicros = (now - this.lastAt) * 1000;
      this.lastCpu = process.cpuUsage();
      this.lastAt = now;
      const { counters, engine } = server;
      const latency = server.metrics.takeLatency(); // 0 on the wire means "no ops this interval"
      // From here on a job's next FULL asks for another report (this one carries the refusals counted so far).
      server.takeFullRefused();
      const reply = await this.send({
        nodeId: this.options.node.id,
        token: this.token,
        cpu: elapsedMicros > 0 && this.options.reportCpu !== false ? (cpu.user + cpu.system) / elapsedMicros : 0,
        bytesIn: counters.bytesIn,
        bytesOut: counters.bytesOut,
        ops: counters.ops,
        // Kept copies (engine.ts) give way to any write: not counted as held, or they would look like load.
        used: engine.used - (engine.keptBytes ?? 0),
        capacity: engine.capacity,
        latencyP50Us: latency.p50Us ?? 0,
        latencyP99Us: latency.p99Us ?? 0,
        bootId: this.options.node.bootId ?? '',
        jobs: jobsHeld(server),
      });
      this.leaseGranted(sentAt, reply.leaseMs);
      if (reply.unknown) {
        this.options.logger.warn('controller does not know this node: registering again');
        await this.register(1);
      }
    } catch (error) {
      this.options.logger.debug({ err: error }, 'report failed');
    } finally {
      this.reporting = false;
    }
  }

  /**
   * A report on the stream; on the unary call when the controller has no stream (an older one). A stream that
   * failed is opened again for the next report.
   */
  private async send(report: NodeReport): Promise<NodeReportReply> {
    if (!this.reports.unimplemented) {
      try {
        return await this.reports.send(report, REPORT_TIMEOUT_MS);
      } catch (error) {
        if (!this.reports.unimplemented) throw error;
        this.options.logger.info('the controller takes reports one call each (no ReportNodes stream)');
      }
    }
    return this.client.call('ReportNode', report);
  }
}

/**
 * Every job the node serves or answers STALE for (its epoch), with the bytes it holds, the writes refused FULL
 * for want of room, and its requests since the node started (ops, bytes in and out, service time: metrics.ts
 * `newJobTraffic`); and bytes of a job no announcement covers (none should be: the controller then drops them).
 */
function jobsHeld(server: StorageServer): JobUsage[] {
  const usage = server.engine.usageByJob();
  const jobs: JobUsage[] = [];
  const full = server.fullRefusals;
  for (const [jobId, job] of server.jobs.entries()) {
    const refusals = full.get(jobId);
    jobs.push({
      jobId,
      bytes: usage.get(jobId) ?? 0,
      epoch: job.epoch,
      moved: job.moved,
      ...(refusals === undefined ? {} : { fullRefusals: refusals }),
      ops: job.traffic[TRAFFIC_OPS]!,
      bytesIn: job.traffic[TRAFFIC_IN]!,
      bytesOut: job.traffic[TRAFFIC_OUT]!,
      serviceUs: job.traffic[TRAFFIC_SERVICE_US]!,
    });
    usage.delete(jobId);
  }
  for (const [jobId, bytes] of usage) jobs.push({ jobId, bytes, epoch: 0, moved: false });
  return jobs;
}
