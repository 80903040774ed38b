/**
 * The measuring side of `satchel bench abuse`: the well-behaved job (its lanes, and each phase's operations),
 * the RSS of its node and of the controller every 250 ms, and the CPU each process used in a phase.
 */
import { randomBytes } from 'node:crypto';
import { type RegisteredJob, SatchelError } from '../client/index.ts';
import type { AbuseRow, RssFigures, WellBehavedFigures } from './abuse-report.ts';
import { cpuSecondsOf, rssOf } from './proc.ts';
import { LatencyRecorder, round } from './stats.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Keys the well-behaved job cycles through in a phase (each phase has its own). */
export const KEYS = 64;
const VALUE = randomBytes(1024);

/** One phase's operations of the well-behaved job: those started while it was measured. */
class PhaseStats {
  readonly latencies = new LatencyRecorder();
  ops = 0;
  puts = 0;
  failures = 0;
  inflight = 0;
  readonly codes: Record<string, number> = {};
  readonly samples: string[] = [];
  started = performance.now();
  ended = 0;

  figures(): WellBehavedFigures {
    const seconds = ((this.ended || performance.now()) - this.started) / 1000;
    return {
      seconds: round(seconds, 2),
      ops: this.ops,
      ops_per_s: Math.round(this.ops / seconds),
      puts: this.puts,
      ...this.latencies.summary(),
      failures: this.failures,
      failure_codes: this.codes,
      failure_samples: this.samples,
    };
  }
}

/** The well-behaved job: `lanes` loops, each one request at a time, paced to `rate` over all of them. */
export class WellBehaved {
  private stats: PhaseStats | null = null;
  private running = true;
  private prefix = 'warm-up/';
  private loops: Promise<void>[] = [];

  constructor(
    private readonly job: RegisteredJob,
    private readonly rate: number,
    private readonly lanes: number,
  ) {}

  start(): void {
    this.loops = Array.from({ length: this.lanes }, (_, i) => this.lane(i));
  }

  /** From now on operations count for a new phase, on its own keys. */
  measure(prefix: string): PhaseStats {
    this.prefix = prefix;
    this.stats = new PhaseStats();
    return this.stats;
  }

  /** Ends the phase: later operations count for none. Resolves once its operations in flight are done (≤ 15 s). */
  async endPhase(): Promise<void> {
    const stats = this.stats;
    this.stats = null;
    if (stats === null) return;
    stats.ended = performance.now();
    const until = performance.now() + 15_000;
    while (stats.inflight > 0 && performance.now() < until) await sleep(20);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async lane(lane: number): Promise<void> {
    const period = (this.lanes / this.rate) * 1000;
    let next = performance.now() + (lane / this.lanes) * period;
    for (let n = 0; this.running; n++) {
      const now = performance.now();
      next = Math.max(next + period, now - period);
      if (next > now) await sleep(next - now);
      if (!this.running) break;
      const stats = this.stats;
      const key = `${this.prefix}${(lane * 8 + (n >> 1)) % KEYS}`;
      const put = n % 2 === 0;
      if (stats !== null) stats.inflight++;
      const t0 = performance.now();
      try {
        if (put) await this.job.put(key, VALUE);
        else await this.job.get(key);
        if (stats !== null) {
          stats.latencies.add((performance.now() - t0) * 1000);
          stats.ops++;
          if (put) stats.puts++;
        }
      } catch (error) {
        if (stats !== null) {
          stats.failures++;
          const code = error instanceof SatchelError ? error.code : ((error as Error)?.name ?? 'Error');
          stats.codes[code] = (stats.codes[code] ?? 0) + 1;
          const line = `${put ? 'put' : 'get'} ${key}: ${code}: ${(error as Error)?.message ?? String(error)}`.slice(0, 300);
          if (stats.samples.length < 5) stats.samples.push(line);
        }
      } finally {
        if (stats !== null) stats.inflight--;
      }
    }
  }
}

/** RSS of the job's node and the controller every 250 ms, and direct readings when asked. */
export class RssWatch {
  private readonly readings: { at: number; node: number | null; controller: number | null }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly nodePid: number,
    private readonly controllerPid: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.read(), 250);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  async read(): Promise<{ node: number | null; controller: number | null }> {
    const [node, controller] = await Promise.all([rssOf(this.nodePid), rssOf(this.controllerPid)]);
    this.readings.push({ at: performance.now(), node, controller });
    if (this.readings.length > 20_000) this.readings.splice(0, 10_000);
    return { node, controller };
  }

  /** Figures over [from, to] for one process, with its readings in `beforeWindow` and after. */
  figures(which: 'node' | 'controller', beforeWindow: [number, number], from: number, to: number, after: number | null): RssFigures {
    const values = (a: number, b: number) =>
      this.readings
        .filter((r) => r.at >= a && r.at <= b)
        .map((r) => r[which])
        .filter((v): v is number => v !== null);
    const median = (list: number[]) => (list.length === 0 ? null : list.sort((x, y) => x - y)[Math.floor((list.length - 1) / 2)]!);
    const within = values(from, to);
    const max = within.length > 0 ? Math.max(...within) : null;
    const before = median(values(...beforeWindow));
    const end = median(values(Math.max(from, to - 2_000), to));
    return {
      before_bytes: before,
      max_bytes: max,
      end_bytes: end,
      after_bytes: after,
      growth_bytes: before !== null && max !== null ? max - before : null,
      growth_pct: before !== null && end !== null && before > 0 ? round(((end - before) / before) * 100, 1) : null,
    };
  }
}

/** CPU of the node, the controller, the attacker and this process from now until `done`, % of one core. */
export async function cpuMeter(pids: {
  node: number;
  controller: number;
  attacker: () => number | undefined;
}): Promise<() => Promise<AbuseRow['cpu_pct']>> {
  const at = performance.now();
  const own = process.cpuUsage();
  const attackerPid = pids.attacker();
  const [node, controller, attacker] = await Promise.all([
    cpuSecondsOf(pids.node),
    cpuSecondsOf(pids.controller),
    cpuSecondsOf(attackerPid),
  ]);
  return async () => {
    const seconds = (performance.now() - at) / 1000;
    const [node2, controller2, attacker2] = await Promise.all([
      cpuSecondsOf(pids.node),
      cpuSecondsOf(pids.controller),
      cpuSecondsOf(pids.attacker() === attackerPid ? attackerPid : undefined),
    ]);
    const pct = (a: number | null, b: number | null) => (a === null || b === null ? null : round(((b - a) / seconds) * 100, 1));
    const used = process.cpuUsage(own);
    return {
      node: pct(node, node2),
      controller: pct(controller, controller2),
      attacker: pct(attacker, attacker2),
      bench: round(((used.user + used.system) / 1e6 / seconds) * 100, 1),
    };
  };
}
