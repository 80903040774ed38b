/**
 * Starting again a process of a local cluster that died (LocalCluster's `restartProcesses`, on in `satchel up`):
 * a storage node, the controller or a metadata server, as Kubernetes restarts a pod's container: 1 s after the
 * exit, the wait doubling while it keeps dying within a minute of its start, or failing to start, at most 60 s;
 * one that lived a minute starts over at 1 s.
 */
const FIRST_MS = 1_000;
const MAX_MS = 60_000;
const RESET_AFTER_MS = 60_000;

/** The wait before the next restart, given the last one's (undefined: none yet) and when the process last started. */
export function nextRestartDelay(lastMs: number | undefined, startedAt: number | undefined, now: number): number {
  const livedLong = now - (startedAt ?? 0) >= RESET_AFTER_MS;
  return livedLong || lastMs === undefined ? FIRST_MS : Math.min(2 * lastMs, MAX_MS);
}

export interface RestartEvent {
  /** What was started again: a storage node's id, `controller`, or `metadata-<index>` (cluster.json's order). */
  id: string;
  afterMs: number;
  /** Why the start failed; then `retryMs` is when it is tried again (undefined: no longer wanted). */
  error?: Error;
  retryMs?: number;
}

/** The timers of the restarts: one per exit, and one per failed start until a start succeeds or is unwanted. */
export class ProcessRestarts {
  private readonly lastDelay = new Map<string, number>();

  constructor(private readonly report: (event: RestartEvent) => void) {}

  /**
   * `id`'s process exited on its own; `start` starts it again. `wanted` is asked when each wait is over: false
   * once the cluster stopped, or the process was stopped on purpose, removed, or started by someone else meanwhile.
   */
  exited(id: string, startedAt: number | undefined, wanted: () => boolean, start: () => Promise<unknown>): void {
    this.after(id, nextRestartDelay(this.lastDelay.get(id), startedAt, Date.now()), wanted, start);
  }

  private after(id: string, afterMs: number, wanted: () => boolean, start: () => Promise<unknown>): void {
    this.lastDelay.set(id, afterMs);
    setTimeout(() => {
      if (!wanted()) return;
      start().then(
        () => this.report({ id, afterMs }),
        (error: unknown) => {
          // A start that failed (a crash before ready, its ports still held) is tried again, as Kubernetes does.
          const retryMs = wanted() ? Math.min(2 * afterMs, MAX_MS) : undefined;
          this.report({ id, afterMs, error: error as Error, retryMs });
          if (retryMs !== undefined) this.after(id, retryMs, wanted, start);
        },
      );
    }, afterMs).unref();
  }
}

/**
 * What the restarts of a cluster's processes are called (`onRestart`'s `id`): `controller`, `metadata-<index>`
 * (its place in the cluster's list of metadata servers), or a storage node's id.
 */
export const METADATA_PREFIX = 'metadata-';

/** The metadata server a restart id names (its index), or null for any other id. */
export function metadataIndexOf(id: string): number | null {
  if (!id.startsWith(METADATA_PREFIX)) return null;
  const index = Number(id.slice(METADATA_PREFIX.length));
  return Number.isInteger(index) && index >= 0 ? index : null;
}

/** A restart id in words, for progress lines: "the controller", "metadata server 1", "storage node dram-1a2b3c". */
export function describeRestartId(id: string): string {
  if (id === 'controller') return 'the controller';
  const metadata = metadataIndexOf(id);
  return metadata !== null ? `metadata server ${metadata}` : `storage node ${id}`;
}
