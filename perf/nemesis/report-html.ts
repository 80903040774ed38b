/**
 * The HTML report of a nemesis run: one self-contained file (opens offline from file://) with the verdict per
 * replicas setting, a timeline of operations per second with every fault as a shaded band and every anomaly
 * as a marker, then the faults and the anomaly examples. What it embeds is bounded — ops bucketed per second
 * (by the checker), faults and examples capped — so a long run with millions of ops stays a few hundred KB.
 */
import { readFileSync } from 'node:fs';
import { chartJsPath, embedJson, escapeHtml } from '../report-html.ts';
import { ANOMALY_KINDS, describeOp, type Anomaly, type AnomalyKind, type CheckCounts, type CheckReport, type ReplicasLabel } from './checker.ts';
import type { FaultEvent } from './history.ts';

/** What the report needs of the run beyond the checker's report (a History has all of it but `command`). */
export interface NemesisRunInfo {
  startedAt: string;
  durationMs: number;
  faults: FaultEvent[];
  /** The command line, shown under the title. */
  command?: string;
}

/** Fault rows (and bands) embedded at most; a run injects a fault every few seconds, so this is hours. */
export const MAX_FAULTS_SHOWN = 2000;

const REPLICAS: readonly ReplicasLabel[] = ['1', '2', '3'];
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const ANOMALY_COLORS: Record<AnomalyKind, string> = {
  lost: '#b10026',
  null: '#e31a1c',
  stale: '#fd8d3c',
  wrong: '#6a3d9a',
  counters: '#1f78b4',
  malformed: '#777777',
};

let chartSource: string | undefined;

/** Chart.js's UMD build, read once; an inline script must never contain `</script`. */
function chartJs(): string {
  chartSource ??= readFileSync(chartJsPath(), 'utf8').replace(/<\/script/gi, '<\\/script');
  return chartSource;
}

/** A fault band on the timeline: seconds, and the label row it takes so overlapping labels do not collide. */
export interface FaultBand {
  label: string;
  kind: string;
  start: number;
  end: number;
  lane: number;
  color: string;
}

/** What the page's script draws from: everything here is bounded by the run's length in buckets. */
export interface NemesisChartData {
  bucketSeconds: number;
  /** Per replicas setting with ops: ok and failed ops per second, one value per bucket. */
  series: { replicas: ReplicasLabel; ok: number[]; failed: number[] }[];
  bands: FaultBand[];
  /** Per anomaly kind: [seconds, count] at the middle of each bucket with any. */
  markers: { kind: AnomalyKind; color: string; points: [number, number][] }[];
}

/** Lays out fault bands: the first label row free at the band's start, and a colour per fault kind. */
export function faultBands(faults: readonly FaultEvent[]): FaultBand[] {
  const kinds: string[] = [];
  const laneEnds: number[] = [];
  return [...faults]
    .sort((a, b) => a.startMs - b.startMs)
    .slice(0, MAX_FAULTS_SHOWN)
    .map((f) => {
      if (!kinds.includes(f.kind)) kinds.push(f.kind);
      const start = f.startMs / 1000;
      const end = Math.max(f.endMs, f.startMs) / 1000;
      let lane = laneEnds.findIndex((e) => e <= start);
      if (lane < 0) lane = laneEnds.push(0) - 1;
      // A label needs room even when the band is a blip: reserve a few seconds past its end.
      laneEnds[lane] = Math.max(end, start + 4);
      return { label: `${f.kind} ${f.target}`, kind: f.kind, start, end, lane, color: PALETTE[kinds.indexOf(f.kind) % PALETTE.length]! };
    });
}

export function nemesisChartData(run: NemesisRunInfo, report: CheckReport): NemesisChartData {
  const t = report.timeline;
  const bucketSeconds = t.bucketMs / 1000;
  const perSecond = (counts: number[]): number[] => counts.map((n) => Math.round((n / bucketSeconds) * 100) / 100);
  const series = REPLICAS.filter((r) => report.summary.byReplicas[r].ops > 0).map((r) => ({
    replicas: r,
    ok: perSecond(t.byReplicas[r].ok),
    failed: perSecond(t.byReplicas[r].failed),
  }));
  const markers = ANOMALY_KINDS.filter((k) => k !== 'malformed')
    .map((kind) => ({
      kind,
      color: ANOMALY_COLORS[kind],
      points: t.anomalies[kind].flatMap((n, i): [number, number][] => (n > 0 ? [[(i + 0.5) * bucketSeconds, n]] : [])),
    }))
    .filter((m) => m.points.length > 0);
  return { bucketSeconds, series, bands: faultBands(run.faults), markers };
}

function cell(text: string, numeric = false, cls = ''): string {
  const classes = [numeric ? 'n' : '', cls].filter(Boolean).join(' ');
  return `<td${classes ? ` class="${classes}"` : ''}>${escapeHtml(text)}</td>`;
}

/** A header row; `numeric` columns are right-aligned like their cells. */
function headRow(cells: string[], numeric: (i: number) => boolean = () => false): string {
  return `<tr>${cells.map((c, i) => `<th${numeric(i) ? ' class="n"' : ''}>${escapeHtml(c)}</th>`).join('')}</tr>`;
}

function percent(share: number | null): string {
  return share === null ? '—' : `${(share * 100).toFixed(2)} %`;
}

function errorsText(errors: Record<string, number>): string {
  const entries = Object.entries(errors).sort(([, a], [, b]) => b - a);
  return entries.length === 0 ? '—' : entries.map(([code, n]) => `${code} ${n.toLocaleString('en-US')}`).join(', ');
}

function int(n: number): string {
  return n.toLocaleString('en-US');
}

/** A count that must be 0: highlighted when it is not. */
function bad(n: number): string {
  return cell(int(n), true, n > 0 ? 'bad' : '');
}

function countsRow(label: string, s: CheckCounts): string {
  return `<tr>${cell(label)}${cell(int(s.ops), true)}${cell(percent(s.availability), true)}${bad(s.lost)}${bad(s.null)}${bad(s.stale)}${bad(s.wrong)}${bad(
    s.countersOff,
  )}${cell(int(s.unavailable), true)}${cell(int(s.otherFailures), true)}${cell(`${int(s.finalUnread)} / ${int(s.finalReads)}`, true)}${cell(errorsText(s.errors))}</tr>`;
}

const COUNT_HEAD = ['', 'ops', 'availability', 'lost', 'null', 'stale', 'wrong', 'counters off', 'UNAVAILABLE', 'other failures', 'final unread', 'errors by code'];
const countColumn = (i: number): boolean => i > 0 && i < COUNT_HEAD.length - 1;

function opText(op: Anomaly['op'] | undefined): string {
  return op ? describeOp(op) : '';
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(2);
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1300px;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:2em}
.meta{color:#555;margin:.1em 0}.meta code{background:#f3f3f3;padding:1px 4px;border-radius:3px}
.verdict{font-weight:600;font-size:1.1em}.pass{color:#2a7d2a}.fail{color:#b10026}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:3px 9px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f6f6f6;white-space:nowrap}th.n{text-align:right}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.bad{background:#fde0e0;color:#b10026;font-weight:600}td.msg{max-width:40em}td.op{font:12px ui-monospace,monospace;max-width:30em}
.chart{position:relative;height:420px;margin:1em 0}.legend span{display:inline-block;margin-right:1.2em}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em;border-radius:2px}
.empty{color:#777;font-style:italic}
`;

/**
 * The report page. `run` is the history's header (a History will do); `report` is checkHistory's. Returns the
 * whole document as a string.
 */
export function renderNemesisHtml(run: NemesisRunInfo, report: CheckReport): string {
  const title = 'Satchel nemesis run';
  const s = report.summary;
  const passed = s.anomalies === 0 && s.malformed === 0;
  const verdict = passed
    ? `No anomalies in ${int(s.ops)} operations under ${int(s.faults)} faults.`
    : `${int(s.anomalies)} anomalies${s.malformed > 0 ? ` and ${int(s.malformed)} malformed ops` : ''} in ${int(s.ops)} operations under ${int(s.faults)} faults.`;

  const summaryRows = REPLICAS.filter((r) => s.byReplicas[r].jobs > 0).map((r) => countsRow(`replicas ${r}`, s.byReplicas[r]));
  const jobNames = Object.keys(report.jobs);
  const jobRows = jobNames.slice(0, 200).map((name) => countsRow(`${name} (replicas ${report.jobs[name]!.replicas})`, report.jobs[name]!));

  const data = nemesisChartData(run, report);
  const kinds = [...new Map(data.bands.map((b) => [b.kind, b.color])).entries()];
  const legend = kinds.map(([kind, color]) => `<span><i class="swatch" style="background:${color}"></i>${escapeHtml(kind)}</span>`).join('');

  const faults = [...run.faults].sort((a, b) => a.startMs - b.startMs);
  const faultRows = faults
    .slice(0, MAX_FAULTS_SHOWN)
    .map((f) => `<tr>${cell(f.kind)}${cell(f.target)}${cell(seconds(f.startMs), true)}${cell(seconds(f.endMs), true)}${cell(seconds(f.endMs - f.startMs), true)}${cell(f.note ?? '')}</tr>`);
  const faultsOmitted = faults.length - faultRows.length;

  const examples = ANOMALY_KINDS.flatMap((kind) => report.anomalies[kind]);
  const exampleRows = examples.map(
    (a) =>
      `<tr>${cell(a.kind)}${cell(a.job)}${cell(String(a.replicas), true)}${cell(a.key)}${cell(seconds(a.atMs), true)}${cell(a.message, false, 'msg')}${cell(
        opText(a.op),
        false,
        'op',
      )}${cell(opText(a.write), false, 'op')}${cell(opText(a.expected ?? a.other), false, 'op')}</tr>`,
  );

  const body = `<h1>${escapeHtml(title)}</h1>
<p class="meta">Started ${escapeHtml(run.startedAt)}, ${escapeHtml(seconds(run.durationMs))} s</p>
${run.command ? `<p class="meta">Command: <code>${escapeHtml(run.command)}</code></p>` : ''}
<p class="verdict ${passed ? 'pass' : 'fail'}">${escapeHtml(verdict)}</p>
<h2>By replicas setting</h2>
<table>
${headRow(['replicas', ...COUNT_HEAD.slice(1)], countColumn)}
${summaryRows.join('\n')}
</table>
<p class="meta">Availability: share of operations acknowledged (final reads apart). With one copy, operations on a dead node's keys must fail with UNAVAILABLE, never read null.</p>
<h2>Timeline</h2>
<div class="chart"><canvas id="timeline"></canvas></div>
<p class="meta legend">Faults: ${legend || '<span class="empty">none</span>'}</p>
<h2>Jobs</h2>
<table>
${headRow(['job', ...COUNT_HEAD.slice(1)], countColumn)}
${jobRows.join('\n')}
</table>
${jobNames.length > jobRows.length ? `<p class="meta">${int(jobNames.length - jobRows.length)} more jobs not shown.</p>` : ''}
<h2>Faults</h2>
${
  faultRows.length === 0
    ? '<p class="empty">No faults injected.</p>'
    : `<table>
${headRow(['kind', 'target', 'start s', 'end s', 'seconds', 'note'], (i) => i >= 2 && i <= 4)}
${faultRows.join('\n')}
</table>`
}
${faultsOmitted > 0 ? `<p class="meta">${int(faultsOmitted)} more faults not shown.</p>` : ''}
<h2>Anomalies</h2>
${
  exampleRows.length === 0
    ? '<p class="empty">None.</p>'
    : `<p class="meta">The earliest ${report.examplesCap} of each kind.</p>
<table>
${headRow(['kind', 'job', 'replicas', 'key', 'at s', 'what', 'op', 'value read from', 'should have seen'], (i) => i === 2 || i === 4)}
${exampleRows.join('\n')}
</table>`
}`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
${body}
<script type="application/json" id="data">${embedJson(data)}</script>
<script>${chartJs()}</script>
<script>${TIMELINE_JS}</script>
</body>
</html>
`;
}

// ---- browser side (plain ES2017, no template literals so it can live in this string) ----

const TIMELINE_JS = `
(function () {
  var data = JSON.parse(document.getElementById('data').textContent);
  var canvas = document.getElementById('timeline');
  if (typeof Chart === 'undefined' || data.series.length === 0) {
    var p = document.createElement('p');
    p.className = 'empty';
    p.textContent = 'No operations to draw.';
    canvas.parentNode.replaceWith(p);
    return;
  }
  Chart.defaults.font.family = 'system-ui, sans-serif';
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  var LINE = { '1': '#4e79a7', '2': '#59a14f', '3': '#b07aa1' };
  var datasets = [];
  data.series.forEach(function (s) {
    function points(values) { return values.map(function (v, i) { return { x: i * data.bucketSeconds, y: v }; }); }
    datasets.push({ label: 'replicas ' + s.replicas + ' ok/s', data: points(s.ok), borderColor: LINE[s.replicas], backgroundColor: LINE[s.replicas], borderWidth: 1.5, pointRadius: 0, yAxisID: 'y' });
    datasets.push({ label: 'replicas ' + s.replicas + ' failed/s', data: points(s.failed), borderColor: LINE[s.replicas], backgroundColor: LINE[s.replicas], borderWidth: 1.5, borderDash: [4, 3], pointRadius: 0, yAxisID: 'y' });
  });
  data.markers.forEach(function (m) {
    datasets.push({
      type: 'scatter', label: m.kind + ' (anomalies)', yAxisID: 'anomalies',
      data: m.points.map(function (p) { return { x: p[0], y: p[1] }; }),
      borderColor: m.color, backgroundColor: m.color, pointStyle: 'crossRot', pointRadius: 9, pointHoverRadius: 11, borderWidth: 3.5
    });
  });
  var bands = {
    id: 'faultBands',
    beforeDatasetsDraw: function (chart) {
      var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx;
      ctx.save();
      ctx.font = '11px system-ui, sans-serif';
      data.bands.forEach(function (b) {
        var x0 = Math.max(x.getPixelForValue(b.start), area.left);
        var x1 = Math.min(Math.max(x.getPixelForValue(b.end), x0 + 2), area.right);
        if (x1 <= area.left || x0 >= area.right) return;
        ctx.globalAlpha = 0.16;
        ctx.fillStyle = b.color;
        ctx.fillRect(x0, area.top, x1 - x0, area.bottom - area.top);
        ctx.globalAlpha = 0.95;
        ctx.fillRect(x0, area.top, 2, area.bottom - area.top);
        ctx.fillText(b.label, x0 + 4, area.top + 12 + 13 * b.lane);
      });
      ctx.restore();
    }
  };
  var maxMarker = data.markers.reduce(function (n, m) { return m.points.reduce(function (k, p) { return Math.max(k, p[1]); }, n); }, 1);
  try {
    new Chart(canvas, {
      type: 'line',
      data: { datasets: datasets },
      plugins: [bands],
      options: {
        interaction: { mode: 'nearest', intersect: false },
        scales: {
          x: { type: 'linear', beginAtZero: true, title: { display: true, text: 'seconds since the run started' } },
          y: { beginAtZero: true, title: { display: true, text: 'operations per second' } },
          anomalies: { position: 'right', beginAtZero: true, suggestedMax: maxMarker * 1.2, display: data.markers.length > 0, grid: { drawOnChartArea: false }, title: { display: true, text: 'anomalies per bucket' } }
        }
      }
    });
  } catch (e) { console.error(e); }
})();
`;
