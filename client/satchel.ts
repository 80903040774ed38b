import {
  ControlClient,
  CONTROLLER_SERVICE,
  SatchelError,
  type ControllerMethods,
  type JobHints,
} from '../proto/index.ts';
import { Job, type JobOptions } from './job.ts';

export type { JobHints };

export interface ConnectOptions extends JobOptions {}

/** A job this process registered: a Job, plus what only its driver does. */
export class RegisteredJob extends Job {
  /** Deletes every byte of the job on every node and frees its reservation; then closes this handle. */
  async deregister(): Promise<void> {
    const controller = this.controllerClient();
    try {
      await controller.call('DeregisterJob', { jobId: this.id, token: this.token });
    } finally {
      controller.close();
      await this.close();
    }
  }
}

/** The entry point: `Satchel.connect(controller)` for a driver, `Satchel.attach(ticket)` inside a function. */
export class Satchel {
  private readonly controller: ControlClient<ControllerMethods>;

  private constructor(
    readonly address: string,
    private readonly options: ConnectOptions,
  ) {
    this.controller = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, address, options.timeoutMs ?? 10_000);
  }

  /** Connects to a controller (host:port). Checks it answers, so a wrong address fails here, not later. */
  static async connect(address: string, options: ConnectOptions = {}): Promise<Satchel> {
    if (typeof address !== 'string' || !/^[^\s:]+:\d+$/.test(address)) {
      throw new SatchelError('BAD_REQUEST', `controller address must be host:port, got ${JSON.stringify(address)}`);
    }
    const satchel = new Satchel(address, options);
    try {
      await satchel.controller.call('GetCluster', {});
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
  async registerJob(name: string, hints: JobHints = {}): Promise<RegisteredJob> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
      throw new SatchelError('BAD_REQUEST', 'job name must be a non-empty string of at most 200 characters');
    }
    const reply = await this.controller.call('RegisterJob', { name, hints });
    return RegisteredJob.open(reply.ticket, this.options);
  }

  close(): void {
    this.controller.close();
  }
}
