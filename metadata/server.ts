import type { Logger } from 'pino';
import { CONTROLLER_SERVICE, ControlClient, METADATA_SERVICE, UnaryServer } from '../proto/grpc.ts';
import {
  ADMIN_SUBJECT,
  advertisedAddress,
  authorize,
  type ControllerMethods,
  clientTlsOf,
  closeMetricsEndpoint,
  type MetadataMethods,
  type MetricsEndpoint,
  retry,
  SatchelError,
  type ServerTls,
  type ServiceImpl,
  serveMetrics,
  signToken,
} from '../proto/index.ts';
import { MetadataMetrics } from './metrics.ts';
import { PlacementStore } from './placement-store.ts';

/** GetPlacement opens to the job's own tokens and the admin's; the controller's calls to the admin's only. */
const JOB_SCOPES = ['admin', 'data', 'internal'] as const;
const ADMIN_ONLY = ['admin'] as const;
/** Between tries of RegisterMetadata: 20 tries span about half a minute, time for a controller to come up. */
const ANNOUNCE_BACKOFF = { baseMs: 200, capMs: 2_500 };

export interface MetadataServerOptions {
  secret: Uint8Array;
  logger: Logger;
  /** The controller to announce this server to (host:port); omitted in unit tests. */
  controller?: string;
  /**
   * How many times to try announcing to the controller before `listen` gives up (default 20, backing off as
   * proto's `retry` does, from 200 ms up to 2.5 s between tries: about half a minute). UNAVAILABLE and TIMEOUT are
   * retried, anything else is not.
   */
  announceAttempts?: number;
  /** The host clients should dial when it is not the one bound (a pod binding 0.0.0.0). */
  advertiseHost?: string;
  /** Serve Prometheus metrics on this port (0: any free port); undefined: no metrics server. */
  metricsPort?: number;
  /** The host the metrics server binds (default the host `listen` binds). */
  metricsHost?: string;
  /** Serve gRPC over TLS with `cert` and `key`; the controller's certificate is checked against `ca` (PEM). */
  tls?: ServerTls;
}

/** Serves job placements to clients; the controller writes them. Tokens are checked with the cluster secret. */
export class MetadataServer {
  readonly store = new PlacementStore();
  /** Requests by method and outcome, placements held; served on `metricsAddress`. */
  readonly metrics = new MetadataMetrics(() => this.store.size);
  private readonly server: UnaryServer;
  private address: string | null = null;
  private metricsServer: MetricsEndpoint | null = null;
  /**
   * False from bind until the controller has sent every placement (the announce returned): a job missing from
   * the store then is not known to be gone, so GetPlacement answers UNAVAILABLE instead of NO_SUCH_JOB. A
   * client takes NO_SUCH_JOB as final (the job ended); UNAVAILABLE it retries.
   */
  private loaded: boolean;

  constructor(private readonly options: MetadataServerOptions) {
    this.loaded = options.controller === undefined;
    const impl: ServiceImpl<MetadataMethods> = {
      GetPlacement: async ({ jobId, token }) => {
        authorize(options.secret, token, jobId, JOB_SCOPES);
        if (!this.loaded && !this.store.has(jobId)) {
          throw new SatchelError('UNAVAILABLE', 'metadata server starting: placements not received from the controller yet');
        }
        return this.store.get(jobId);
      },
      SetPlacement: async ({ placement, token }) => {
        authorize(options.secret, token, null, ADMIN_ONLY);
        if (!placement?.jobId) throw new SatchelError('BAD_REQUEST', 'placement without a job id');
        this.store.set(placement);
        // Logged once the answer is out: every registration waits for this call (a log line is a synchronous write).
        setImmediate(() => options.logger.info({ job: placement.jobId, epoch: placement.epoch }, 'placement set'));
        return {};
      },
      DropPlacement: async ({ jobId, token }) => {
        authorize(options.secret, token, null, ADMIN_ONLY);
        if (this.store.drop(jobId)) options.logger.info({ job: jobId }, 'placement dropped');
        return {};
      },
    };
    this.server = new UnaryServer((method, error) => options.logger.error({ err: error, method }, 'handler failed'));
    this.server.addService(METADATA_SERVICE, this.counted(impl));
  }

  /** `http://host:port/metrics` once listening with `metricsPort`; null otherwise. */
  get metricsAddress(): string | null {
    return this.metricsServer?.address ?? null;
  }

  /** Binds (port 0: any free port), then announces itself to the controller when one is configured. */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    this.address = advertisedAddress(await this.server.listen(host, port, this.options.tls), this.options.advertiseHost);
    if (this.options.metricsPort !== undefined) {
      const metricsHost = this.options.metricsHost ?? host;
      this.metricsServer = await serveMetrics(await this.metrics.registry(), this.options.metricsPort, metricsHost);
      // A wildcard bind is reached through the advertised host, like the gRPC address.
      if ((metricsHost === '0.0.0.0' || metricsHost === '::') && this.options.advertiseHost) {
        this.metricsServer.address = `http://${advertisedAddress(new URL(this.metricsServer.address).host, this.options.advertiseHost)}/metrics`;
      }
    }
    if (this.options.controller !== undefined) {
      await this.announce(this.options.controller);
      this.loaded = true;
    }
    return this.address;
  }

  async close(): Promise<void> {
    const metrics = this.metricsServer;
    await Promise.all([this.server.close(2_000), metrics === null ? undefined : closeMetricsEndpoint(metrics)]);
  }

  /** `impl` with every request counted by method and outcome. */
  private counted(impl: ServiceImpl<MetadataMethods>): ServiceImpl<MetadataMethods> {
    const wrapped: Record<string, (request: never) => Promise<unknown>> = {};
    for (const [method, handler] of Object.entries(impl) as [string, (request: never) => Promise<unknown>][]) {
      wrapped[method] = async (request: never) => {
        try {
          const reply = await handler(request);
          this.metrics.count(method, 'ok');
          return reply;
        } catch (error) {
          this.metrics.count(method, error instanceof SatchelError ? error.code.toLowerCase() : 'internal');
          throw error;
        }
      };
    }
    return wrapped as unknown as ServiceImpl<MetadataMethods>;
  }

  /**
   * RegisterMetadata, which returns once the controller has sent every placement. Retried while the controller
   * cannot be reached, or cannot reach us: a controller not up yet, or (a restart on the same address) one whose
   * gRPC channel to this address is still backing off after failing while we were down, so its first
   * SetPlacement fails at once.
   */
  private async announce(controllerAddress: string): Promise<void> {
    const token = signToken(this.options.secret, ADMIN_SUBJECT);
    await retry(
      async (attempt) => {
        const controller = new ControlClient<ControllerMethods>(
          CONTROLLER_SERVICE,
          controllerAddress,
          undefined,
          clientTlsOf(this.options.tls),
        );
        try {
          await controller.call('RegisterMetadata', { address: this.address!, token });
          this.options.logger.info({ controller: controllerAddress, attempt }, 'registered with controller');
        } finally {
          controller.close();
        }
      },
      {
        attempts: this.options.announceAttempts ?? 20,
        ...ANNOUNCE_BACKOFF,
        onRetry: (error, attempt) => this.options.logger.warn({ err: error, attempt }, 'registering with the controller failed; retrying'),
      },
    );
  }
}
