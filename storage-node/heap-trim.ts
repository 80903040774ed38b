import type { Logger } from 'pino';
import { libcFunction } from './libc.ts';

export interface HeapTrimmerOptions {
  logger: Logger;
  /** The shortest wait between two trims of the timer (default 10 s); longer after a slow trim (`nextWaitMs`). */
  everyMs?: number;
  /** The longest (default 2 minutes). */
  maxEveryMs?: number;
  /** For tests: the trim to call instead of libc's, and the clock that times it (ms). */
  trim?: () => void;
  now?: () => number;
}

/**
 * The share of the node's time the timer's trims may take: a trim that stalled the event loop `d` ms is followed
 * by the next at least `d / TRIM_BUDGET` later (a 40 ms trim: 40 s). Under the 1,000 ops/s soak a trim every
 * 10 s took 4–72 ms, and a lone client's GETs on the DRAM node beside it had p99 10.6–12.5 ms and p99.9 32–62
 * ms; with no trims, 5.2–9.0 and 13–22 ms (perf/RESULTS.md, 2026-12-07). Idle, a trim takes under a millisecond
 * and the timer keeps to `everyMs`.
 */
const TRIM_BUDGET = 0.001;

/**
 * Gives the free pages of glibc's heap back to the OS every 10 s or more: `malloc_trim(0)` through koffi (an FFI
 * with prebuilt binaries, so nothing to compile).
 *
 * Why: a node runs with MALLOC_TRIM_THRESHOLD_ at 128 MiB (deploy's STORAGE_NODE_ENV) so that glibc does not
 * return and re-fault heap pages at every free of a read chunk — 543 → 190 µs of system time per 1 MiB PUT.
 * But glibc only ever returns memory from the top of the heap, so the node's RSS stayed at the most it had
 * ever held plus the garbage V8 had not yet collected: in `bench soak`, whose DRAM data swings 25–126 MB
 * within 20 s, the DRAM node climbed 263 → 309 MB over 10 minutes with no leak, and kept it all once every
 * job had ended (156 MB of heap held, 11 MB in use: `malloc_trim` by hand gave back the difference). One call
 * every 10 s keeps the cheap reuse between calls and returns what stayed free: measured here, 8 ms to give
 * back 120 MB, well under 1 ms when there is little. Under load it costs more: in a 1,000 ops/s soak each call
 * took 13–83 ms for 5–87 MB (walking and madvising every free chunk), a stall in the soak's p99.9. Left as is:
 * called through koffi's worker thread the event loop stalled as long (the main thread's frees wait on the arena
 * lock), and without it the nodes' RSS grew 13–16 % in three minutes (storage-node/README.md, 2026-12-06). So a
 * slow trim pushes the next one back (TRIM_BUDGET): under sustained churn memory freed is mostly reused before
 * the next trim, and returning it only to fault it back in is the waste.
 *
 * Not glibc (musl, macOS) or no koffi binary for the platform: a no-op, said once in the log.
 */
export class HeapTrimmer {
  private timer: NodeJS.Timeout | null = null;
  /** Calls made so far (tests, debugging). */
  calls = 0;
  /** How long the last trim took (ms). */
  lastTrimMs = 0;
  private readonly everyMs: number;
  private readonly maxEveryMs: number;
  private readonly now: () => number;
  private readonly logger: Logger;

  private constructor(
    private readonly trimNow: (() => void) | null,
    options: HeapTrimmerOptions,
  ) {
    this.everyMs = options.everyMs ?? 10_000;
    this.maxEveryMs = Math.max(this.everyMs, options.maxEveryMs ?? 120_000);
    this.now = options.now ?? (() => performance.now());
    this.logger = options.logger;
  }

  static async start(options: HeapTrimmerOptions): Promise<HeapTrimmer> {
    const trim = options.trim ?? (await libcMallocTrim(options.logger));
    const trimmer = new HeapTrimmer(trim, options);
    if (trim !== null) trimmer.schedule(trimmer.everyMs);
    return trimmer;
  }

  /** The timer's wait after the last trim: `everyMs`, or longer when that trim was slow (TRIM_BUDGET). */
  get nextWaitMs(): number {
    return Math.min(this.maxEveryMs, Math.max(this.everyMs, Math.round(this.lastTrimMs / TRIM_BUDGET)));
  }

  private schedule(waitMs: number): void {
    this.timer = setTimeout(() => {
      this.trim();
      const next = this.nextWaitMs;
      if (next > this.everyMs)
        this.logger.info({ trimMs: +this.lastTrimMs.toFixed(1), nextInMs: next }, 'heap trim stalled the node: the next one later');
      this.schedule(next);
    }, waitMs);
    this.timer.unref();
  }

  /** Whether there is a trim to call on this platform. */
  get active(): boolean {
    return this.trimNow !== null;
  }

  /** One trim now (the timer's; also after an idle collection, which frees a lot at once), timed. */
  trim(): void {
    if (this.trimNow === null) return;
    const started = this.now();
    this.trimNow();
    this.lastTrimMs = this.now() - started;
    this.calls++;
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

async function libcMallocTrim(logger: Logger): Promise<(() => void) | null> {
  const mallocTrim = await libcFunction<(pad: number) => number>(
    'int malloc_trim(size_t pad)',
    logger,
    'malloc_trim unavailable (not glibc, or no koffi build for this platform): freed heap stays with the process',
  );
  return mallocTrim === null ? null : () => void mallocTrim(0);
}
