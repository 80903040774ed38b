/**
 * Where a key lives: its slot (slot.ts: Redis Cluster's CRC16 of the key or its hash tag), then weighted
 * rendezvous hashing of the slot's bucket over a job's nodes. Each (bucket, node) pair gets a score
 * weight / -ln(u), u a uniform hash of the pair; the highest score owns the bucket's slots. Adding a node moves
 * only the buckets that now score highest on it, and weights shift load proportionally. Client and servers share
 * this code so they agree on every key, and a Redis Cluster client agrees with them through the slot map the
 * RESP front door serves.
 *
 * Buckets of 16 slots (1,024 of them), not single slots: a slot map lists one range per run of slots on one node,
 * and per-slot rendezvous over two nodes makes ~8,000 runs (a CLUSTER SLOTS answer of ~0.5 MB for every client
 * that connects); 1,024 buckets make ~500, while a node's share stays within ~3 % of its weight's.
 */
import { SLOTS } from './slot.ts';

export interface PlacementNode {
  id: string;
  /** host:port of the node's data plane. */
  address: string;
  weight: number;
  /** host:port of the node's RESP front door, when it has one (a job's `redisUrl`). */
  respAddress?: string;
  /**
   * The node restarted since the job was placed on it: what it held is gone (control.proto). A job with one copy
   * keeps it in any generation; a job with copies only in a remnant generation (control.proto Generation.remnant).
   */
  lost?: boolean;
}

/** What rendezvous needs of a node: its id and weight. */
export type Weighted = Pick<PlacementNode, 'id' | 'weight'>;

export interface Placement {
  jobId: string;
  /** Changes whenever the node set or weights change; frames carry it, nodes answer STALE to older ones. */
  epoch: number;
  /** Newest first. Reads fall back to older generations while keys move; writes go to the newest. */
  generations: PlacementNode[][];
  /** Values longer than this are split into blocks of this size, striped over the nodes. */
  blockSize: number;
  /** The job's largest value. */
  maxValueBytes: number;
  /** Copies of every key: its `replicas` highest-scoring nodes of a generation hold it (1: the owner only). */
  replicas: number;
  /**
   * How many of the generations, the oldest, are remnants (control.proto Generation.remnant): a job with copies
   * lost a node, and these keep its keys' holders as they were until every copy is restored. Reads that found
   * nothing newer ask any live holder there; none at all means every copy of the key was lost. 0 when absent.
   */
  remnants?: number;
}

/**
 * The generations that take writes, newest first: all but the remnants, the oldest (`Placement.remnants`). The
 * placement's own array when it has none (the common case: no copy made per call).
 */
export function writtenGenerations(placement: Pick<Placement, 'generations' | 'remnants'>): PlacementNode[][] {
  const { generations, remnants = 0 } = placement;
  return remnants === 0 ? generations : generations.slice(0, generations.length - remnants);
}

/** FNV-1a over UTF-16 code units: no encoding step. Node ids' hashes; and anything that needs a spread of strings. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Slots per placement bucket: a bucket's 16 slots always share their nodes. */
export const SLOT_BUCKET_BITS = 4;

/** The rendezvous input of a slot: its bucket, spread over 32 bits (golden-ratio multiply). */
function bucketHash(slot: number): number {
  return Math.imul((slot >>> SLOT_BUCKET_BITS) + 1, 0x9e3779b1) >>> 0;
}

/** murmur3's finaliser: spreads a 32-bit value over all bits. */
export function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Index into `nodes` of the node that owns the keys of this slot (slot.ts `keySlot`). */
export function pickNode(nodes: readonly Weighted[], slot: number): number {
  if (nodes.length === 1) return 0;
  const keyHash = bucketHash(slot);
  let best = -1;
  let bestScore = -Infinity;
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!;
    if (node.weight <= 0) continue;
    const u = (mix(keyHash ^ hashKey(node.id)) + 0.5) / 4294967296;
    const score = node.weight / -Math.log(u);
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  }
  return best;
}

/**
 * Indexes into `nodes` of the `count` highest-scoring nodes for a slot, best first: its keys' replicas (the
 * first is `pickNode`'s). Fewer when fewer nodes have weight. Removing a node changes a slot's set only where
 * that node was in it: the next-best node takes its place.
 */
export function pickNodes(nodes: readonly Weighted[], slot: number, count: number): number[] {
  const keyHash = bucketHash(slot);
  const scored: { index: number; score: number }[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!;
    if (node.weight <= 0) continue;
    const u = (mix(keyHash ^ hashKey(node.id)) + 0.5) / 4294967296;
    scored.push({ index: i, score: node.weight / -Math.log(u) });
  }
  scored.sort((a, b) => b.score - a.score);
  return scored.slice(0, count).map((s) => s.index);
}

/** A run of slots `[start, end]` (inclusive, as CLUSTER SLOTS gives them) whose keys `nodes[node]` owns. */
export interface SlotRange {
  start: number;
  end: number;
  node: number;
}

/**
 * The slot map of one generation: every slot in runs, ascending, each with its owner's index in `nodes` (-1 for
 * slots no node of weight owns). One rendezvous per bucket, not per slot.
 */
export function slotRanges(nodes: readonly Weighted[]): SlotRange[] {
  const ranges: SlotRange[] = [];
  const bucketSlots = 1 << SLOT_BUCKET_BITS;
  for (let slot = 0; slot < SLOTS; slot += bucketSlots) {
    const node = nodes.length === 0 ? -1 : pickNode(nodes, slot);
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.node === node) last.end = slot + bucketSlots - 1;
    else ranges.push({ start: slot, end: slot + bucketSlots - 1, node });
  }
  return ranges;
}

/** Whether a node's copies are gone: by default, its `lost` mark. */
type Gone = (node: Weighted & { lost?: boolean }) => boolean;
const markedLost: Gone = (node) => node.lost === true;

/**
 * Whether every holder of `slot` in one generation (its `count` highest-scoring nodes) is gone (marked lost, by
 * default): what the slot's keys held there died with all their copies. False for a generation without a node of weight.
 */
export function holdersLost(nodes: readonly (Weighted & { lost?: boolean })[], slot: number, count: number, gone = markedLost): boolean {
  const picked = pickNodes(nodes, slot, count);
  return picked.length > 0 && picked.every((i) => gone(nodes[i]!));
}

/** Whether some slot of the generation has every holder gone (`holdersLost`; one rendezvous per bucket). */
export function someSlotLost(nodes: readonly (Weighted & { lost?: boolean })[], count: number, gone = markedLost): boolean {
  if (!nodes.some(gone)) return false;
  for (let slot = 0; slot < SLOTS; slot += 1 << SLOT_BUCKET_BITS) if (holdersLost(nodes, slot, count, gone)) return true;
  return false;
}
