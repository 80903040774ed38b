import type { Logger } from 'pino';
import { ADMIN_SUBJECT, CONTROLLER_SERVICE, ControlClient, SatchelError, signToken, type ClientTls, type ControllerMethods, type NodeInfo } from '../proto/index.ts';
import type { StorageServer } from './server.ts';

export interface ControllerLinkOptions {
  controller: string;
  secret: Uint8Array;
  logger: Logger;
  node: NodeInfo;
  /** How often the node reports (default 1 s). */
  reportEveryMs?: number;
  /** The controller serves TLS: its certificate is checked against this CA. */
  tls?: ClientTls;
}

/**
 * A node's link to the controller: registration (retried while the controller is not up yet), then a report
 * every second with CPU, bytes in and out, operations and bytes held per job. A controller that answers
 * "unknown node" (it lost its state) gets a fresh registration.
 */
export class ControllerLink {
  private readonly client: ControlClient<ControllerMethods>;
  private readonly token: string;
  private timer: NodeJS.Timeout | null = null;
  private lastCpu = process.cpuUsage();
  private lastAt = performance.now();
  private reporting = false;

  constructor(private readonly options: ControllerLinkOptions) {
    this.client = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, options.controller, 5_000, options.tls);
    this.token = signToken(options.secret, ADMIN_SUBJECT);
  }

  async register(attempts = 20): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.call('RegisterNode', { node: this.options.node, token: this.token });
        this.options.logger.info({ controller: this.options.controller }, 'registered with controller');
        return;
      } catch (error) {
        if (!(error instanceof SatchelError) || error.code !== 'UNAVAILABLE' || attempt >= attempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  }

  startReporting(server: StorageServer): void {
    this.timer = setInterval(() => void this.report(server), this.options.reportEveryMs ?? 1_000);
    this.timer.unref();
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.client.close();
  }

  private async report(server: StorageServer): Promise<void> {
    if (this.reporting) return; // a slow controller: skip a beat rather than pile up calls
    this.reporting = true;
    try {
      const now = performance.now();
      const cpu = process.cpuUsage(this.lastCpu);
      const elapsedMicros = (now - this.lastAt) * 1000;
      this.lastCpu = process.cpuUsage();
      this.lastAt = now;
      const { counters, engine } = server;
      const latency = server.metrics.takeLatency(); // 0 on the wire means "no ops this interval"
      const reply = await this.client.call('ReportNode', {
        nodeId: this.options.node.id,
        token: this.token,
        cpu: elapsedMicros > 0 ? (cpu.user + cpu.system) / elapsedMicros : 0,
        bytesIn: counters.bytesIn,
        bytesOut: counters.bytesOut,
        ops: counters.ops,
        used: engine.used,
        capacity: engine.capacity,
        latencyP50Us: latency.p50Us ?? 0,
        latencyP99Us: latency.p99Us ?? 0,
        jobs: [...engine.usageByJob()].map(([jobId, bytes]) => ({ jobId, bytes })),
      });
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
}
