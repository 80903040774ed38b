/**
 * The nodes' load as the autoscaler measures it (fractions of what each node declared), and the nodes new jobs
 * may go to because of it. Read from the registry and the nodes' last reports; shared by scaling.ts, jobs.ts and
 * the console's metrics.
 */
import type { Tier } from '../proto/index.ts';
import type { NodeState } from './allocation.ts';
import { DEFAULT_AUTOSCALER, type NodeLoad } from './autoscaler.ts';
import type { ControllerContext } from './context.ts';

/** Each placeable node of a tier, as the autoscaler sees it: fractions of what the node declared. */
export function nodeLoads(ctx: ControllerContext, tier: Tier): NodeLoad[] {
  return ctx.registry
    .placeableNodes()
    .filter((n) => n.tier === tier)
    .map((node) => {
      const stats = ctx.stats.get(node.id);
      return {
        id: node.id,
        cpu: stats?.cpu ?? 0,
        network: stats === undefined || !(node.bandwidth > 0) ? 0 : (stats.bytesInPerSec + stats.bytesOutPerSec) / node.bandwidth,
        capacity: Math.max(node.reserved, stats?.used ?? 0) / node.capacity,
        used: stats?.used ?? 0,
      };
    });
}

/**
 * Nodes a new job may be placed on: not draining, and not busier (CPU or network) than the autoscaler's band
 * while a cooler node of the same tier exists, so a node launched for load takes the new jobs. Allocation's
 * best fit looks at room only and would otherwise keep packing new jobs onto the hot node.
 */
export function targetNodes(ctx: ControllerContext): NodeState[] {
  const high = ctx.options.autoscaler?.high ?? DEFAULT_AUTOSCALER.high;
  const nodes = ctx.registry.placeableNodes();
  const busy = (node: NodeState) => {
    const stats = ctx.stats.get(node.id);
    if (stats === undefined) return false;
    const network = node.bandwidth > 0 ? (stats.bytesInPerSec + stats.bytesOutPerSec) / node.bandwidth : 0;
    return Math.max(stats.cpu, network) > high;
  };
  const hot = new Set(nodes.filter(busy).map((n) => n.id));
  if (hot.size === 0) return nodes;
  // Tiers with a cool node: their hot ones are left out. Found in one pass (per hot node it was O(nodes)).
  const cooled = new Set(nodes.filter((n) => !hot.has(n.id)).map((n) => n.tier));
  return nodes.filter((n) => !hot.has(n.id) || !cooled.has(n.tier));
}
