/**
 * Moving one job's data off a node that is being drained, while the job's functions keep reading and writing.
 *
 * 0. With one copy and lost members (restarted nodes whose data went with them), remove the older copies the new
 *    generation's nodes hold of keys whose newest holder was lost (`removeShadowedCopies`); and the older copies
 *    they hold of the drained node's keys (`removeLeftoverCopies`).
 * 1. Publish a placement whose newest generation leaves the node out (the old generations stay, node included):
 *    new keys go elsewhere at once, and every read still finds every key, newest generation first.
 * 2. Copy each key the node holds (blocks of large values included) that is still the visible copy to its owner
 *    in the new generation, as a PUT COPY carrying the version the value has on the node: it lands only where
 *    the key holds nothing newer, so a copy never overwrites a write made since step 1, and a DELETE made since
 *    leaves a tombstone the copy respects (the controller announces the job COPYING meanwhile).
 * 3. Publish a placement without the node anywhere: publishing tells the node the job moved, and it drops it.
 *
 * The controller records the step-1 placement with the copy pending before it publishes it, so a restart in
 * between resumes at step 2 (`resumed`).
 */
import type { NodeConnection } from '../proto/index.ts';
import {
  errorCodeOf,
  Flag,
  keySlot,
  newerVersion,
  Op,
  pickNode,
  pickNodes,
  SatchelError,
  Status,
  type WirePlacement,
  type WirePlacementNode,
} from '../proto/index.ts';
import { forEachKey, type NodeAddress, type Request, readVersioned, requester, writeCopy } from './key-copier.ts';

export type { NodeAddress } from './key-copier.ts';

/** What migration needs from the controller: narrow, so it is testable against fakes. */
export interface MigrationHost {
  /**
   * Makes `placement` the job's placement (placement-publisher.ts): nodes joining learn it, then the metadata
   * servers, then the other nodes; nodes it no longer names drop the job as moved.
   */
  publish(placement: WirePlacement): Promise<void>;
  /** A data-plane connection to a node, authenticated as the job (the controller signs its token). */
  connect(address: string, jobId: string): NodeConnection;
  /** Whether the node is a lost member of the job: its incarnation's data is gone, and it may not answer. */
  isLost?(nodeId: string): boolean;
}

export interface MigrationResult {
  keys: number;
  bytes: number;
  /** Keys left behind because a newer copy exists elsewhere (or nothing routes to them any more). */
  skipped: number;
}

/**
 * The job's placement without `nodeId`: `newest` is the new newest generation (the caller chose who replaces
 * the node's share), the old generations follow as they were (step 1) or without the node (step 3).
 */
export function placementWithout(placement: WirePlacement, nodeId: string, newest: WirePlacementNode[], keepOld: boolean): WirePlacement {
  const old = placement.generations
    .map((g) => ({ ...g, nodes: keepOld ? g.nodes : g.nodes.filter((n) => n.id !== nodeId) }))
    .filter((g) => g.nodes.length > 0);
  return { ...placement, epoch: placement.epoch + 1, generations: [{ nodes: newest }, ...old] };
}

/**
 * Runs steps 1–3 for one job (2–3 when `resumed`: `placement` is then the step-1 one). `newest` must not contain
 * the drained node. Returns what moved; on any error the job is left on the step-1 placement, under which every
 * key is still readable, and the error is thrown.
 */
export async function migrateJob(
  host: MigrationHost,
  placement: WirePlacement,
  drained: NodeAddress,
  newest: WirePlacementNode[],
  resumed = false,
): Promise<{ placement: WirePlacement; result: MigrationResult }> {
  if (newest.some((n) => n.id === drained.id) || newest.length === 0)
    throw new SatchelError('BAD_REQUEST', 'the new generation must hold other nodes than the drained one');
  const during = resumed ? placement : placementWithout(placement, drained.id, newest, true);
  if (!resumed) {
    await removeShadowedCopies(host, placement, newest);
    await removeLeftoverCopies(host, placement, drained, newest);
    await host.publish(during);
  }
  const result = await copyKeys(host, during, drained);
  // Remnants (replication.ts) lose the drained node too: it moved what it held of them forward, as its other keys.
  // Not an entry marked lost: that is an incarnation that died with what it held (the drained process is the id's
  // new one, placed on the job again), and without it the slots it stands for would read as absent.
  const generations = withoutRepeats(
    during.generations.map((g) => ({ ...g, nodes: g.nodes.filter((n) => n.id !== drained.id || n.lost === true) })),
  );
  const after: WirePlacement = { ...during, epoch: during.epoch + 1, generations };
  await host.publish(after);
  return { placement: after, result };
}

/**
 * Before a new generation without the job's lost members: the keys whose newest holder is a lost member are
 * gone (UNAVAILABLE, one copy), and a node of the new generation may still hold an older copy of one from an
 * earlier placement, which readers would then take for the value (a stale read in the 10-minute nemesis: a drain
 * after a restart). Those copies are removed first, while nothing routes writes of those keys to them. Jobs with
 * one copy only: a replicated job's lost members are restored from the others.
 */
async function removeShadowedCopies(host: MigrationHost, placement: WirePlacement, newest: WirePlacementNode[]): Promise<void> {
  const replicas = Math.max(1, placement.replicas ?? 1);
  const current = placement.generations[0]!.nodes;
  if (replicas > 1 || host.isLost === undefined || !current.some((n) => host.isLost!(n.id))) return;
  const members = new Set(placement.generations.flatMap((g) => g.nodes.map((n) => n.id)));
  for (const node of newest) {
    // A node new to the job holds none of it (and is not yet told of it).
    if (host.isLost(node.id) || !members.has(node.id)) continue;
    await forEachListedKey(host, placement, node, async (key) => {
      const holder = current[pickNode(current, keySlot(key))]!;
      if (holder.id !== node.id && host.isLost!(holder.id)) await removeCopy(host, placement, node, key);
    });
  }
}

/**
 * Before the new generation: a node of it may hold an older copy of one of the drained node's keys, left from an
 * earlier placement. Once published, readers would take it for the value until the drained node's copy reached
 * it (a stale read in the 10-minute nemesis, in the first tenth of a second of a drain). It is invisible now (the
 * drained node holds the key in the newest generation, where the node is not among its holders) and nothing
 * writes it there before the new generation is published, so it is removed, leaving no tombstone: readers then
 * go on to the drained node until the copy lands.
 */
async function removeLeftoverCopies(
  host: MigrationHost,
  placement: WirePlacement,
  drained: NodeAddress,
  newest: WirePlacementNode[],
): Promise<void> {
  const replicas = Math.max(1, placement.replicas ?? 1);
  const current = placement.generations[0]!.nodes;
  if (!current.some((n) => n.id === drained.id)) return;
  const members = new Set(placement.generations.flatMap((g) => g.nodes.map((n) => n.id)));
  const candidates = newest.filter((n) => members.has(n.id) && n.id !== drained.id && host.isLost?.(n.id) !== true);
  if (candidates.length === 0) return;
  await forEachListedKey(host, placement, drained, async (key) => {
    const slot = keySlot(key);
    const holders = pickNodes(current, slot, replicas).map((i) => current[i]!.id);
    if (!holders.includes(drained.id)) return; // not the visible copy: migration leaves it too
    const next = new Set(pickNodes(newest, slot, replicas).map((i) => newest[i]!.id));
    for (const node of candidates) if (next.has(node.id) && !holders.includes(node.id)) await removeCopy(host, placement, node, key);
  });
}

/** `each` for every key (blocks included) `node` holds of the job, a page at a time, one after another. */
function forEachListedKey(
  host: MigrationHost,
  placement: WirePlacement,
  node: NodeAddress,
  each: (key: string) => Promise<void>,
): Promise<void> {
  const request = requester(
    (address, job) => host.connect(address, job),
    placement.jobId,
    placement.epoch,
    (n) => `listing ${placement.jobId} on ${n.id}`,
  );
  return forEachKey(request, node, each, 1);
}

/** Removes a copy no reader may see (DELETE with Flag.COPY: no tombstone, so readers go on past the node). */
async function removeCopy(host: MigrationHost, placement: WirePlacement, node: NodeAddress, key: string): Promise<void> {
  const reply = await host.connect(node.address, placement.jobId).request({ op: Op.DELETE, flags: Flag.COPY, epoch: placement.epoch, key });
  if (reply.status !== Status.OK && reply.status !== Status.NOT_FOUND)
    throw new SatchelError(errorCodeOf(reply.status), `removing an older copy of ${key} on ${node.id}: ${reply.message}`);
}

/**
 * Generations without the empty ones and those the same as a newer one (a generation that only differed by the
 * drained node): keys hash the same in both, so reads would ask the same node twice.
 */
function withoutRepeats(generations: WirePlacement['generations']): WirePlacement['generations'] {
  const seen = new Set<string>();
  return generations.filter((g) => {
    const shape = JSON.stringify([g.remnant === true, ...g.nodes.map((n) => [n.id, n.weight]).sort()]);
    if (g.nodes.length === 0 || seen.has(shape)) return false;
    seen.add(shape);
    return true;
  });
}

async function copyKeys(host: MigrationHost, placement: WirePlacement, drained: NodeAddress): Promise<MigrationResult> {
  const jobId = placement.jobId;
  const call: Request = requester(
    (address, job) => host.connect(address, job),
    jobId,
    placement.epoch,
    () => `migrating ${jobId} off ${drained.id}`,
  );
  const result: MigrationResult = { keys: 0, bytes: 0, skipped: 0 };

  const replicas = Math.max(1, placement.replicas ?? 1);
  /**
   * Copies `key` to every one of its holders in the new generation, with the version the drained node holds: a
   * copy lands only where the key holds nothing newer. When a generation between the new one and the first that
   * has the drained node among the key's holders holds a version at least as new, that one is what readers see
   * (newest generation first), so that one goes forward instead: copying the drained node's would hide it, and
   * copying nothing would leave fewer copies than the job keeps (the 10-minute nemesis lost keys of a
   * replicas-2 job that way: a drain left one copy, and the next restart took it).
   */
  const move = async (key: string) => {
    const slot = keySlot(key);
    const holdersOf = (nodes: WirePlacementNode[]) => pickNodes(nodes, slot, replicas).map((i) => nodes[i]!);
    const generations = placement.generations.map((g) => holdersOf(g.nodes));
    const own = generations.findIndex((holders) => holders.some((n) => n.id === drained.id));
    // Not among the key's holders anywhere (left over from an earlier placement): no reader looks here.
    if (own < 1) {
      result.skipped++;
      return;
    }
    let value = await readVersioned(call, drained, key);
    if (value === null) return; // deleted meanwhile
    for (const holders of generations.slice(1, own)) {
      for (const holder of holders) {
        if (host.isLost?.(holder.id) === true) {
          // With one copy, the lost member held the key's newest version, gone with it: readers get UNAVAILABLE
          // there, and an older copy must not take its place. With more, the others are restored from.
          if (replicas > 1) continue;
          result.skipped++;
          return;
        }
        const held = await readVersioned(call, holder, key);
        if (held !== null && !newerVersion(value.epoch, value.arg, held.epoch, held.arg)) value = held;
      }
    }
    for (const holder of generations[0]!) {
      await writeCopy(call, holder, key, value);
      result.bytes += value.body.length;
    }
    result.keys++;
  };

  await forEachKey(call, drained, move);
  return result;
}
