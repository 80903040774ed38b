/**
 * The provisioner of `satchel up`: storage nodes are child processes of the `satchel up` process (LocalCluster),
 * which also runs the controller as a child. The controller asks its parent over the IPC channel it already has;
 * the parent starts or stops the node and answers. So nodes the autoscaler launches live, log and are cleaned
 * up exactly like the ones `satchel up` started.
 */

import type { Provisioner } from '../controller/index.ts';
import type { Tier } from '../proto/index.ts';
import { SatchelError } from '../proto/index.ts';

/** Controller → `satchel up`. */
export interface ProvisionRequest {
  type: 'provision';
  id: number;
  action: 'launch' | 'remove';
  tier: Tier;
  nodeId?: string;
}

/** `satchel up` → controller. */
export interface ProvisionReply {
  type: 'provisioned';
  id: number;
  error?: string;
  nodeId?: string;
}

/** The IPC side of a child process (process itself, in the controller). */
export interface ParentChannel {
  send?: (message: unknown) => boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

export class LocalProvisioner implements Provisioner {
  readonly name = 'local';
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (reply: ProvisionReply) => void; timer: NodeJS.Timeout }>();

  constructor(
    private readonly parent: ParentChannel = process,
    private readonly timeoutMs = 30_000,
  ) {
    if (parent.send === undefined) {
      throw new SatchelError(
        'BAD_REQUEST',
        '--provisioner local needs a parent `satchel up` to start nodes (no IPC channel); use none or kubernetes',
      );
    }
    parent.on('message', (message) => {
      const reply = message as ProvisionReply;
      if (reply?.type !== 'provisioned') return;
      const waiting = this.pending.get(reply.id);
      if (waiting === undefined) return;
      this.pending.delete(reply.id);
      clearTimeout(waiting.timer);
      waiting.resolve(reply);
    });
  }

  async launch(tier: Tier): Promise<void> {
    await this.ask({ action: 'launch', tier });
  }

  /** Any node can go: the one with the least data (candidates come sorted that way). */
  pickForRemoval(_tier: Tier, nodeIds: readonly string[]): string | null {
    return nodeIds[0] ?? null;
  }

  async remove(tier: Tier, nodeId: string): Promise<void> {
    await this.ask({ action: 'remove', tier, nodeId });
  }

  private ask(request: Omit<ProvisionRequest, 'type' | 'id'>): Promise<ProvisionReply> {
    const id = this.nextId++;
    return new Promise<ProvisionReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SatchelError('TIMEOUT', `satchel up did not ${request.action} a ${request.tier} node within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, timer });
      this.parent.send!({ type: 'provision', id, ...request } satisfies ProvisionRequest);
    }).then((reply) => {
      if (reply.error !== undefined) throw new SatchelError('UNAVAILABLE', reply.error);
      return reply;
    });
  }
}
