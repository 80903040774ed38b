/**
 * Where a key lives: weighted rendezvous hashing over a job's nodes. Each (key, node) pair gets a score
 * weight / -ln(u), u a uniform hash of the pair; the highest score owns the key. Adding a node moves only the
 * keys that now score highest on it, and weights shift load proportionally. Client and servers share this
 * code so they agree on every key.
 */
export interface PlacementNode {
  id: string;
  /** host:port of the node's data plane. */
  address: string;
  weight: number;
}

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
}

/** FNV-1a over UTF-16 code units: no encoding step on the hot path. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's finaliser: spreads a 32-bit value over all bits. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Index into `nodes` of the node that owns a key with this hash. */
export function pickNode(nodes: readonly PlacementNode[], keyHash: number): number {
  if (nodes.length === 1) return 0;
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
 * Indexes into `nodes` of the `count` highest-scoring nodes for a key with this hash, best first: the key's
 * replicas (the first is `pickNode`'s). Fewer when fewer nodes have weight. Removing a node changes a key's
 * set only where that node was in it: the next-best node takes its place.
 */
export function pickNodes(nodes: readonly PlacementNode[], keyHash: number, count: number): number[] {
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
