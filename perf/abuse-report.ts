/**
 * What `satchel bench abuse` reports (abuse.ts runs it): the figures per phase, what each attack is and the
 * limit it should meet, the verdict on each limit from the attacker's outcome and the readings, the summary
 * against the targets, and the table for the terminal.
 */
import type { AttackName, AttackOutcome } from './abuse-protocol.ts';
import { round } from './stats.ts';

const MB = 2 ** 20;

/** What each attack is, and the limit it should meet. */
export const ATTACK_TEXT: Record<AttackName, { what: string; expected: string }> = {
  'anonymous-register': {
    what: 'RegisterJob flood without a tenant key (or a made-up one)',
    expected: 'every call refused UNAUTHORIZED, no job registered',
  },
  'huge-capacity': {
    what: 'RegisterJob with the tenant key and hints { capacity: 1e18 }',
    expected: 'every call refused BAD_REQUEST, no job registered',
  },
  'grow-loop': {
    what: "GrowJob in a loop with the job's data token, naming its node full",
    expected: "every call refused, the job's placement generations unchanged",
  },
  'epoch-max': {
    what: "PUTs on the job's keys with frame epoch 2^32 − 1 over a raw connection",
    expected: "every such PUT refused, the job's own operations keep succeeding",
  },
  'idle-connections': {
    what: 'TCP connections to the node that never send HELLO',
    expected: 'the node closes every one (its HELLO deadline)',
  },
  'stalled-watchers': {
    what: "WATCHes of every key on one connection that never reads, while the job's PUTs land",
    expected: 'node RSS growth ≤ 32 MB (the watcher is cut off, not buffered for)',
  },
  'long-waits': {
    what: 'one-hour WAITs for keys nobody writes, on one connection',
    expected: 'a cap on parked WAITs: those past it refused',
  },
  'stalled-sse': {
    what: 'console /api/stream clients that never read, while jobs churn',
    expected: 'controller RSS ≤ 5 % over the phase, against the end of the churn alone before it',
  },
  'internal-keys': { what: "LIST with INTERNAL_KEYS from the job's data token", expected: 'every LIST refused UNAUTHORIZED' },
};

export interface WellBehavedFigures {
  seconds: number;
  ops: number;
  ops_per_s: number;
  puts: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  failures: number;
  failure_codes: Record<string, number>;
  failure_samples: string[];
}

export interface RssFigures {
  /** Just before the attack was set up: the median of the last second's readings (every 250 ms). */
  before_bytes: number | null;
  /** Highest reading while it ran. */
  max_bytes: number | null;
  /** Median of the readings of its last two seconds. */
  end_bytes: number | null;
  /** A second after the attacker let go. */
  after_bytes: number | null;
  /** max − before. */
  growth_bytes: number | null;
  /** (end − before) / before. */
  growth_pct: number | null;
}

export interface AbuseRow {
  attack: AttackName;
  what: string;
  expected: string;
  /** How the attacker set it up (its own words). */
  setup: string;
  well_behaved: WellBehavedFigures;
  /** The phase's p99 over the baseline's. */
  p99_ratio: number | null;
  p99_within_2x: boolean | null;
  attacker: AttackOutcome | null;
  /** The attacker process failed (null: it did not). */
  attacker_error: string | null;
  /** What was refused or disconnected, in a line. */
  observed: string;
  /** Whether the expected limit held; null when this run could not tell. */
  limit_held: boolean | null;
  node_rss: RssFigures;
  controller_rss: RssFigures;
  /**
   * CPU each process used during the phase, % of one core: on one machine the attacker, the controller, the node
   * and this process share the cores, so an attack can slow the job by taking CPU alone.
   */
  cpu_pct: { node: number | null; controller: number | null; attacker: number | null; bench: number };
  /**
   * stalled-sse: the churn alone before the streams opened (sizes.sse_lead_in_seconds), the controller's RSS
   * before it, and its growth from then to the end (churn and streams together; `controller_rss` is against the
   * lead-in's end).
   */
  lead_in?: {
    seconds: number;
    controller_rss_before_churn_bytes: number | null;
    controller_rss_growth_pct_from_before_churn: number | null;
  };
  /** The job's placement before and after (grow-loop): epoch and generations, from the console. */
  placement?: { before: { epoch: number; generations: number } | null; after: { epoch: number; generations: number } | null };
}

export interface AbuseSummary {
  baseline_p99_us: number;
  /**
   * The quiet phase after the attacks over the baseline (p99): how far the job's p99 moves with no attack at all
   * on this machine, the yardstick for the attack phases' ratios.
   */
  baseline_after_p99_ratio: number | null;
  well_behaved_failures: number;
  p99_ratio_max: number | null;
  node_rss_growth_stalled_watchers_bytes: number | null;
  controller_rss_growth_stalled_sse_pct: number | null;
  limits: Partial<Record<AttackName, boolean | null>>;
  targets: {
    p99_within_2x_under_each_attack: boolean | null;
    node_rss_growth_stalled_watchers_le_32mb: boolean | null;
    controller_rss_stalled_sse_le_5pct: boolean | null;
    no_well_behaved_failures: boolean;
    every_limit_held: boolean | null;
  };
}

export interface AbuseReport {
  cluster: { dram_nodes: number; job_nodes: string[]; node_pid: number; controller_pid: number };
  sizes: {
    idle_connections: number;
    watchers: number;
    watch_puts: number;
    waits: number;
    sse_clients: number;
    sse_lead_in_seconds: number;
    in_flight: number;
  };
  baseline: WellBehavedFigures;
  /** The same job alone again after the last attack (its attacker gone): the baseline's spread. */
  baseline_after: WellBehavedFigures;
  rows: AbuseRow[];
  summary: AbuseSummary;
}

/** A job's placement as the console shows it (grow-loop compares it before and after). */
export interface JobPlacement {
  epoch: number;
  generations: number;
}

const count = (answers: Record<string, number>, code: string) => answers[code] ?? 0;
const total = (answers: Record<string, number>) => Object.values(answers).reduce((a, b) => a + b, 0);
const codes = (answers: Record<string, number>) =>
  Object.entries(answers)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ') || 'none';
const mb = (bytes: number | null) => (bytes === null ? '-' : (bytes / MB).toFixed(1));

/** Whether the attack's limit held, and what was seen, from the attacker's outcome and the readings. */
export function judge(
  attack: AttackName,
  outcome: AttackOutcome | null,
  row: Pick<AbuseRow, 'well_behaved' | 'node_rss' | 'controller_rss' | 'placement' | 'lead_in'>,
): { held: boolean | null; observed: string } {
  if (outcome === null) return { held: null, observed: 'the attacker failed: nothing to judge' };
  const a = outcome.answers;
  const d = outcome.details;
  const answered = total(a) - count(a, 'unanswered');
  switch (attack) {
    case 'anonymous-register':
    case 'huge-capacity': {
      const want = attack === 'anonymous-register' ? 'UNAUTHORIZED' : 'BAD_REQUEST';
      const held = answered > 0 && count(a, want) === answered && d.jobs_registered === 0;
      return { held, observed: `${outcome.sent} RegisterJob calls: ${codes(a)}; ${d.jobs_registered} jobs registered` };
    }
    case 'grow-loop': {
      const before = row.placement?.before ?? null;
      const after = row.placement?.after ?? null;
      const unchanged = before !== null && after !== null ? before.generations === after.generations && before.epoch === after.epoch : null;
      const held = unchanged === null ? null : answered > 0 && count(a, 'OK') === 0 && d.growths_granted === 0 && unchanged;
      const shown = (p: JobPlacement | null) =>
        p === null ? '?' : `epoch ${p.epoch}, ${p.generations} generation${p.generations === 1 ? '' : 's'}`;
      return {
        held,
        observed: `${outcome.sent} GrowJob calls: ${codes(a)}; ${d.growths_granted} growths granted; placement ${shown(before)} → ${shown(after)}`,
      };
    }
    case 'epoch-max': {
      const refusedAll = answered > 0 && count(a, 'OK') === 0;
      return {
        held: refusedAll && row.well_behaved.failures === 0,
        observed: `${outcome.sent} PUTs with epoch 2^32 − 1: ${codes(a)}; node closed the connection ${outcome.closed_by_server}×; the job's failures ${row.well_behaved.failures}`,
      };
    }
    case 'idle-connections': {
      const opened = Number(d.opened ?? 0);
      const held = opened > 0 && outcome.closed_by_server === opened;
      return {
        held,
        observed: `${opened} opened (${d.connect_errors} could not be), the node closed ${outcome.closed_by_server} (after ${d.closed_after_ms_min ?? '-'}–${d.closed_after_ms_max ?? '-'} ms), ${d.open_at_stop} still open at the end`,
      };
    }
    case 'stalled-watchers': {
      const growth = row.node_rss.growth_bytes;
      // No watch started: no attack was made, nothing to judge.
      return {
        held: growth === null || d.watches_started === 0 ? null : growth <= 32 * MB,
        observed: `${d.watches_started} watches started; node RSS ${mb(row.node_rss.before_bytes)} → max ${mb(row.node_rss.max_bytes)} MB (+${mb(growth)}); the node ${d.connection_closed_by_node ? 'closed the connection' : 'kept the connection'} (${mb(Number(d.bytes_read_2s_after_stall ?? 0))} MB read in 2 s once it read again)`,
      };
    }
    case 'long-waits': {
      // A cap answers the WAITs past it (FULL, BAD_REQUEST, TIMEOUT, …) or closes the connection. STALE would be
      // an attack made wrong (an old epoch), not a limit.
      const refused = answered - count(a, 'OK') - count(a, 'NOT_FOUND') - count(a, 'STALE');
      return {
        held: count(a, 'STALE') > 0 ? null : refused > 0 || d.connection_closed_by_node === true,
        observed: `${outcome.sent} WAITs: ${answered} answered (${codes(a)}), ${d.parked_at_stop} parked at the end${d.connection_closed_by_node ? ', connection closed by the node' : ''}; node RSS +${mb(row.node_rss.growth_bytes)} MB`,
      };
    }
    case 'stalled-sse': {
      const pct = row.controller_rss.growth_pct;
      return {
        held: pct === null ? null : pct <= 5,
        observed: `${d.streams_open} of ${outcome.sent} streams opened (${codes(a)}), ${d.streams_dropped_by_console} dropped by the console; ${d.jobs_churned} jobs churned (${d.jobs_churned_lead_in} before, alone for ${row.lead_in?.seconds ?? '-'} s); controller RSS ${mb(row.controller_rss.before_bytes)} → ${mb(row.controller_rss.end_bytes)} MB (${pct ?? '-'} %), max ${mb(row.controller_rss.max_bytes)}; from before the churn ${mb(row.lead_in?.controller_rss_before_churn_bytes ?? null)} MB: ${row.lead_in?.controller_rss_growth_pct_from_before_churn ?? '-'} %`,
      };
    }
    case 'internal-keys': {
      const held = answered > 0 && count(a, 'UNAUTHORIZED') === answered;
      return { held, observed: `${outcome.sent} LISTs with INTERNAL_KEYS: ${codes(a)}; ${d.pages_listed} pages of keys listed` };
    }
  }
}

export function summarize(baseline: WellBehavedFigures, rows: AbuseRow[], baselineAfter: WellBehavedFigures): AbuseSummary {
  const of = (attack: AttackName) => rows.find((r) => r.attack === attack);
  const watchers = of('stalled-watchers');
  const sse = of('stalled-sse');
  const ratios = rows.map((r) => r.p99_ratio).filter((r): r is number => r !== null);
  const all = (values: (boolean | null)[]) =>
    values.length === 0 || values.some((v) => v === null) ? (values.some((v) => v === false) ? false : null) : values.every((v) => v);
  const failures = rows.reduce((n, r) => n + r.well_behaved.failures, 0) + baseline.failures + baselineAfter.failures;
  const watcherGrowth = watchers?.node_rss.growth_bytes ?? null;
  const ssePct = sse?.controller_rss.growth_pct ?? null;
  return {
    baseline_p99_us: baseline.p99_us,
    baseline_after_p99_ratio: baseline.p99_us > 0 && baselineAfter.ops > 0 ? round(baselineAfter.p99_us / baseline.p99_us, 2) : null,
    well_behaved_failures: failures,
    p99_ratio_max: ratios.length > 0 ? Math.max(...ratios) : null,
    node_rss_growth_stalled_watchers_bytes: watcherGrowth,
    controller_rss_growth_stalled_sse_pct: ssePct,
    limits: Object.fromEntries(rows.map((r) => [r.attack, r.limit_held])),
    targets: {
      p99_within_2x_under_each_attack: all(rows.map((r) => r.p99_within_2x)),
      node_rss_growth_stalled_watchers_le_32mb: watcherGrowth === null ? null : watcherGrowth <= 32 * MB,
      controller_rss_stalled_sse_le_5pct: ssePct === null ? null : ssePct <= 5,
      no_well_behaved_failures: failures === 0,
      every_limit_held: all(rows.map((r) => r.limit_held)),
    },
  };
}

/** The table: a row per phase, then what each attack met, then the targets. */
export function abuseText(report: AbuseReport): string {
  const ms = (us: number) => (us / 1000).toFixed(2);
  const mark = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'ok' : 'MISSED');
  const held = (ok: boolean | null) => (ok === null ? '?' : ok ? 'held' : 'NOT held');
  const lines = [
    `${'phase'.padEnd(19)} ${'s'.padStart(5)} ${'ops/s'.padStart(6)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'×base'.padStart(6)} ${'fail'.padStart(5)}  ${'node MB before/max'.padStart(18)}  ${'ctrl MB before/end'.padStart(18)}  ${'CPU % ctrl/node/atk'.padStart(19)}  limit`,
  ];
  const quiet = (name: string, b: WellBehavedFigures, ratio: string) =>
    lines.push(
      `${name.padEnd(19)} ${b.seconds.toFixed(1).padStart(5)} ${String(b.ops_per_s).padStart(6)} ${ms(b.p50_us).padStart(7)} ${ms(b.p99_us).padStart(7)} ${ratio.padStart(6)} ${String(b.failures).padStart(5)}`,
    );
  quiet('baseline', report.baseline, '');
  for (const r of report.rows) {
    const w = r.well_behaved;
    lines.push(
      `${r.attack.padEnd(19)} ${w.seconds.toFixed(1).padStart(5)} ${String(w.ops_per_s).padStart(6)} ${ms(w.p50_us).padStart(7)} ${ms(w.p99_us).padStart(7)} ${(r.p99_ratio === null ? '-' : `${r.p99_ratio.toFixed(2)}×`).padStart(6)} ${String(w.failures).padStart(5)}  ${`${mb(r.node_rss.before_bytes)}/${mb(r.node_rss.max_bytes)}`.padStart(18)}  ${`${mb(r.controller_rss.before_bytes)}/${mb(r.controller_rss.end_bytes)}`.padStart(18)}  ${[
        r.cpu_pct.controller,
        r.cpu_pct.node,
        r.cpu_pct.attacker,
      ]
        .map((v) => (v === null ? '-' : v.toFixed(0)))
        .join('/')
        .padStart(19)}  ${held(r.limit_held)}`,
    );
  }
  const spread = report.summary.baseline_after_p99_ratio;
  quiet('baseline again', report.baseline_after, spread === null ? '-' : `${spread.toFixed(2)}×`);
  lines.push('');
  for (const r of report.rows) {
    lines.push(`${r.attack}: ${r.observed}`);
    if (r.attacker_error !== null) lines.push(`  attacker failed: ${r.attacker_error.split('\n')[0]}`);
    for (const sample of r.attacker?.samples ?? []) lines.push(`  answer: ${sample}`);
    for (const sample of r.well_behaved.failure_samples) lines.push(`  the job's failure: ${sample}`);
  }
  const s = report.summary;
  const t = s.targets;
  lines.push(
    '',
    `well-behaved p99 within 2× of its baseline (${ms(s.baseline_p99_us)} ms) under each attack: ${mark(t.p99_within_2x_under_each_attack)} (worst ${s.p99_ratio_max === null ? '-' : `${s.p99_ratio_max.toFixed(2)}×`}; no attack at the end: ${s.baseline_after_p99_ratio === null ? '-' : `${s.baseline_after_p99_ratio.toFixed(2)}×`})`,
    `node RSS growth under the stalled watchers ≤ 32 MB: ${mark(t.node_rss_growth_stalled_watchers_le_32mb)} (${s.node_rss_growth_stalled_watchers_bytes === null ? '-' : `${mb(s.node_rss_growth_stalled_watchers_bytes)} MB`})`,
    `controller RSS with stalled console streams ≤ 5 %: ${mark(t.controller_rss_stalled_sse_le_5pct)} (${s.controller_rss_growth_stalled_sse_pct ?? '-'} %)`,
    `well-behaved failures: ${s.well_behaved_failures}; every limit held: ${mark(t.every_limit_held)}`,
  );
  return lines.join('\n') + '\n';
}
