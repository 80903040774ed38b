import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface IdleCollectorOptions {
  /** How often to look (default 10 s); the node must have served nothing for a whole period. */
  everyMs?: number;
  /** Collect when the heap in use grew this much since the last collection (default 4 MiB). */
  growthBytes?: number;
  /** A count that moves whenever the node serves something (the server's op counter). */
  activity: () => number;
  /** Runs after each collection (the node: a heap trim, to return what it freed). */
  afterCollect?: () => void;
  /** For tests: the collector and the heap reading. */
  collect?: () => void;
  heapUsed?: () => number;
}

/**
 * A full garbage collection when the node has been idle a while and its heap (with external memory: value
 * buffers) has grown since the last one.
 *
 * Why: an idle node still makes garbage — its report to the controller every second is a gRPC call, ~80 KB
 * of grpc-js and http2 objects — and about 10 KB/s of it outlives a scavenge, so it piles up in the old
 * generation, which V8 collects only once it has grown by 8 MB or more. So an idle node's RSS climbed ~8 %
 * over a 10-minute soak (an HDD node nobody used: heap in use 14 → 19 MB) and would drop again only minutes
 * later; and the buffers of a job dropped at the end of a burst stayed allocated until V8 happened to collect.
 * V8's memory reducer is meant for this, but does not run again after its first few collections.
 * `--optimize-for-size` (2 MB steps) would do it too, but costs the data path: measured with `bench micro`,
 * 64 KiB PUTs ×64 in flight went from 22,953 to 16,804/s. An idle node loses nothing to a 5–15 ms collection.
 */
export class IdleCollector {
  private readonly timer: NodeJS.Timeout;
  private readonly collect: () => void;
  private readonly heapUsed: () => number;
  private readonly growthBytes: number;
  private lastActivity: number;
  private baseline: number;
  /** Collections run so far (metrics and tests). */
  collections = 0;

  constructor(private readonly options: IdleCollectorOptions) {
    this.collect = options.collect ?? exposedGc();
    // External memory too: the buffers of a dropped job's values are garbage V8 frees only when it collects.
    this.heapUsed = options.heapUsed ?? (() => usedAndExternal());
    this.growthBytes = options.growthBytes ?? 4 * 1024 * 1024;
    this.lastActivity = options.activity();
    this.baseline = this.heapUsed();
    this.timer = setInterval(() => this.check(), options.everyMs ?? 10_000);
    this.timer.unref();
  }

  /** One look (the timer's; public for tests). */
  check(): void {
    const activity = this.options.activity();
    const idle = activity === this.lastActivity;
    this.lastActivity = activity;
    const used = this.heapUsed();
    // Busy: V8's own schedule is right, and the heap after its next collection is the baseline.
    if (!idle) {
      this.baseline = Math.min(this.baseline, used);
      return;
    }
    if (used - this.baseline < this.growthBytes) return;
    this.collect();
    this.collections++;
    this.baseline = this.heapUsed();
    this.options.afterCollect?.();
  }

  close(): void {
    clearInterval(this.timer);
  }
}

function usedAndExternal(): number {
  const stats = getHeapStatistics();
  return stats.used_heap_size + stats.external_memory;
}

/** `gc()` without starting Node with --expose-gc: the flag set at run time shows up in a new context. */
function exposedGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
