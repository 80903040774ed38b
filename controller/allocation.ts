import { type JobHints, type NodeInfo, TIERS, type Tier } from '../proto/index.ts';

/** Defaults for missing hints, documented in controller/README.md. */
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024 * 1024;
/** What a job that gives no capacity hint reserves to start with. */
export const DEFAULT_CAPACITY = 64 * 1024 * 1024;
/**
 * Below this many reads of its whole data per second, a job that is not latency-sensitive is capacity-heavy:
 * it goes to HDD. 1/600: the data is touched less than once in ten minutes.
 */
export const HDD_MAX_TOUCH_RATE = 1 / 600;

/** A node as the policy sees it: what it declared, and what jobs have reserved on it so far. */
export interface NodeState extends NodeInfo {
  reserved: number;
}

export interface Allocation {
  tier: Tier;
  /** Why this tier, for the job's record and the console. */
  reason: string;
  /** Nodes and weights for the job's first placement generation. */
  nodes: { id: string; address: string; weight: number }[];
  /** Bytes reserved for the job across its nodes. */
  reservation: number;
  blockSize: number;
  maxValueBytes: number;
}

/** Where to look when a job's tier has no nodes: the nearest tier first. */
const FALLBACK: Record<Tier, Tier[]> = { dram: ['dram', 'ssd', 'hdd'], ssd: ['ssd', 'dram', 'hdd'], hdd: ['hdd', 'ssd', 'dram'] };

/**
 * Pocket's policy, with its hints all optional:
 * - tier: latency-sensitive → DRAM; capacity-heavy with little throughput (whole data read less than
 *   HDD_MAX_TOUCH_RATE times a second) → HDD; otherwise not latency-sensitive → SSD; no hint at all → DRAM.
 *   A tier with no nodes falls back to the nearest one that has some.
 * - reservation: max(capacity hint, the job's share of the tier's bandwidth × the tier's capacity).
 * - nodes: enough for the throughput hint at the nodes' declared bandwidth, then best fit: the nodes with the
 *   least free room that still hold an equal share. When no set of nodes fits, the job is spread over all
 *   the tier's nodes weighted by free room (it is refused only when a node is actually full: FULL).
 */
export function allocateJob(hints: JobHints, nodes: readonly NodeState[]): Allocation {
  const replicas = Math.max(1, hints.replicas ?? 1);
  const allocation = allocateCopies(hints, nodes, replicas);
  if (replicas === 1 || allocation.nodes.length >= replicas) return allocation;
  // Too few nodes in the tier for every copy on its own node: borrow the nearest tiers' roomiest nodes.
  const have = new Set(allocation.nodes.map((n) => n.id));
  const extra = FALLBACK[allocation.tier]
    .flatMap((tier) => nodes.filter((n) => n.tier === tier && !have.has(n.id)).sort((a, b) => free(b) - free(a)))
    .slice(0, replicas - allocation.nodes.length);
  if (allocation.nodes.length + extra.length < replicas) return allocation; // the caller refuses it
  return {
    ...allocation,
    reason: `${allocation.reason}; ${replicas} replicas, so also on ${[...new Set(extra.map((n) => n.tier))].join(' and ')}`,
    nodes: [...allocation.nodes, ...extra.map((n) => ({ id: n.id, address: n.address, weight: 1 }))],
  };
}

/**
 * The policy below for `replicas` copies: the reservation counts every copy, and the job goes on at least as
 * many nodes as copies (each key's copies on distinct nodes: placement.ts `pickNodes`).
 */
function allocateCopies(hints: JobHints, nodes: readonly NodeState[], replicas: number): Allocation {
  const capacity = positive(hints.capacity);
  const throughput = positive(hints.peakThroughput);
  const { tier: wanted, reason } = chooseTier(hints, capacity, throughput);
  const tier = FALLBACK[wanted].find((t) => nodes.some((n) => n.tier === t)) ?? wanted;
  const tierNodes = nodes.filter((n) => n.tier === tier);
  const base = {
    tier,
    reason: tier === wanted ? reason : `${reason}; no ${wanted} nodes, so ${tier}`,
    blockSize: DEFAULT_BLOCK_SIZE,
    maxValueBytes: positive(hints.maxValueBytes) ?? DEFAULT_MAX_VALUE_BYTES,
  };
  if (tierNodes.length === 0) return { ...base, nodes: [], reservation: (capacity ?? DEFAULT_CAPACITY) * replicas };

  let tierCapacity = 0;
  let tierBandwidth = 0;
  for (const n of tierNodes) {
    tierCapacity += n.capacity;
    tierBandwidth += n.bandwidth;
  }
  const throughputShare = throughput === undefined || tierBandwidth <= 0 ? 0 : Math.min(1, throughput / tierBandwidth);
  const reservation = Math.max(capacity ?? DEFAULT_CAPACITY, throughputShare * tierCapacity) * replicas;

  const meanBandwidth = tierBandwidth / tierNodes.length;
  const forThroughput = Math.max(replicas, throughput === undefined || meanBandwidth <= 0 ? 1 : Math.ceil(throughput / meanBandwidth));
  const fitting = fewestFitting(tierNodes, reservation, Math.min(forThroughput, tierNodes.length));
  if (fitting !== null) return { ...base, reservation, nodes: fitting.map((n) => ({ id: n.id, address: n.address, weight: 1 })) };
  // Nothing fits whole: every node of the tier (by id), each weighted by the room it has left.
  const byId = [...tierNodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const room = byId.map((n) => Math.max(free(n), 0));
  const total = sum(room);
  return {
    ...base,
    reason: `${base.reason}; tier short of room, spread by free space`,
    reservation,
    nodes: byId.map((n, i) => ({ id: n.id, address: n.address, weight: total > 0 ? room[i]! / total : 1 })),
  };
}

/**
 * The fewest nodes, `from` at least, each with room for an equal share of `reservation`; of the nodes that fit,
 * the tightest (least free room, then lowest id), tightest first. Null when no count fits.
 *
 * The free rooms alone are sorted (a Float64Array, no comparator): the rooms a share fits are a suffix of them,
 * which only grows as the share shrinks, so one walk down finds the count; then one pass picks the nodes. At
 * ~2,000–4,000 nodes a tier this took 0.9–2.0 ms a registration sorting the nodes themselves (twice, by id and by
 * room) and a filter per count before that (tens of ms for a large job at 10,000 nodes, bench scale).
 */
function fewestFitting(nodes: readonly NodeState[], reservation: number, from: number): NodeState[] | null {
  const rooms = new Float64Array(nodes.length);
  for (let i = 0; i < nodes.length; i++) rooms[i] = free(nodes[i]!);
  rooms.sort();
  let fitFrom = rooms.length;
  for (let count = from; count <= rooms.length; count++) {
    const share = reservation / count;
    while (fitFrom > 0 && rooms[fitFrom - 1]! >= share) fitFrom--;
    if (rooms.length - fitFrom < count) continue;
    // The `count` smallest rooms at or above the share end at `edge`: every node below it, and of those at it
    // the lowest ids.
    const edge = rooms[fitFrom + count - 1]!;
    const below: NodeState[] = [];
    const at: NodeState[] = [];
    for (const n of nodes) {
      const room = free(n);
      if (room >= share && room < edge) below.push(n);
      else if (room === edge) at.push(n);
    }
    const byRoom = (a: NodeState, b: NodeState) => free(a) - free(b) || (a.id < b.id ? -1 : 1);
    at.sort(byRoom);
    return [...below.sort(byRoom), ...at.slice(0, count - below.length)];
  }
  return null;
}

function chooseTier(hints: JobHints, capacity: number | undefined, throughput: number | undefined): { tier: Tier; reason: string } {
  if (hints.latencySensitive === true) return { tier: 'dram', reason: 'latency-sensitive' };
  if (capacity !== undefined && throughput !== undefined && throughput / capacity < HDD_MAX_TOUCH_RATE) {
    return { tier: 'hdd', reason: 'capacity-heavy with little throughput' };
  }
  if (hints.latencySensitive === false) return { tier: 'ssd', reason: 'not latency-sensitive' };
  return { tier: 'dram', reason: 'no tier hints' };
}

function free(node: NodeState): number {
  return node.capacity - node.reserved;
}

function sum(values: number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

function positive(value: number | undefined): number | undefined {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : undefined;
}

export interface Growth {
  /** The job's new newest generation: its nodes plus any added, weighted by free room. */
  nodes: { id: string; address: string; weight: number }[];
  added: string[];
  /** Bytes added to the job's reservation. */
  extraReservation: number;
}

/**
 * More room for a job whose node answered FULL. Adds the roomiest node of the first tier in the spill order
 * (the job's own tier, then DRAM, SSD, HDD) that has a node with room the job does not use yet, then weights
 * every node of the new generation by its free room, so the full node takes no new keys. `free` should count
 * what nodes report as used, not only what is reserved. A node with less than `minRoom` free (a block of the
 * job's values) counts as full: one with a few hundred KB left looked roomy, and two full DRAM nodes took turns
 * as the job's newest generation until it had 16 and writes failed FULL, the SSD and HDD nodes empty (an
 * outsider's run). Null when no node anywhere has room: FULL.
 */
export function growJob(
  current: readonly { id: string; address: string }[],
  tier: Tier,
  nodes: readonly NodeState[],
  free: (node: NodeState) => number,
  reservation: number,
  minRoom = 0,
): Growth | null {
  const inJob = new Set(current.map((n) => n.id));
  const order = [tier, ...TIERS.filter((t) => t !== tier)];
  const roomOf = (n: NodeState) => {
    const room = free(n);
    return room > minRoom ? room : 0;
  };
  let added: NodeState | undefined;
  for (const t of order) {
    added = nodes.filter((n) => n.tier === t && !inJob.has(n.id) && roomOf(n) > 0).sort((a, b) => roomOf(b) - roomOf(a))[0];
    if (added !== undefined) break;
  }
  const members = nodes.filter((n) => inJob.has(n.id) || n.id === added?.id);
  const room = members.map(roomOf);
  const total = sum(room);
  if (total <= 0) return null;
  return {
    nodes: members.map((n, i) => ({ id: n.id, address: n.address, weight: room[i]! / total })).filter((n) => n.weight > 0),
    added: added === undefined ? [] : [added.id],
    extraReservation: added === undefined ? 0 : Math.min(roomOf(added), Math.max(reservation, DEFAULT_CAPACITY)),
  };
}

/** Reservations follow measured use within this band once a job holds data. */
export const RESERVATION_HEADROOM = 1.25;
export const RESERVATION_MAX_RATIO = 1.5;
const MIN_RESERVATION = 1024 * 1024;

/**
 * A job's reservation after a report of what it holds: unchanged while it stays between the bytes held and
 * 1.5× them; otherwise set to 1.25× (at least 1 MiB). Pocket kept reservations at what hints asked for
 * (345.7 GB reserved for 28.6 GB used in its own trace); Satchel starts from hints and then follows use.
 * A job that holds nothing yet keeps what its hints reserved.
 */
export function rightsizeReservation(reservation: number, usage: number): number {
  if (usage <= 0) return reservation;
  if (reservation >= usage && reservation <= usage * RESERVATION_MAX_RATIO) return reservation;
  return Math.max(Math.ceil(usage * RESERVATION_HEADROOM), MIN_RESERVATION);
}
