import type { JobHints, NodeInfo, WirePlacement } from '../proto/index.ts';

export interface JobRecord {
  id: string;
  name: string;
  hints: JobHints;
  tier: string;
  reservation: number;
  createdAt: number;
  placement: WirePlacement;
}

export interface NodeRecord extends NodeInfo {
  registeredAt: number;
}

/** What the controller knows: jobs and nodes. In memory for now; durable in LevelDB with the tiers. */
export class ClusterRegistry {
  readonly jobs = new Map<string, JobRecord>();
  readonly nodes = new Map<string, NodeRecord>();
  readonly metadata = new Set<string>();
}
