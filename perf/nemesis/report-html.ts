/**
 * The HTML report of a nemesis run: one self-contained file (opens offline from file://) with the verdict per
 * replicas setting, a timeline (ok and failed operations per second, every anomaly as a marker, and under them
 * every fault as a bar in a row per kind), then the faults and the anomaly examples. What it embeds is bounded — ops bucketed per second
 * (by the checker), faults and examples capped — so a long run with millions of ops stays a few hundred KB.
 */
import { readFileSync } from 'node:fs';
import { chartJsPath, embedJson, escapeHtml } from '../report-html.ts';
import {
  ANOMALY_KINDS,
  type Anomaly,
  type AnomalyKind,
  type CheckCounts,
  type CheckReport,
  describeOp,
  type ReplicasLabel,
} from './checker.ts';
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
/** Fault kinds' colours: Tableau 10 without its red, which is the anomalies'. */
const PALETTE = ['#4e79a7', '#f28e2b', '#76b7b2', '#59a14f', '#b07aa1', '#edc948', '#9c755f', '#ff9da7', '#bab0ac'];
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

/** Faults a run may have before they stop being drawn over the ops chart as labelled bands (the strip stays). */
export const MAX_LABELLED_FAULTS = 12;
/** Rows the fault strip has at most; kinds beyond share the last row (a driver has a handful of kinds). */
export const MAX_FAULT_ROWS = 16;
/** Characters of a fault's target and note embedded for the tooltip; the faults table has them whole. */
const MAX_TARGET_CHARS = 80;
const MAX_NOTE_CHARS = 160;

/** One fault as the strip draws it: seconds since the start, its row, and what the tooltip says. */
export interface FaultBar {
  /** Index into `FaultStrip.rows`. */
  row: number;
  start: number;
  end: number;
  target: string;
  /** The fault's kind, only when its row holds several kinds (past MAX_FAULT_ROWS). */
  kind?: string;
  note?: string;
  /** The label row over the ops chart, only when the faults are labelled there (a short run). */
  lane?: number;
}

/**
 * The faults as a Gantt-like strip under the ops chart: a thin row per kind, a bar per fault from its start to
 * its end. A long run has hundreds of faults, and full-height bands with a label each would bury the ops lines
 * and the anomaly markers; a row per kind shows at a glance when each kind happened. Only when there are at
 * most MAX_LABELLED_FAULTS (`labelled`) are they also drawn over the ops chart as labelled bands, as a short
 * run can afford.
 */
export interface FaultStrip {
  /** Sorted by kind; `count` is every fault of the kind in the run, shown or not. */
  rows: { kind: string; color: string; count: number }[];
  /** By start, at most MAX_FAULTS_SHOWN. */
  bars: FaultBar[];
  /** Faults past MAX_FAULTS_SHOWN, not drawn. */
  omitted: number;
  labelled: boolean;
}

/** What the page's script draws from: everything here is bounded by the run's length in buckets. */
export interface NemesisChartData {
  bucketSeconds: number;
  /** Per replicas setting with ops: ok and failed ops per second, one value per bucket. */
  series: { replicas: ReplicasLabel; ok: number[]; failed: number[] }[];
  faults: FaultStrip;
  /** Per anomaly kind: [seconds, count] at the middle of each bucket with any. */
  markers: { kind: AnomalyKind; color: string; points: [number, number][] }[];
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

const roundSeconds = (ms: number): number => Math.round(ms) / 1000;

/**
 * Lays out the fault strip: a row and a colour per kind (sorted, so a kind keeps its place whatever order the
 * faults came in), a bar per fault; and, for a short run, the label row of each band over the ops chart (the
 * first free at its start, so overlapping labels do not collide).
 */
export function faultStrip(faults: readonly FaultEvent[]): FaultStrip {
  const sorted = [...faults].sort((a, b) => a.startMs - b.startMs);
  const counts = new Map<string, number>();
  for (const f of sorted) counts.set(f.kind, (counts.get(f.kind) ?? 0) + 1);
  const kinds = [...counts.keys()].sort();
  const shared = kinds.length > MAX_FAULT_ROWS;
  const own = shared ? kinds.slice(0, MAX_FAULT_ROWS - 1) : kinds;
  const rows = own.map((kind, i) => ({ kind, color: PALETTE[i % PALETTE.length]!, count: counts.get(kind)! }));
  if (shared) {
    const rest = kinds.slice(own.length);
    rows.push({ kind: `${rest.length} other kinds`, color: '#888888', count: rest.reduce((n, k) => n + counts.get(k)!, 0) });
  }
  const shown = sorted.slice(0, MAX_FAULTS_SHOWN);
  const labelled = shown.length > 0 && shown.length <= MAX_LABELLED_FAULTS;
  const laneEnds: number[] = [];
  const bars = shown.map((f): FaultBar => {
    const start = roundSeconds(f.startMs);
    const end = roundSeconds(Math.max(f.endMs, f.startMs));
    const index = own.indexOf(f.kind);
    const bar: FaultBar = { row: index < 0 ? rows.length - 1 : index, start, end, target: clip(f.target, MAX_TARGET_CHARS) };
    if (index < 0) bar.kind = clip(f.kind, MAX_TARGET_CHARS);
    if (f.note) bar.note = clip(f.note, MAX_NOTE_CHARS);
    if (labelled) {
      let lane = laneEnds.findIndex((e) => e <= start);
      if (lane < 0) lane = laneEnds.push(0) - 1;
      // A label needs room even when the band is a blip: reserve a few seconds past its end.
      laneEnds[lane] = Math.max(end, start + 4);
      bar.lane = lane;
    }
    return bar;
  });
  return { rows, bars, omitted: sorted.length - shown.length, labelled };
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
  return { bucketSeconds, series, faults: faultStrip(run.faults), markers };
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

const COUNT_HEAD = [
  '',
  'ops',
  'availability',
  'lost',
  'null',
  'stale',
  'wrong',
  'counters off',
  'UNAVAILABLE',
  'other failures',
  'final unread',
  'errors by code',
];
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
td.bad{background:#fde0e0;color:#b10026;font-weight:600}td.msg{max-width:40em;overflow-wrap:anywhere}td.op{font:12px ui-monospace,monospace;max-width:30em;overflow-wrap:anywhere}
.chart{position:relative;height:520px;margin:1em 0}
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

  const faults = [...run.faults].sort((a, b) => a.startMs - b.startMs);
  const faultRows = faults
    .slice(0, MAX_FAULTS_SHOWN)
    .map(
      (f) =>
        `<tr>${cell(f.kind)}${cell(f.target)}${cell(seconds(f.startMs), true)}${cell(seconds(f.endMs), true)}${cell(seconds(f.endMs - f.startMs), true)}${cell(f.note ?? '')}</tr>`,
    );
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
<p class="meta">Top: acknowledged operations per second per replicas setting, with each anomaly as a cross (its count per ${
    data.bucketSeconds === 1 ? 'second' : `${data.bucketSeconds} s`
  } on the right axis). Middle: failed operations per second, on a log scale so a single failure shows. Bottom: ${
    data.faults.bars.length === 0 ? 'no faults were injected' : 'the faults, a row per kind and a bar from each start to its end'
  }${data.faults.omitted > 0 ? ` (the first ${int(data.faults.bars.length)}; ${int(data.faults.omitted)} later faults are not drawn)` : ''}. Hover anywhere for the operations, anomalies and faults at that time.</p>
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

// ---- browser side (plain ES2017, no template literals or backslashes so it can live in this string) ----

/*
 * One chart, three panels stacked on one x axis (Chart.js stacked scales), so one tooltip covers them all:
 * - ok ops/s per replicas setting, thin lines; anomalies as crosses on their own right axis, drawn last.
 * - failed ops/s per replicas setting on a log scale of its own. Failures are rare and lopsided: with one copy a
 *   dead node's keys fail by the hundred per second, with two or three a handful fail in the whole run. On the
 *   ok axis (thousands per second) both would be a flat line at 0; on a log scale a single failure in a bucket is
 *   a visible dot (buckets without failures are left out: log has no 0) and a storm is still readable.
 * - the faults, a thin row per kind with a bar per fault (the strip), drawn by a plugin on a category axis.
 * Short runs (data.faults.labelled) also get each fault as a shaded, labelled band over the ops panel.
 */
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
  // The tooltip goes by the pointer, not by the points it lists: hovering a fault bar keeps it next to the bar.
  Chart.Tooltip.positioners.pointer = function (items, position) { return position; };
  var bs = data.bucketSeconds;
  var strip = data.faults;
  var LINE = { '1': '#3b6ea5', '2': '#3f8f3a', '3': '#9b5b94' };
  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return 'rgba(' + (n >> 16) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + a + ')';
  }
  function fmt(v) { return v.toLocaleString('en-US', { maximumFractionDigits: 2 }); }
  function secs(v) { return v.toFixed(v < 100 ? 2 : 1); }

  // Panel heights in pixels; the strip grows with its rows so a row stays thin but readable.
  var OPS_PX = 300, FAILED_PX = 110, ROW_PX = 17, GAP_PX = 14;
  var stripPx = strip.rows.length > 0 ? strip.rows.length * ROW_PX + 6 : 0;
  canvas.parentNode.style.height = (OPS_PX + FAILED_PX + GAP_PX + (stripPx > 0 ? GAP_PX + stripPx : 0) + 110) + 'px';

  var datasets = [];
  var maxFailed = 0;
  data.series.forEach(function (s, k) {
    var ok = s.ok.map(function (v, i) { return { x: (i + 0.5) * bs, y: v }; });
    var failed = s.failed.map(function (v, i) {
      maxFailed = Math.max(maxFailed, v);
      return { x: (i + 0.5) * bs, y: v > 0 ? v : null };
    });
    datasets.push({ label: 'replicas ' + s.replicas, role: 'ok', series: k, replicas: s.replicas, data: ok, yAxisID: 'y',
      borderColor: alpha(LINE[s.replicas], 0.8), backgroundColor: LINE[s.replicas], borderWidth: 1, pointRadius: 0, pointHoverRadius: 3 });
    datasets.push({ label: 'replicas ' + s.replicas + ' failed', role: 'failed', replicas: s.replicas, data: failed, yAxisID: 'failed',
      borderColor: alpha(LINE[s.replicas], 0.55), backgroundColor: LINE[s.replicas], borderWidth: 1, spanGaps: false,
      pointRadius: 1.6, pointHoverRadius: 3, pointBorderWidth: 0 });
  });
  var anomaliesAt = {}, anomalyBuckets = 0;
  data.markers.forEach(function (m) {
    m.points.forEach(function (p) {
      var b = Math.floor(p[0] / bs);
      if (!anomaliesAt[b]) { anomaliesAt[b] = []; anomalyBuckets++; }
      anomaliesAt[b].push(m.kind + ' ' + fmt(p[1]));
    });
    datasets.push({
      type: 'scatter', label: m.kind + ' anomalies', role: 'anomaly', yAxisID: 'anomalies', order: -1, clip: 12,
      data: m.points.map(function (p) { return { x: p[0], y: p[1] }; }),
      borderColor: m.color, backgroundColor: m.color, pointStyle: 'crossRot', pointRadius: 8, pointHoverRadius: 10, borderWidth: 3
    });
  });
  var failedMin = Math.pow(10, Math.floor(Math.log10(1 / bs)));
  var maxMarker = data.markers.reduce(function (n, m) { return m.points.reduce(function (k, p) { return Math.max(k, p[1]); }, n); }, 1);
  var maxX = data.series[0].ok.length * bs;
  strip.bars.forEach(function (b) { maxX = Math.max(maxX, b.end); });

  // Where the pointer is, for the tooltip to tell a hover on a strip row from one over the ops.
  var pointer = null;
  function barPixels(x, b) {
    var x0 = x.getPixelForValue(b.start);
    return [x0, Math.max(x.getPixelForValue(b.end), x0 + 2)];
  }
  function faultsAtPointer(chart) {
    if (!pointer || strip.bars.length === 0) return [];
    var x = chart.scales.x, rows = chart.scales.faults, row = -1;
    if (rows && pointer.y >= rows.top && pointer.y <= rows.bottom) row = Math.round(rows.getValueForPixel(pointer.y));
    return strip.bars.filter(function (b) {
      if (row >= 0 && b.row !== row) return false;
      var px = barPixels(x, b);
      return pointer.x >= px[0] - 3 && pointer.x <= px[1] + 3;
    });
  }
  function faultName(b) {
    var kind = b.kind || strip.rows[b.row].kind;
    return b.target === kind ? kind : kind + ' ' + b.target;
  }
  function faultLines(bars) {
    var lines = [];
    bars.slice(0, 6).forEach(function (b) {
      lines.push(faultName(b) + ': ' + secs(b.start) + '–' + secs(b.end) + ' s (' + secs(b.end - b.start) + ' s)');
      if (b.note) lines.push('    ' + b.note);
    });
    if (bars.length > 6) lines.push('and ' + (bars.length - 6) + ' more faults');
    return lines;
  }

  var faultPlugin = {
    id: 'faultStrip',
    beforeEvent: function (chart, args) {
      var e = args.event;
      pointer = e.type === 'mouseout' ? null : { x: e.x, y: e.y };
    },
    beforeDatasetsDraw: function (chart) {
      var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx;
      var rows = chart.scales.faults, ops = chart.scales.y, failed = chart.scales.failed;
      ctx.save();
      ctx.beginPath();
      ctx.rect(area.left, area.top, area.right - area.left, area.bottom - area.top);
      ctx.clip();
      if (rows) {
        ctx.fillStyle = '#f5f5f5';
        ctx.fillRect(area.left, rows.top, area.right - area.left, rows.bottom - rows.top);
      }
      // Where the anomalies are, carried down behind the failures and the faults so they line up at a glance;
      // unless they are nearly everywhere, when that would only tint the panels.
      if (anomalyBuckets * 4 <= data.series[0].ok.length) data.markers.forEach(function (m) {
        ctx.fillStyle = alpha(m.color, 0.25);
        m.points.forEach(function (p) {
          var x0 = x.getPixelForValue(p[0] - bs / 2), x1 = x.getPixelForValue(p[0] + bs / 2);
          ctx.fillRect(x0, failed.top, Math.max(1, x1 - x0), (rows ? rows.bottom : failed.bottom) - failed.top);
        });
      });
      if (rows) {
        var h = Math.max(3, Math.min(12, ((rows.bottom - rows.top) / strip.rows.length) * 0.7));
        strip.bars.forEach(function (b) {
          var px = barPixels(x, b), y = rows.getPixelForValue(b.row);
          ctx.fillStyle = alpha(strip.rows[b.row].color, 0.9);
          ctx.fillRect(px[0], y - h / 2, px[1] - px[0], h);
        });
      }
      if (strip.labelled) {
        ctx.font = '11px system-ui, sans-serif';
        strip.bars.forEach(function (b) {
          var px = barPixels(x, b), color = strip.rows[b.row].color;
          ctx.fillStyle = alpha(color, 0.16);
          ctx.fillRect(px[0], ops.top, px[1] - px[0], ops.bottom - ops.top);
          ctx.fillStyle = alpha(color, 0.95);
          ctx.fillRect(px[0], ops.top, 2, ops.bottom - ops.top);
          ctx.fillText(faultName(b), px[0] + 4, ops.top + 12 + 13 * b.lane);
        });
      }
      ctx.restore();
    }
  };

  var scales = {
    x: { type: 'linear', min: 0, max: Math.ceil(maxX), ticks: { includeBounds: false }, title: { display: true, text: 'seconds since the run started' } },
    // Left: the panels top to bottom (a higher weight goes first); the right axis of the anomalies lines up
    // with the ops panel through a spacer as tall as the other two.
    y: { stack: 'panels', stackWeight: OPS_PX, weight: 5, beginAtZero: true, title: { display: true, text: 'ok ops/s' } },
    failed: {
      type: 'logarithmic', axis: 'y', position: 'left', stack: 'panels', stackWeight: FAILED_PX, weight: 3,
      // From a single failure in a bucket to a bit above the most, at least a decade.
      min: failedMin, max: Math.max(maxFailed * 1.3, failedMin * 10),
      title: { display: true, text: 'failed ops/s' },
      ticks: { autoSkip: false, callback: function (v) { var l = Math.log10(v); return Math.abs(l - Math.round(l)) < 1e-9 ? fmt(v) : ''; } },
      grid: { color: function (c) { var l = Math.log10(c.tick.value); return Math.abs(l - Math.round(l)) < 1e-9 ? 'rgba(0,0,0,0.1)' : 'transparent'; } }
    },
    anomalies: { axis: 'y', position: 'right', stack: 'panels', stackWeight: OPS_PX, weight: 1, beginAtZero: true, suggestedMax: maxMarker * 1.15,
      display: data.markers.length > 0, grid: { drawOnChartArea: false }, title: { display: true, text: 'anomalies per bucket' } },
    gap1: { axis: 'y', position: 'left', stack: 'panels', stackWeight: GAP_PX, weight: 4, display: false },
    spacer: { axis: 'y', position: 'right', stack: 'panels', stackWeight: FAILED_PX + GAP_PX + (stripPx > 0 ? GAP_PX + stripPx : 0), weight: 2, display: false }
  };
  if (stripPx > 0) {
    scales.gap2 = { axis: 'y', position: 'left', stack: 'panels', stackWeight: GAP_PX, weight: 2, display: false };
    scales.faults = {
      type: 'category', axis: 'y', position: 'left', labels: strip.rows.map(function (r) { return r.kind; }), stack: 'panels', stackWeight: stripPx, weight: 1, offset: true,
      grid: { display: false },
      title: { display: true, text: 'faults' },
      ticks: { autoSkip: false, font: { size: 11 }, color: function (c) { return strip.rows[c.index] ? strip.rows[c.index].color : '#666'; },
        callback: function (v, i) { return strip.rows[i].kind + ' (' + strip.rows[i].count + ')'; } }
    };
  }

  try {
    new Chart(canvas, {
      type: 'line',
      data: { datasets: datasets },
      plugins: [faultPlugin],
      options: {
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        plugins: {
          legend: {
            labels: { usePointStyle: true, sort: function (a, b) { return a.datasetIndex - b.datasetIndex; }, filter: function (item, d) { return d.datasets[item.datasetIndex].role !== 'failed'; } },
            // A replicas setting's entry hides its ok and failed lines together.
            onClick: function (e, item, legend) {
              var chart = legend.chart, own = chart.data.datasets[item.datasetIndex];
              var hide = chart.isDatasetVisible(item.datasetIndex);
              chart.data.datasets.forEach(function (d, i) {
                if (i === item.datasetIndex || (own.replicas && d.replicas === own.replicas)) chart.setDatasetVisibility(i, !hide);
              });
              chart.update();
            }
          },
          tooltip: {
            position: 'pointer',
            filter: function (item) { return item.dataset.role === 'ok'; },
            callbacks: {
              title: function (items) {
                if (items.length === 0) return '';
                var b = Math.floor(items[0].parsed.x / bs);
                return secs(b * bs) + '–' + secs((b + 1) * bs) + ' s';
              },
              label: function (item) {
                var s = data.series[item.dataset.series];
                var b = Math.floor(item.parsed.x / bs);
                return 'replicas ' + s.replicas + ': ' + fmt(s.ok[b]) + ' ok/s, ' + fmt(s.failed[b]) + ' failed/s';
              },
              afterBody: function (items) {
                if (items.length === 0) return [];
                var found = anomaliesAt[Math.floor(items[0].parsed.x / bs)];
                return found ? ['anomalies: ' + found.join(', ')] : [];
              },
              footer: function () { return faultLines(faultsAtPointer(this.chart)); }
            }
          }
        },
        scales: scales
      }
    });
  } catch (e) { console.error(e); }
})();
`;
