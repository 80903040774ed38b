/**
 * What `bench abuse`'s driver (perf/abuse.ts) and its attacker process (perf/abuse-attacker.ts) say to each other
 * over IPC: which attack to make on what, and what came of it.
 */

/** The attacks, in the order a run makes them. */
export const ATTACKS = [
  'anonymous-register',
  'huge-capacity',
  'grow-loop',
  'epoch-max',
  'idle-connections',
  'stalled-watchers',
  'long-waits',
  'stalled-sse',
  'internal-keys',
] as const;
export type AttackName = (typeof ATTACKS)[number];

/** What the attacker may know: everything a function of the well-behaved job holds (its ticket), and the tenant key. */
export interface AttackTarget {
  controller: string;
  console: string;
  /** Read-only console access (the SSE clients present it). */
  viewerToken: string;
  /** The default tenant's key (registrations that are refused for their hints, and the churn under the SSE clients). */
  tenantKey: string;
  jobId: string;
  /** The well-behaved job's data token: what its ticket carries. */
  dataToken: string;
  /** The job's placement epoch (what its frames carry: an older one is answered STALE), and its nodes (generation 0). */
  epoch: number;
  nodes: { id: string; address: string; weight: number }[];
  /** The well-behaved job's keys in this phase: `${prefix}${i}` for i < keys. */
  prefix: string;
  keys: number;
}

/** How big each attack is (the figures at scale 1). */
export interface AttackSizes {
  idleConnections: number;
  watchers: number;
  waits: number;
  sseClients: number;
  /** Requests the request floods keep in flight. */
  inFlight: number;
  /**
   * stalled-sse: seconds of job churn alone before the streams open, so that what the controller grows by to
   * serve the churn is not counted against the streams.
   */
  sseLeadInSeconds: number;
}

export type ToAttacker = { start: { attack: AttackName; target: AttackTarget; sizes: AttackSizes } } | { stop: true };

export type FromAttacker = { armed: { note: string } } | { outcome: AttackOutcome } | { fatal: string };

export interface AttackOutcome {
  /** Requests sent (connections opened, for idle-connections and stalled-sse). */
  sent: number;
  /** Their answers by status or error code (OK, UNAUTHORIZED, FULL, …); `unanswered` for those with none at the end. */
  answers: Record<string, number>;
  /** Connections the server closed (or reset) on the attacker. */
  closed_by_server: number;
  /** Attack-specific figures (events a stalled watcher was sent, how long the node took to close idle connections, …). */
  details: Record<string, number | string | boolean | null>;
  /** A few error messages as the servers gave them. */
  samples: string[];
}
