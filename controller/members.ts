/**
 * Which storage nodes serve a job, and what to tell a node whose report disagrees with the registry. Pure
 * functions over the registry's records, so the rules are tested without processes.
 *
 * A node serves a job only once the controller announced it to the node's current incarnation (storage-node
 * job-table.ts). The members of a job are the nodes its placement names, less `lostNodes`: incarnations that
 * died holding its data (a node restarted under the same id). Those stay in a single-copy job's placement (and in
 * a replicated job's remnant generations, replication.ts), so its keys there fail with UNAVAILABLE instead of
 * reading as absent; the placement marks them `lost` (`withLostMarks`), so nodes and clients can tell that from a
 * node not told yet. The id's new process serves the job only through an unmarked entry of a newer generation
 * (`rejoined`: `withRejoined`, `withRestartedMember`).
 */
import { type AnnouncedPlacement, AnnounceFlag, announcedPlacement, type JobUsage, type WirePlacement } from '../proto/index.ts';
import type { JobRecord, NodeRecord } from './registry.ts';

/** Every node id the placement names, in any generation. */
export function nodesOf(placement: WirePlacement): Set<string> {
  const ids = new Set<string>();
  for (const generation of placement.generations) for (const node of generation.nodes) ids.add(node.id);
  return ids;
}

/** The nodes that serve the job now: those its placement names, less the incarnations lost with its data. */
export function membersOf(job: JobRecord): Set<string> {
  const ids = nodesOf(job.placement);
  for (const id of job.lostNodes ?? []) if (isLostMember(job, id)) ids.delete(id);
  return ids;
}

/**
 * Whether the placement names `nodeId` in an entry not marked lost: its current process holds something of the
 * job there. An entry marked lost stands for an incarnation that died (a drain keeps it: migration.ts).
 */
export function namesUnmarked(placement: WirePlacement, nodeId: string): boolean {
  return placement.generations.some((g) => g.nodes.some((n) => n.id === nodeId && n.lost !== true));
}

/** Whether a live generation (not a remnant) of the placement names `nodeId`. */
export function namesLive(placement: WirePlacement, nodeId: string): boolean {
  return placement.generations.some((g) => g.remnant !== true && g.nodes.some((n) => n.id === nodeId));
}

/** The ids a placement's live generations (not remnants) name. */
function liveNodesOf(placement: WirePlacement): Set<string> {
  const ids = new Set<string>();
  for (const generation of placement.generations) if (generation.remnant !== true) for (const node of generation.nodes) ids.add(node.id);
  return ids;
}

/**
 * A replicated job's lost members that `next` places in a live generation none of `job.placement`'s live ones named:
 * their current incarnation (one registered after the loss: that is when an id becomes a lost member) takes part
 * anew, so they join `rejoined`; the incarnation that died keeps its marks in the remnants. Called before `next`
 * replaces the job's placement. Before, a lost id was never placed again: on two nodes both restarted at once, a
 * `replicas: 2` job refused every write for good (the only nodes that could take it were the lost ids' new
 * processes).
 */
export function withRejoined(job: JobRecord, next: WirePlacement): void {
  if ((next.replicas ?? 1) < 2 || job.lostNodes === undefined) return;
  const before = liveNodesOf(job.placement);
  for (const id of liveNodesOf(next)) {
    if (before.has(id) || !job.lostNodes.includes(id) || job.rejoined?.includes(id) === true) continue;
    (job.rejoined ??= []).push(id);
  }
}

/**
 * A single-copy job's placement once `nodeId` restarted (its new process registered at `address`): the live
 * generation again, the id's entry fresh, so the new process takes the writes of its slots, over the generation as
 * it was, now a remnant keeping the dead incarnation's entry marked lost. A key that incarnation held is found in
 * neither, and its read fails with UNAVAILABLE in the remnant, never null; written again, it reads back. Before,
 * the id was never placed on the job again: a job with one copy (the default) refused every write to a restarted
 * node's slots for the rest of its life (an outsider's SSD node killed once: every put of the job failed). Null
 * when the live generation does not mark the id lost, or when there are several (a move under way: the job keeps
 * refusing those slots, as before).
 */
export function withRestartedMember(placement: WirePlacement, nodeId: string, address: string): WirePlacement | null {
  if ((placement.replicas ?? 1) > 1) return null;
  const live = placement.generations.filter((g) => g.remnant !== true);
  const current = live[0];
  if (live.length !== 1 || !current!.nodes.some((n) => n.id === nodeId && n.lost === true)) return null;
  const fresh = current!.nodes.map((n) => {
    if (n.id !== nodeId) return n;
    const { lost: _dead, respAddress: _old, ...rest } = n;
    return { ...rest, address };
  });
  const remnants = placement.generations.filter((g) => g.remnant === true);
  // One remnant per shape: a node restarting again and again adds none past the first (the same nodes, weights and
  // marks hash every key to the same lost holder).
  const shape = (g: WirePlacement['generations'][number]) => JSON.stringify(g.nodes.map((n) => [n.id, n.weight, n.lost === true]));
  const kept = remnants.some((g) => shape(g) === shape(current!)) ? [] : [{ ...current!, remnant: true }];
  return { ...placement, epoch: placement.epoch + 1, generations: [{ nodes: fresh }, ...kept, ...remnants] };
}

/**
 * Whether `nodeId`'s current incarnation may be placed on the job: not a lost member, and not named by the job's
 * remnants alone; or (a replicated job) a lost member no live generation names any more — its loss was restored
 * from, and only remnants name the incarnation that died.
 */
export function mayPlaceOn(job: JobRecord, nodeId: string): boolean {
  if (!isLostMember(job, nodeId)) {
    // Named by remnants alone, the node's process holds older copies of the job's keys (back from a freeze, say,
    // its loss still being restored from): in a live generation they would be read as the newest. An outsider's
    // SSD node frozen 10 s: a growth put it back while its restoration waited for room, and 346–514 keys read an
    // older version or came back deleted. It takes the job again once the remnant is spent and it dropped the job.
    return !names(job.placement, nodeId) || namesLive(job.placement, nodeId);
  }
  return (job.placement.replicas ?? 1) > 1 && !namesLive(job.placement, nodeId);
}

/**
 * The ids each placement names, made once per placement: placements are replaced on every change, never edited
 * in place (generations and their nodes), so a placement's ids never change. A job spread over every node of a
 * tier (one larger than any set of nodes holds) names hundreds.
 */
const namedIds = new WeakMap<WirePlacement, ReadonlySet<string>>();

/** Whether the placement names `nodeId` (`nodesOf(placement).has(nodeId)`, the set made once per placement). */
export function names(placement: WirePlacement, nodeId: string): boolean {
  let ids = namedIds.get(placement);
  if (ids === undefined) namedIds.set(placement, (ids = nodesOf(placement)));
  return ids.has(nodeId);
}

/**
 * Whether `nodeId` serves the job now (`membersOf(job).has(nodeId)` without a new set each time: each node's report
 * asks it of every job, and at 1,000 nodes and 2,000 jobs those sets were a fifth of the controller's CPU, bench scale).
 */
export function isMember(job: JobRecord, nodeId: string): boolean {
  return names(job.placement, nodeId) && !isLostMember(job, nodeId);
}

/**
 * Whether `nodeId` is a lost member of the job (named by its placement, its data gone with an incarnation). One
 * placed on the job again since (`rejoined`) is not, while any entry naming it is unmarked: those are its current
 * incarnation's (a live generation, or a remnant made since, when it was frozen, say).
 */
export function isLostMember(job: JobRecord, nodeId: string): boolean {
  if (job.lostNodes?.includes(nodeId) !== true) return false;
  if (job.rejoined?.includes(nodeId) !== true) return true;
  return !namesUnmarked(job.placement, nodeId);
}

/** What a node must know of the job to serve it (AnnounceFlag). */
export function announceFlagsOf(job: Pick<JobRecord, 'placement' | 'pending'>): number {
  let flags = 0;
  if ((job.placement.replicas ?? 1) > 1) flags |= AnnounceFlag.REPLICATED;
  // Tombstones also while older generations exist: a reader falling back to them stops at a delete (Flag.DELETED).
  if (job.pending !== undefined || job.placement.generations.length > 1) flags |= AnnounceFlag.COPYING;
  return flags;
}

/**
 * What an announcement tells a node of the job's placement (proto/announce.ts): each generation's nodes with their
 * RESP front doors and data planes, as the registry knows them now, so the node's CLUSTER SLOTS and MOVED name
 * where keys are, and a replicated job's RESP writes reach the key's other copies.
 */
export function announcedPlacementOf(placement: WirePlacement, nodes: ReadonlyMap<string, NodeRecord>): AnnouncedPlacement {
  return announcedPlacement(placement, (id) => nodes.get(id));
}

/** The placement with each node's RESP front door as the registry knows it (what clients' `redisUrl` names). */
export function withRespAddresses(placement: WirePlacement, nodes: ReadonlyMap<string, NodeRecord>): void {
  for (const generation of placement.generations)
    for (const node of generation.nodes) {
      const resp = nodes.get(node.id)?.respAddress;
      if (resp) node.respAddress = resp;
    }
}

/**
 * The placement with `lost` set on exactly the nodes that are the job's lost members, where they hold the job's only
 * copy of keys (control.proto PlacementNode.lost): every generation of a job that keeps one copy, the remnants of a
 * job that keeps more (replication.ts `placementAfterLoss`). What they held of it is gone, and the metadata servers'
 * answer says so: a client's read of those keys fails with UNAVAILABLE rather than finding nothing, and a node's
 * RESP front door answers a final error rather than TRYAGAIN, which a Redis client retries in vain
 * (storage-node/resp/resp-foreign.ts). A replicated job's other generations are left unmarked: its lost members'
 * slots there move to live nodes once the copies are restored. `placement` itself when nothing changes; otherwise a
 * new placement, new generations and nodes where they change (placements are never edited in place: `names`).
 */
export function withLostMarks(
  placement: WirePlacement,
  lostNodes: readonly string[] | undefined,
  rejoined: readonly string[] = [],
): WirePlacement {
  const replicated = (placement.replicas ?? 1) > 1;
  const lost = lostNodes ?? [];
  const marks = (g: WirePlacement['generations'][number]) => !replicated || g.remnant === true;
  // A rejoined id's entries keep what they have: its older remnants stay marked (the incarnation that died), and
  // remnants made since are its new incarnation's, whose data lives (a freeze, say).
  const settled = (g: WirePlacement['generations'][number]) =>
    g.nodes.every((n) => rejoined.includes(n.id) || (n.lost === true) === (marks(g) && lost.includes(n.id)));
  if (placement.generations.every(settled)) return placement;
  return {
    ...placement,
    generations: placement.generations.map((g) =>
      settled(g)
        ? g
        : {
            ...g,
            nodes: g.nodes.map((n) => {
              if (rejoined.includes(n.id)) return n;
              const marked = marks(g) && lost.includes(n.id);
              if ((n.lost === true) === marked) return n;
              const { lost: _was, ...rest } = n;
              return marked ? { ...rest, lost: true } : rest;
            }),
          },
    ),
  };
}

/** Lost members the placement no longer names are forgotten (their ids may serve the job anew later). */
export function pruneLostNodes(job: JobRecord): void {
  if (job.lostNodes === undefined) return;
  const named = nodesOf(job.placement);
  const kept = job.lostNodes.filter((id) => named.has(id));
  job.lostNodes = kept.length > 0 ? kept : undefined;
  const rejoined = job.rejoined?.filter((id) => kept.includes(id));
  job.rejoined = rejoined !== undefined && rejoined.length > 0 ? rejoined : undefined;
}

/**
 * What to tell a node so that what it serves matches the registry:
 * - `announce`: a job the node is a member of, which it does not know, knows at an older epoch, or thinks moved;
 * - `move`: a job that no longer names the node (its data moved on, or its copies were restored elsewhere while
 *   the node was lost): announce the current epoch, then drop its data as moved (clients holding an old
 *   placement get STALE, never the stale copies);
 * - `drop`: a job the controller does not know (deregistered) and is not registering: drop its data and refuse its
 *   tokens.
 */
export type NodeAction =
  | { kind: 'announce'; jobId: string; epoch: number; flags: number }
  | { kind: 'move'; jobId: string; epoch: number }
  | { kind: 'drop'; jobId: string };

export function reconcileNode(
  nodeId: string,
  reported: readonly JobUsage[],
  jobs: ReadonlyMap<string, JobRecord>,
  registering: { has(id: string): boolean } = new Map(),
  /** Ids of the jobs whose placement names the node (registry.ts `JobMap.namedOn`); every job when omitted. */
  named?: Iterable<string>,
): NodeAction[] {
  const actions: NodeAction[] = [];
  const held = new Map(reported.map((usage) => [usage.jobId, usage]));
  const candidates = named === undefined ? jobs.values() : [...named].flatMap((id) => jobs.get(id) ?? []);
  for (const job of candidates) {
    if (!isMember(job, nodeId)) continue;
    const usage = held.get(job.id);
    if (usage === undefined || usage.moved === true || (usage.epoch ?? 0) < job.placement.epoch) {
      actions.push({ kind: 'announce', jobId: job.id, epoch: job.placement.epoch, flags: announceFlagsOf(job) });
    }
  }
  for (const usage of reported) {
    const job = jobs.get(usage.jobId);
    if (job === undefined) {
      if (!registering.has(usage.jobId)) actions.push({ kind: 'drop', jobId: usage.jobId });
    } else if (usage.moved !== true && !names(job.placement, nodeId))
      actions.push({ kind: 'move', jobId: job.id, epoch: job.placement.epoch });
  }
  return actions;
}
