import type { JobHints, NodeInfo } from '../proto/index.ts';

/** Defaults for missing hints, documented in controller/README.md. */
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_CAPACITY = 256 * 1024 * 1024;

export interface Allocation {
  tier: string;
  /** Nodes and weights for the job's first placement generation. */
  nodes: { id: string; address: string; weight: number }[];
  /** Bytes reserved for the job across its nodes. */
  reservation: number;
  blockSize: number;
  maxValueBytes: number;
}

/**
 * First version of the policy: every job goes to the DRAM tier, spread over all its nodes with equal weights,
 * reserving its capacity hint. Hint-driven tier choice and best-fit reservations replace this with the tiers.
 */
export function allocateJob(hints: JobHints, nodes: readonly NodeInfo[]): Allocation {
  const dram = nodes.filter((n) => n.tier === 'dram').sort((a, b) => a.id.localeCompare(b.id));
  return {
    tier: 'dram',
    nodes: dram.map((n) => ({ id: n.id, address: n.address, weight: 1 })),
    reservation: positive(hints.capacity) ?? DEFAULT_CAPACITY,
    blockSize: DEFAULT_BLOCK_SIZE,
    maxValueBytes: positive(hints.maxValueBytes) ?? DEFAULT_MAX_VALUE_BYTES,
  };
}

function positive(value: number | undefined): number | undefined {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : undefined;
}
