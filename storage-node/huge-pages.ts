import type { Logger } from 'pino';
import { libcFunction } from './libc.ts';

export interface HugePageSwitchOptions {
  logger: Logger;
  /** A count that moves whenever the node serves something (the server's op counter). */
  activity: () => number;
  /** How long without a request before huge pages are turned off (default 10 s). */
  idleMs?: number;
  /** How often to look (default 500 ms): huge pages come back at most this long after the first request. */
  everyMs?: number;
  /** For tests: what to call instead of prctl(PR_SET_THP_DISABLE), and the clock (ms). */
  setDisabled?: (disabled: boolean) => void;
  now?: () => number;
}

/** prctl(2) option: set or clear the process's "no transparent huge pages" flag (Linux 3.15+). */
const PR_SET_THP_DISABLE = 41;

/**
 * Transparent huge pages while the node is being used, none once it has been idle `idleMs`.
 *
 * Why: a node runs with glibc asking for huge pages on its heap (deploy's STORAGE_NODE_ENV: a 256×256 sort's
 * node CPU 29 → 19 s). Once a job's data is freed and trimmed, the heap is left with 2 MiB ranges holding a few
 * live pages each, and the kernel's khugepaged collapses such ranges back into whole huge pages, filling the
 * holes: an idle node that had held 512 MiB went 94 → 111 → 127 MB in 20 s with nothing stored, until its
 * next trim split them again (and the trim may be two minutes away: heap-trim.ts). With the process's THP flag
 * off (prctl PR_SET_THP_DISABLE) khugepaged leaves it alone and new faults take 4 KiB pages; the first request
 * after idling turns it back on within `everyMs`.
 *
 * Not Linux, or no koffi binary for the platform: a no-op, said once in the log.
 */
export class HugePageSwitch {
  private readonly timer: NodeJS.Timeout | null;
  private readonly now: () => number;
  private readonly idleMs: number;
  private lastActivity: number;
  private lastActiveAt: number;
  /** Whether huge pages are on for the process now (they are at start: nothing turned them off). */
  on = true;
  /** Times they were turned off (tests, debugging). */
  turnedOff = 0;
  /** A switch failed: no more tries. */
  private failed = false;

  private constructor(
    private readonly setDisabled: ((disabled: boolean) => void) | null,
    private readonly options: HugePageSwitchOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.idleMs = options.idleMs ?? 10_000;
    this.lastActivity = options.activity();
    this.lastActiveAt = this.now();
    if (setDisabled === null) {
      this.timer = null;
      return;
    }
    this.timer = setInterval(() => this.check(), options.everyMs ?? 500);
    this.timer.unref();
  }

  static async start(options: HugePageSwitchOptions): Promise<HugePageSwitch> {
    return new HugePageSwitch(options.setDisabled ?? (await libcThpSwitch(options.logger)), options);
  }

  /** One look (the timer's; public for tests). */
  check(): void {
    if (this.setDisabled === null || this.failed) return;
    const activity = this.options.activity();
    const now = this.now();
    if (activity !== this.lastActivity) {
      this.lastActivity = activity;
      this.lastActiveAt = now;
      if (!this.on) this.turn(true);
    } else if (this.on && now - this.lastActiveAt >= this.idleMs) {
      this.turn(false);
    }
  }

  private turn(on: boolean): void {
    try {
      this.setDisabled!(!on);
      this.on = on;
      if (!on) this.turnedOff++;
    } catch (error) {
      // A kernel without the option (before 3.15) or a sandbox refusing it: said once, then left as it is.
      this.options.logger.warn({ err: error, on }, 'could not switch transparent huge pages: leaving them as they are');
      this.failed = true;
      this.close();
    }
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }
}

async function libcThpSwitch(logger: Logger): Promise<((disabled: boolean) => void) | null> {
  const prctl = await libcFunction<(...args: unknown[]) => number>(
    'int prctl(int option, ...)',
    logger,
    'prctl unavailable (not glibc, or no koffi build for this platform): huge pages stay as the environment set them',
  );
  if (prctl === null) return null;
  const ulong = 'unsigned long';
  return (disabled) => {
    if (prctl(PR_SET_THP_DISABLE, ulong, disabled ? 1 : 0, ulong, 0, ulong, 0, ulong, 0) !== 0) {
      throw new Error(`prctl(PR_SET_THP_DISABLE, ${disabled ? 1 : 0}) failed`);
    }
  };
}
