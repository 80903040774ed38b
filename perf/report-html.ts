/**
 * Self-contained HTML reports for `satchel bench shuffle` and `satchel bench jobs`: one file that opens offline
 * (file://), with Chart.js and the report JSON inlined and a small script that draws the charts from that JSON.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { JobsReport, MachineInfo, ShuffleReport, ShuffleRow } from './shuffle-report.ts';

let chartSource: Promise<string> | undefined;

/**
 * Path of Chart.js's UMD build. chart.js's `exports` map does not expose `dist/chart.umd.min.js` (resolving it
 * throws ERR_PACKAGE_PATH_NOT_EXPORTED), so resolve the package's CommonJS entry (`dist/chart.cjs`) and take
 * its sibling.
 */
export function chartJsPath(): string {
  return join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
}

/** Chart.js's UMD build, read once per process. */
function loadChartJs(): Promise<string> {
  chartSource ??= readFile(chartJsPath(), 'utf8').then(
    // Nothing in 4.6 matches, but an inline script must never contain `</script`.
    (source) => source.replace(/<\/script/gi, '<\\/script'),
    (error: unknown) => {
      chartSource = undefined;
      throw error;
    },
  );
  return chartSource;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON for a `<script type="application/json">` block: `<` escaped so no `</script>` or `<!--` can appear. */
export function embedJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

function num(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '—';
}

function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
}

function mib(n: number): string {
  return num(n / 1048576, 1);
}

function machineLine(m: MachineInfo): string {
  return `${m.cpus} × ${m.cpu}, ${formatBytes(m.memory_bytes)} memory, Node ${m.node}, ${m.platform}`;
}

/** A table row; cells are escaped here, `n` marks numeric (right-aligned) cells. */
function row(cells: (string | { n: string })[], tag: 'td' | 'th' = 'td'): string {
  return `<tr>${cells
    .map((c) => (typeof c === 'string' ? `<${tag}>${escapeHtml(c)}</${tag}>` : `<${tag} class="n">${escapeHtml(c.n)}</${tag}>`))
    .join('')}</tr>`;
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:2em}
.meta{color:#555;margin:.1em 0}.meta code{background:#f3f3f3;padding:1px 4px;border-radius:3px}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:3px 9px;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap}
th{background:#f6f6f6}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.chart{position:relative;height:340px;margin:1em 0}.empty{color:#777;font-style:italic}
details{margin-top:2em;color:#555}pre{background:#f6f6f6;padding:.6em;overflow:auto}
`;

export function header(title: string, report: { date: string; command: string; machine: MachineInfo }): string {
  return `<h1>${escapeHtml(title)}</h1>
<p class="meta">${escapeHtml(report.date)}</p>
<p class="meta">Command: <code>${escapeHtml(report.command)}</code></p>
<p class="meta">Machine: ${escapeHtml(machineLine(report.machine))}</p>`;
}

export async function page(title: string, body: string, report: unknown, draw: string): Promise<string> {
  const chartJs = await loadChartJs();
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
<details><summary>Options</summary><pre>${escapeHtml(JSON.stringify((report as { options?: unknown }).options ?? {}, null, 2))}</pre></details>
<script type="application/json" id="report">${embedJson(report)}</script>
<script>${chartJs}</script>
<script>${COMMON_JS}${draw}</script>
</body>
</html>
`;
}

/** Completion time relative to the `redis` row with the same size and shape, if there is one. */
function redisRatio(r: ShuffleRow, rows: ShuffleRow[]): string {
  const base = rows.find((b) => b.system === 'redis' && b.bytes === r.bytes && b.mappers === r.mappers && b.reducers === r.reducers);
  if (!base || !(base.seconds > 0)) return '—';
  return `${num(r.seconds / base.seconds, 2)}×`;
}

export async function renderShuffleHtml(report: ShuffleReport): Promise<string> {
  const title = 'Satchel shuffle benchmark';
  const head = row(
    [
      'system',
      { n: 'bytes' },
      { n: 'M×R' },
      { n: 'concurrency' },
      { n: 'seconds' },
      { n: 'vs redis' },
      { n: 'map s' },
      { n: 'shuffle read s' },
      { n: 'reduce s' },
      { n: 'ops' },
      { n: 'p50 µs' },
      { n: 'p99 µs' },
      'verified',
    ],
    'th',
  );
  const rows = report.results
    .map((r) =>
      row([
        r.system,
        { n: formatBytes(r.bytes) },
        { n: `${r.mappers}×${r.reducers}` },
        { n: String(r.concurrency) },
        { n: num(r.seconds, 2) },
        { n: redisRatio(r, report.results) },
        { n: num(r.phases.map_s, 2) },
        { n: num(r.phases.shuffle_read_s, 2) },
        { n: num(r.phases.reduce_s, 2) },
        { n: int(r.ops) },
        { n: int(r.p50_us) },
        { n: int(r.p99_us) },
        r.verified ? 'yes' : 'NO',
      ]),
    )
    .join('\n');
  const body = `${header(title, report)}
<h2>Results</h2>
<table>
${head}
${rows}
</table>
<p class="meta">vs redis: seconds relative to the <code>redis</code> row with the same bytes and M×R.</p>
<h2>Throughput over time</h2>
<div class="chart"><canvas id="throughput"></canvas></div>
<h2>Phases</h2>
<div class="chart"><canvas id="phases"></canvas></div>
<h2>Function time by part</h2>
<div class="chart"><canvas id="function-seconds"></canvas></div>`;
  return page(title, body, report, SHUFFLE_JS);
}

export async function renderJobsHtml(report: JobsReport): Promise<string> {
  const title = 'Satchel jobs benchmark';
  const jobsHead = row(['system', 'name', { n: 'start s' }, { n: 'end s' }, { n: 'seconds' }], 'th');
  const jobRows = report.jobs
    .map((j) => row([j.system, j.name, { n: num(j.start_s, 1) }, { n: num(j.end_s, 1) }, { n: num(j.seconds, 2) }]))
    .join('\n');
  const summaryHead = row(
    ['system', { n: 'reserved / used' }, { n: 'mean reserved MiB' }, { n: 'mean used MiB' }, { n: 'makespan s' }],
    'th',
  );
  const summaryRows = report.summary
    .map((s) =>
      row([
        s.system,
        { n: `${num(s.reserved_over_used, 2)}×` },
        { n: mib(s.mean_reserved_bytes) },
        { n: mib(s.mean_used_bytes) },
        { n: num(s.makespan_s, 1) },
      ]),
    )
    .join('\n');
  const body = `${header(title, report)}
<h2>Summary</h2>
<table>
${summaryHead}
${summaryRows}
</table>
<h2>Reserved vs used over time</h2>
<div id="capacity"></div>
<h2>Jobs</h2>
<div class="chart" id="gantt-box"><canvas id="gantt"></canvas></div>
<table>
${jobsHead}
${jobRows}
</table>`;
  return page(title, body, report, JOBS_JS);
}

// ---- browser side (plain ES2017, no template literals so it can live in these strings) ----

const COMMON_JS = `
var report = JSON.parse(document.getElementById('report').textContent);
var PALETTE = ['#4e79a7','#f28e2b','#e15759','#76b7b2','#59a14f','#edc948','#b07aa1','#ff9da7','#9c755f','#bab0ac'];
function color(i) { return PALETTE[i % PALETTE.length]; }
function fmtBytes(n) {
  var u = ['B','KiB','MiB','GiB','TiB'], i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + u[i];
}
function empty(canvasId, text) {
  var c = document.getElementById(canvasId);
  var p = document.createElement('p');
  p.className = 'empty';
  p.textContent = text;
  c.parentNode.replaceWith(p);
}
function draw(canvas, config) {
  try { new Chart(canvas, config); } catch (e) { console.error(e); }
}
if (typeof Chart !== 'undefined') {
  Chart.defaults.font.family = 'system-ui, sans-serif';
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
}
`;

const SHUFFLE_JS = `
(function () {
  var rows = report.results || [];
  var timelines = report.timelines || [];
  function rowLabel(r) { return r.system + ' · ' + fmtBytes(r.bytes) + ' · ' + r.mappers + '×' + r.reducers; }
  var labels = rows.map(rowLabel);

  if (timelines.length === 0) empty('throughput', 'No timelines in this report.');
  else draw(document.getElementById('throughput'), {
    type: 'line',
    data: { datasets: timelines.map(function (tl, i) {
      return {
        label: tl.system,
        data: tl.t.map(function (t, k) { return { x: t, y: (tl.bytes_per_s[k] || 0) / 1e6 }; }),
        borderColor: color(i), backgroundColor: color(i), pointRadius: 0, borderWidth: 2, tension: 0.2
      };
    }) },
    options: {
      interaction: { mode: 'nearest', intersect: false },
      scales: {
        x: { type: 'linear', title: { display: true, text: 'seconds since map start' } },
        y: { beginAtZero: true, title: { display: true, text: 'MB/s' } }
      }
    }
  });

  if (rows.length === 0) { empty('phases', 'No results.'); empty('function-seconds', 'No results.'); return; }
  draw(document.getElementById('phases'), {
    type: 'bar',
    data: { labels: labels, datasets: [
      { label: 'map', data: rows.map(function (r) { return r.phases.map_s; }), backgroundColor: color(0) },
      { label: 'reduce: shuffle read', data: rows.map(function (r) { return r.phases.shuffle_read_s; }), backgroundColor: color(1) },
      { label: 'reduce: rest', data: rows.map(function (r) { return Math.max(0, r.phases.reduce_s - r.phases.shuffle_read_s); }), backgroundColor: color(2) }
    ] },
    options: {
      indexAxis: 'y',
      scales: { x: { stacked: true, beginAtZero: true, title: { display: true, text: 'seconds' } }, y: { stacked: true } }
    }
  });

  var parts = [];
  rows.forEach(function (r) {
    Object.keys(r.function_seconds || {}).forEach(function (k) { if (parts.indexOf(k) < 0) parts.push(k); });
  });
  if (parts.length === 0) empty('function-seconds', 'No function time recorded.');
  else draw(document.getElementById('function-seconds'), {
    type: 'bar',
    data: { labels: labels, datasets: parts.map(function (p, i) {
      return { label: p, data: rows.map(function (r) { return (r.function_seconds || {})[p] || 0; }), backgroundColor: color(i) };
    }) },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: 'function-seconds' } } } }
  });
})();
`;

const JOBS_JS = `
(function () {
  var MiB = 1048576;
  var samples = report.samples || [];
  var jobs = report.jobs || [];
  var systems = [];
  (report.summary || []).concat(samples, jobs).forEach(function (x) {
    if (systems.indexOf(x.system) < 0) systems.push(x.system);
  });

  var box = document.getElementById('capacity');
  var drew = false;
  systems.forEach(function (system) {
    var ss = samples.filter(function (s) { return s.system === system; }).sort(function (a, b) { return a.t - b.t; });
    if (ss.length === 0) return;
    drew = true;
    var tiers = [];
    ss.forEach(function (s) {
      Object.keys(s.tiers || {}).forEach(function (tier) {
        var v = s.tiers[tier];
        if ((v.reserved_bytes > 0 || v.used_bytes > 0) && tiers.indexOf(tier) < 0) tiers.push(tier);
      });
    });
    function series(tier, field) {
      return ss.map(function (s) {
        var total = 0;
        Object.keys(s.tiers || {}).forEach(function (k) { if (tier === null || k === tier) total += s.tiers[k][field] || 0; });
        return { x: s.t, y: total / MiB };
      });
    }
    var datasets = [
      { label: 'reserved', data: series(null, 'reserved_bytes'), borderColor: color(0), backgroundColor: color(0), borderWidth: 2 },
      { label: 'used', data: series(null, 'used_bytes'), borderColor: color(1), backgroundColor: color(1), borderWidth: 2 }
    ];
    if (tiers.length > 1) {
      tiers.forEach(function (tier, i) {
        datasets.push({ label: 'reserved (' + tier + ')', data: series(tier, 'reserved_bytes'), borderColor: color(2 + 2 * i), backgroundColor: color(2 + 2 * i), borderWidth: 1, borderDash: [6, 3] });
        datasets.push({ label: 'used (' + tier + ')', data: series(tier, 'used_bytes'), borderColor: color(3 + 2 * i), backgroundColor: color(3 + 2 * i), borderWidth: 1, borderDash: [2, 2] });
      });
    }
    datasets.forEach(function (d) { d.pointRadius = 0; d.stepped = true; });
    var h = document.createElement('h3');
    h.textContent = system;
    var div = document.createElement('div');
    div.className = 'chart';
    var canvas = document.createElement('canvas');
    div.appendChild(canvas);
    box.appendChild(h);
    box.appendChild(div);
    draw(canvas, {
      type: 'line',
      data: { datasets: datasets },
      options: {
        interaction: { mode: 'nearest', intersect: false },
        scales: {
          x: { type: 'linear', title: { display: true, text: 'seconds' } },
          y: { beginAtZero: true, title: { display: true, text: 'MiB' } }
        }
      }
    });
  });
  if (!drew) {
    var p = document.createElement('p');
    p.className = 'empty';
    p.textContent = 'No capacity samples in this report.';
    box.appendChild(p);
  }

  if (jobs.length === 0) { empty('gantt', 'No jobs.'); return; }
  document.getElementById('gantt-box').style.height = Math.max(160, 22 * jobs.length + 70) + 'px';
  draw(document.getElementById('gantt'), {
    type: 'bar',
    data: {
      labels: jobs.map(function (j) { return j.system + ' · ' + j.name; }),
      datasets: [{
        label: 'job',
        data: jobs.map(function (j) { return [j.start_s, j.end_s]; }),
        backgroundColor: jobs.map(function (j) { return color(systems.indexOf(j.system)); })
      }]
    },
    options: {
      indexAxis: 'y',
      plugins: { legend: { display: false } },
      scales: { x: { type: 'linear', beginAtZero: true, title: { display: true, text: 'seconds since run start' } } }
    }
  });
})();
`;
