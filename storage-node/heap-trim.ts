import type { Logger } from 'pino';

export interface HeapTrimmerOptions {
  logger: Logger;
  /** Default 10 s. */
  everyMs?: number;
  /** For tests: the trim to call instead of libc's. */
  trim?: () => void;
}

/**
 * Gives the free pages of glibc's heap back to the OS every few seconds: `malloc_trim(0)` through koffi (an FFI
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
 * lock), and without it the nodes' RSS grew 13–16 % in three minutes (storage-node/README.md, 2026-12-06).
 *
 * Not glibc (musl, macOS) or no koffi binary for the platform: a no-op, said once in the log.
 */
export class HeapTrimmer {
  private timer: NodeJS.Timeout | null = null;
  /** Calls made so far (tests, debugging). */
  calls = 0;

  private constructor(private readonly trimNow: (() => void) | null) {}

  static async start(options: HeapTrimmerOptions): Promise<HeapTrimmer> {
    const trim = options.trim ?? (await libcMallocTrim(options.logger));
    const trimmer = new HeapTrimmer(trim);
    if (trim !== null) {
      trimmer.timer = setInterval(() => trimmer.trim(), options.everyMs ?? 10_000);
      trimmer.timer.unref();
    }
    return trimmer;
  }

  /** Whether there is a trim to call on this platform. */
  get active(): boolean {
    return this.trimNow !== null;
  }

  /** One trim now (the timer's; also after an idle collection, which frees a lot at once). */
  trim(): void {
    if (this.trimNow === null) return;
    this.trimNow();
    this.calls++;
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

async function libcMallocTrim(logger: Logger): Promise<(() => void) | null> {
  if (process.platform !== 'linux') return null;
  try {
    const { default: koffi } = await import('koffi');
    const mallocTrim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
    return () => void mallocTrim(0);
  } catch (error) {
    logger.info(
      { err: error },
      'malloc_trim unavailable (not glibc, or no koffi build for this platform): freed heap stays with the process',
    );
    return null;
  }
}
