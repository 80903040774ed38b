import {
  type ClientTls,
  type ControllerMethods,
  type JobHints,
  LightControlClient,
  MAX_TIMEOUT_MS,
  SatchelError,
  TRANSIENT_CODES,
} from '../proto/index.ts';
import { CLIENT_DEFAULTS } from './defaults.ts';
import { Job } from './job.ts';
import { checkClientTls, checkHints, checkJobOptions, type JobOptions } from './options.ts';

export type { JobHints };

export interface ConnectOptions extends JobOptions {
  /**
   * The controller serves TLS: connect over TLS and check its certificate against `ca` (PEM), and against
   * `servername` when that, not the host dialled, is the name it carries. Jobs registered through this handle
   * use the CA their ticket carries.
   */
  tls?: ClientTls;
  /**
   * The tenant key jobs are registered under (cluster.json `tenantKey` for the default tenant that `satchel up`
   * makes; `satchel tenant add` makes others). Without one the controller registers no job.
   */
  key?: string;
}

/**
 * A job this process registered: a Job, plus what only its driver does. While the handle is open it renews
 * the job's lease (every third of it), so a driver that dies without deregistering leaves nothing behind
 * for longer than one lease.
 */
export class RegisteredJob extends Job {
  private controller: LightControlClient<ControllerMethods> | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  /** The driver's credential (renew, deregister): never in the ticket functions get. */
  private driverToken = '';
  private leaseMs: number | undefined;
  /** A deregister failed without an answer (the controller unreachable): it may have been carried out. */
  private deregisterUnanswered = false;

  /** @internal Called by Satchel#registerJob. */
  useDriverToken(token: string): void {
    this.driverToken = token;
  }

  /** @internal Called by Satchel#registerJob. */
  renewLeaseEvery(leaseMs: number): void {
    this.leaseMs = leaseMs;
    this.controller ??= this.router.controllerClient();
    const controller = this.controller;
    // A timer waits at most ~24.8 days: past that Node fires it at once, and warns on stderr.
    const every = Math.min(MAX_TIMEOUT_MS, Math.max(50, leaseMs / 3));
    this.renewTimer = setInterval(() => {
      controller
        .call('RenewLease', { jobId: this.id, token: this.driverToken })
        .then((reply) => {
          // Each renewal brings a ticket whose token lives a token lifetime from now: the driver never holds an
          // expired one, and hands functions the freshest.
          if (reply.ticket) this.router.replaceTicket(reply.ticket);
        })
        .catch((error: unknown) => {
          // The job is gone (deregistered elsewhere, or collected), or this credential was revoked: nothing to renew.
          if (error instanceof SatchelError && (error.code === 'NO_SUCH_JOB' || error.code === 'UNAUTHORIZED')) this.stopRenewing();
          // Anything else (a controller restarting) is retried at the next tick, well inside the lease.
        });
    }, every);
    this.renewTimer.unref(); // renewing never keeps a process alive
  }

  /**
   * Deletes every byte of the job on every node and frees its reservation; then closes this handle. CLOSED on a
   * handle already closed (or deregistered): the driver's credential went with it. UNAVAILABLE or TIMEOUT (no
   * answer from the controller) leave the handle open and the lease renewed: call it again.
   */
  async deregister(): Promise<void> {
    this.router.checkOpen();
    this.stopRenewing();
    this.controller ??= this.router.controllerClient();
    try {
      await this.controller.call('DeregisterJob', { jobId: this.id, token: this.driverToken });
    } catch (error) {
      const code = error instanceof SatchelError ? error.code : undefined;
      if (code !== undefined && TRANSIENT_CODES.includes(code)) {
        // No answer (a controller restarting, out of reach): the handle stays open, renewing the lease, so the
        // call can be tried again; closed, the credential went with it and the job's data stayed a lease long.
        this.deregisterUnanswered = true;
        if (this.leaseMs !== undefined) this.renewLeaseEvery(this.leaseMs);
        throw error;
      }
      // A try that went unanswered may have been carried out: the job gone now is what was asked.
      if (!(code === 'NO_SUCH_JOB' && this.deregisterUnanswered)) {
        await this.close();
        throw error;
      }
    }
    await this.closeHandle(true);
  }

  /** Stops renewing the lease and closes the handle; the job lives on until deregistered or its lease lapses. */
  override close(): Promise<void> {
    return this.closeHandle(false);
  }

  /** @internal */
  protected override async closeHandle(jobGone: boolean): Promise<void> {
    this.stopRenewing();
    this.controller?.close();
    this.controller = null;
    await super.closeHandle(jobGone);
  }

  private stopRenewing(): void {
    if (this.renewTimer !== null) clearInterval(this.renewTimer);
    this.renewTimer = null;
  }
}

/** The entry point: `Satchel.connect(controller)` for a driver, `Satchel.attach(ticket)` inside a function. */
export class Satchel {
  private readonly controller: LightControlClient<ControllerMethods>;

  private constructor(
    readonly address: string,
    private readonly options: ConnectOptions,
  ) {
    this.controller = new LightControlClient<ControllerMethods>(
      'satchel.v1.Controller',
      address,
      options.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs,
      options.tls,
    );
  }

  /**
   * Connects to a controller (host:port) with a tenant key (`options.key`). Checks that it answers and takes the
   * key, so a wrong address or key fails here (UNAVAILABLE, UNAUTHORIZED), not at the first registration.
   */
  static async connect(address: string, options?: ConnectOptions): Promise<Satchel> {
    if (typeof address !== 'string' || !/^[^\s:]+:\d+$/.test(address)) {
      throw new SatchelError('BAD_REQUEST', `controller address must be host:port, got ${JSON.stringify(address)}`);
    }
    options = checkJobOptions(options);
    checkClientTls(options.tls);
    if (options.key !== undefined && typeof options.key !== 'string')
      throw new SatchelError('BAD_REQUEST', 'key must be a string (cluster.json tenantKey)');
    // A token in its place (the admin's, a job's) would pass the check below and fail at the first registration.
    if (options.key !== undefined && !options.key.startsWith('sk1.'))
      throw new SatchelError('UNAUTHORIZED', 'key is not a tenant key (cluster.json tenantKey, or one satchel tenant add printed)');
    const satchel = new Satchel(address, options);
    try {
      await satchel.controller.call('GetCluster', { token: options.key ?? '' });
    } catch (error) {
      satchel.close();
      throw error;
    }
    return satchel;
  }

  /** Opens a job from the ticket its driver handed over; no data moves until the first call. */
  static attach(ticket: string, options: JobOptions = {}): Promise<Job> {
    return Job.open(ticket, options);
  }

  /** Registers a job; every hint is optional. The returned handle can be used at once and gives the ticket. */
  async registerJob(name: string, hints?: JobHints): Promise<RegisteredJob> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
      throw new SatchelError('BAD_REQUEST', 'job name must be a non-empty string of at most 200 characters');
    }
    // Checked here: the wire's integer fields would quietly turn 1.5 copies into 1.
    hints = checkHints(hints);
    const reply = await this.controller.call('RegisterJob', { name, hints, key: this.options.key ?? '' });
    const job = await RegisteredJob.open(reply.ticket, this.options, reply.placement ?? undefined);
    job.useDriverToken(reply.driverToken);
    if (reply.leaseMs > 0) job.renewLeaseEvery(reply.leaseMs);
    return job;
  }

  /** Closes the channel to the controller; registerJob afterwards fails with CLOSED. Jobs registered stay open. */
  close(): void {
    this.controller.close();
  }
}
