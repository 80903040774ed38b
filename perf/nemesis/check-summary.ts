/** The checker's verdict for the terminal (`satchel bench nemesis` prints it; report-html.ts draws the rest). */
import { ANOMALY_KINDS, type CheckReport, REPLICAS_LABELS } from './check-types.ts';

function percent(share: number | null): string {
  return share === null ? '—' : `${(share * 100).toFixed(share < 0.9995 && share > 0.99 ? 2 : 1)}%`;
}

function topErrors(errors: Record<string, number>, n: number): string {
  const sorted = Object.entries(errors).sort(([, a], [, b]) => b - a);
  const shown = sorted.slice(0, n).map(([code, count]) => `${code} ${count}`);
  if (sorted.length > n) shown.push('…');
  return shown.join(', ') || '—';
}

/** A short table for the terminal: one row per replicas setting, then the faults and the verdict. */
export function formatCheckSummary(report: CheckReport): string {
  const head = ['replicas', 'ops', 'avail', 'lost', 'null', 'stale', 'wrong', 'ctr off', 'unavail', 'other fail', 'final unread', 'errors'];
  const rows = REPLICAS_LABELS.filter((r) => report.summary.byReplicas[r].jobs > 0).map((r) => {
    const s = report.summary.byReplicas[r];
    return [
      r,
      String(s.ops),
      percent(s.availability),
      String(s.lost),
      String(s.null),
      String(s.stale),
      String(s.wrong),
      String(s.countersOff),
      String(s.unavailable),
      String(s.otherFailures),
      `${s.finalUnread}/${s.finalReads}`,
      topErrors(s.errors, 3),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(head), ...rows.map(line)];
  const faults = Object.entries(report.summary.faultsByKind).map(([kind, n]) => `${kind} ${n}`);
  out.push(`faults: ${report.summary.faults}${faults.length > 0 ? ` (${faults.join(', ')})` : ''}`);
  if (report.summary.malformed > 0) out.push(`malformed ops (not judged): ${report.summary.malformed}`);
  if (report.summary.anomalies === 0 && report.summary.malformed === 0) out.push(`verdict: no anomalies in ${report.summary.ops} ops`);
  else {
    out.push(`verdict: ${report.summary.anomalies} anomalies`);
    for (const kind of ANOMALY_KINDS) {
      for (const a of report.anomalies[kind].slice(0, 3))
        out.push(`  ${kind} ${a.job}/${a.key} at ${(a.atMs / 1000).toFixed(2)} s: ${a.message}`);
    }
  }
  return out.join('\n');
}
