/**
 * What the cluster decided and why: the autoscaler's launches and drains, nodes joining and leaving, jobs
 * registered, deregistered and collected, and a job's data token handed out through the console
 * (`job-token-issued`: its Redis URL) (`details.job` names the job). Kept in
 * memory (the last `capacity` events), served by `GET /api/events` and counted in `/metrics`.
 */
export interface ClusterEvent {
  /** Increasing; `GET /api/events?after=N` returns the newer ones. */
  seq: number;
  at: string;
  kind:
    | 'scale-up'
    | 'scale-down'
    | 'node-launched'
    | 'node-joined'
    | 'drain-started'
    | 'drain-finished'
    | 'drain-failed'
    | 'node-removed'
    | 'launch-failed'
    | 'node-lost'
    | 'node-back'
    | 'node-restarted'
    | 'copies-restored'
    | 'copies-added'
    | 'replication-failed'
    | 'copy-failed'
    | 'quota-reached'
    | 'tenant-added'
    | 'tenant-removed'
    | 'job-registered'
    | 'job-deregistered'
    | 'job-collected'
    | 'job-token-issued';
  tier?: string;
  node?: string;
  /** Why, in words an operator reads: the measured utilization against the band, or who asked. */
  reason: string;
  /** Figures behind the decision (utilization, keys moved, seconds). */
  details?: Record<string, number | string>;
}

export class EventLog {
  private readonly events: ClusterEvent[] = [];
  private seq = 0;
  private readonly listeners = new Set<(event: ClusterEvent) => void>();

  constructor(private readonly capacity = 1000) {}

  add(kind: ClusterEvent['kind'], reason: string, fields: Pick<ClusterEvent, 'tier' | 'node' | 'details'> = {}): ClusterEvent {
    const event: ClusterEvent = { seq: ++this.seq, at: new Date().toISOString(), kind, reason, ...fields };
    this.events.push(event);
    if (this.events.length > this.capacity) this.events.shift();
    for (const listener of this.listeners) listener(event);
    return event;
  }

  /** Events with seq greater than `after`, oldest first. */
  since(after = 0): ClusterEvent[] {
    return this.events.filter((e) => e.seq > after);
  }

  /** Calls `listener` with every new event; returns the unsubscribe function. */
  subscribe(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
