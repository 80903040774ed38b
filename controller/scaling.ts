/**
 * Scaling the cluster: the autoscaler (autoscaler.ts) run against the nodes' load, and the two things it (or an
 * admin, through the console) asks for: a node launched by the provisioner, and a node drained, stopped and
 * forgotten.
 */
import { SatchelError, type Tier } from '../proto/index.ts';
import { Autoscaler, type AutoscalerConfig } from './autoscaler.ts';
import type { ControllerContext } from './context.ts';
import { nodeLoads } from './load.ts';
import type { NodeBook } from './nodes.ts';
import type { DrainResult, PlacementChanges } from './placement-changes.ts';

export class Scaling {
  private autoscaler: Autoscaler | null = null;
  /** Removals in progress by node: a second request for one joins it instead of starting a second drain. */
  private readonly removals = new Map<string, Promise<DrainResult>>();

  constructor(
    private readonly ctx: ControllerContext,
    private readonly nodes: NodeBook,
    private readonly placements: PlacementChanges,
  ) {}

  /** The autoscaler's policy, when it runs. */
  get config(): AutoscalerConfig | undefined {
    return this.autoscaler?.config;
  }

  start(config: AutoscalerConfig): void {
    const { ctx } = this;
    const provisioner = ctx.options.provisioner;
    if (provisioner === undefined) throw new SatchelError('BAD_REQUEST', 'autoscaling needs a provisioner');
    this.autoscaler = new Autoscaler(
      {
        loads: (tier) => nodeLoads(ctx, tier),
        launchNode: (tier, reason, details) => this.launchNode(tier, reason, details),
        pickForRemoval: (tier, candidates) => provisioner.pickForRemoval(tier, candidates),
        // Picked by the provisioner just now (pickForRemoval): not asked again, which cost a copy of every node's id
        // per removal.
        removeNode: (nodeId, reason) => this.removeNode(nodeId, reason, true),
        scaleEvent: (kind, tier, reason, details) => void ctx.events.add(kind, reason, { tier, details }),
      },
      config,
      ctx.logger,
    );
    this.autoscaler.start();
    ctx.logger.info({ provisioner: provisioner.name, ...config }, 'autoscaler started');
  }

  stop(): void {
    this.autoscaler?.stop();
  }

  /** Asks the provisioner for one more node of `tier`; it registers itself when it is up. */
  async launchNode(tier: Tier, reason: string, details?: Record<string, number | string>): Promise<void> {
    const { ctx } = this;
    const provisioner = ctx.options.provisioner;
    if (provisioner === undefined)
      throw new SatchelError('BAD_REQUEST', 'this controller has no provisioner: start storage nodes by hand (satchel storage-node)');
    this.nodes.unretire(tier);
    try {
      await provisioner.launch(tier);
    } catch (error) {
      ctx.events.add('launch-failed', `${provisioner.name} provisioner: ${(error as Error).message}`, { tier });
      throw error;
    }
    ctx.events.add('node-launched', reason, { tier, details });
  }

  /**
   * Drains a node, then has the provisioner stop it and forgets it. Without a provisioner the process keeps
   * running, empty and unused, until someone stops it.
   */
  removeNode(nodeId: string, reason: string, picked = false): Promise<DrainResult> {
    // A retried DELETE (an HTTP client resending on a dropped connection) or the autoscaler choosing the node an
    // admin is draining gets the one drain's result; before, the second drain ran beside the first and failed.
    const running = this.removals.get(nodeId);
    if (running !== undefined) return running;
    const removal = this.drainAndRemove(nodeId, reason, picked).finally(() => this.removals.delete(nodeId));
    this.removals.set(nodeId, removal);
    return removal;
  }

  /** `picked`: the provisioner chose this node (pickForRemoval) for the autoscaler, so it is not asked again. */
  private async drainAndRemove(nodeId: string, reason: string, picked: boolean): Promise<DrainResult> {
    const { ctx } = this;
    const node = ctx.registry.nodes.get(nodeId);
    if (node === undefined) throw new SatchelError('BAD_REQUEST', `no node ${nodeId}`);
    // Ask first whether the provisioner can stop this one (a StatefulSet only drops its highest ordinal).
    const provisioner = ctx.options.provisioner;
    if (provisioner !== undefined && !picked) {
      const others = [...ctx.registry.nodes.values()].filter((n) => n.tier === node.tier && n.id !== nodeId).map((n) => n.id);
      const removable = provisioner.pickForRemoval(node.tier as Tier, [nodeId, ...others]);
      if (removable !== nodeId)
        throw new SatchelError(
          'BAD_REQUEST',
          `the ${provisioner.name} provisioner cannot remove ${nodeId}${removable === null ? '' : `; it can remove ${removable}`}`,
        );
    }
    ctx.events.add('drain-started', reason, { tier: node.tier, node: nodeId });
    let result: DrainResult;
    try {
      result = await this.placements.drainNode(nodeId);
    } catch (error) {
      ctx.events.add('drain-failed', (error as Error).message, { tier: node.tier, node: nodeId });
      throw error;
    }
    ctx.events.add('drain-finished', `moved ${result.keys} keys of ${result.jobs} jobs in ${result.seconds.toFixed(1)} s`, {
      tier: node.tier,
      node: nodeId,
      details: { jobs: result.jobs, keys: result.keys, bytes: result.bytes, seconds: result.seconds },
    });
    await this.nodes.forgetNode(nodeId);
    await provisioner?.remove(node.tier as Tier, nodeId);
    ctx.events.add(
      'node-removed',
      provisioner ? `stopped by the ${provisioner.name} provisioner` : 'forgotten (no provisioner: stop its process by hand)',
      { tier: node.tier, node: nodeId },
    );
    return result;
  }
}
