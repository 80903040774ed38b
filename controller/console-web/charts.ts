/**
 * The charts, drawn by Chart.js (its browser build, `/assets/chart.umd.min.js`, loaded before this script and
 * found as the global `Chart`; only its types are imported here). The cluster's throughput (linear) and op
 * latency: p50 and p99 in ms on a logarithmic axis, since they are orders of magnitude apart (a linear axis up
 * to the p99 drew the p50 as a flat line along the bottom). And for a job's detail view: its used and reserved
 * bytes, its own throughput (ops/s, MB/s in and out) and its mean latency (ms, on a log axis as the cluster's).
 */
import type { ChartConfiguration, ChartDataset, Chart as ChartJs } from 'chart.js';
import { fmtBytes, fmtClock, fmtMs, logTick } from './format.ts';
import { type JobSample, WINDOW_MS } from './state.ts';
import type { Totals } from './types.ts';

declare const Chart: typeof ChartJs | undefined;

type Point = { x: number; y: number | null };
type LineChart = ChartJs<'line', Point[]>;

export interface ClusterCharts {
  throughput: LineChart;
  latency: LineChart;
}

const COLORS = { blue: '#1c64d1', green: '#2f9e44', teal: '#0b7285', red: '#d9480f', grey: '#8a94a3' };

function line(
  label: string,
  color: string,
  axis: string,
  extra: Partial<ChartDataset<'line', Point[]>> = {},
): ChartDataset<'line', Point[]> {
  return {
    label,
    data: [],
    borderColor: color,
    backgroundColor: color,
    borderWidth: 2,
    pointRadius: 0,
    tension: 0.2,
    yAxisID: axis,
    spanGaps: false,
    ...extra,
  };
}

function timeAxis() {
  return { type: 'linear' as const, ticks: { maxTicksLimit: 6, callback: (value: number | string) => fmtClock(Number(value)) } };
}

function config(
  datasets: ChartDataset<'line', Point[]>[],
  scales: NonNullable<ChartConfiguration<'line', Point[]>['options']>['scales'],
  tooltipValue: (axis: string, y: number) => string,
): ChartConfiguration<'line', Point[]> {
  return {
    type: 'line',
    data: { datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      plugins: {
        legend: { position: 'bottom' },
        tooltip: {
          callbacks: {
            title: (items) => (items.length > 0 ? fmtClock(items[0]!.parsed.x ?? 0) : ''),
            label: (item) =>
              `${item.dataset.label ?? ''}: ${item.parsed.y === null ? '–' : tooltipValue(item.dataset.yAxisID ?? '', item.parsed.y)}`,
          },
        },
      },
      scales,
    },
  };
}

/** Says so in each chart's box when Chart.js did not load (the page works without it). */
function chartsMissing(): boolean {
  if (typeof Chart !== 'undefined') return false;
  for (const box of document.querySelectorAll('.chart')) {
    const note = document.createElement('p');
    note.className = 'empty';
    note.textContent = 'charts unavailable: /assets/chart.umd.min.js did not load';
    box.replaceChildren(note);
  }
  return true;
}

/** ops/s on the left axis (`ops`), MB/s on the right (`mb`): the cluster's and a job's throughput. */
function throughputChart(canvas: HTMLCanvasElement, datasets: ChartDataset<'line', Point[]>[]): LineChart {
  return new Chart!(
    canvas,
    config(
      datasets,
      {
        x: timeAxis(),
        ops: { type: 'linear', position: 'left', beginAtZero: true, title: { display: true, text: 'ops/s' } },
        mb: {
          type: 'linear',
          position: 'right',
          beginAtZero: true,
          title: { display: true, text: 'MB/s' },
          grid: { drawOnChartArea: false },
        },
      },
      (axis, y) => (axis === 'mb' ? `${y.toFixed(2)} MB/s` : `${y < 10 ? y.toFixed(1) : Math.round(y)} ops/s`),
    ),
  );
}

/** Latencies in ms on a logarithmic axis (`ms`): the cluster's p50 and p99, a job's mean. */
function latencyChart(canvas: HTMLCanvasElement, datasets: ChartDataset<'line', Point[]>[]): LineChart {
  return new Chart!(
    canvas,
    config(
      datasets,
      {
        x: timeAxis(),
        ms: {
          type: 'logarithmic',
          position: 'left',
          title: { display: true, text: 'ms (log scale)' },
          ticks: { callback: (value) => logTick(Number(value)) },
        },
      },
      (_axis, y) => fmtMs(y),
    ),
  );
}

export function makeClusterCharts(): ClusterCharts | null {
  if (chartsMissing() || typeof Chart === 'undefined') return null;
  const throughput = throughputChart(document.getElementById('throughput-chart') as HTMLCanvasElement, [
    line('ops/s', COLORS.blue, 'ops'),
    line('MB/s', COLORS.green, 'mb'),
  ]);
  const latency = latencyChart(document.getElementById('latency-chart') as HTMLCanvasElement, [
    line('p50', COLORS.blue, 'ms'),
    line('p99', COLORS.red, 'ms'),
  ]);
  return { throughput, latency };
}

/** Appends a point and drops those older than WINDOW_MS; a repeated time (a reconnect's snapshot) is skipped. */
function push(data: Point[], t: number, y: number | null): void {
  const last = data[data.length - 1];
  if (last !== undefined && last.x >= t) return;
  data.push({ x: t, y });
  while (data.length > 0 && data[0]!.x < t - WINDOW_MS) data.shift();
}

function showWindow(chart: LineChart, t: number): void {
  const x = chart.options.scales?.x;
  if (x !== undefined) {
    x.min = t - WINDOW_MS;
    x.max = t;
  }
  chart.update('none');
}

/** One point per snapshot (or history entry); the charts are updated, not rebuilt. */
export function pushTotals(charts: ClusterCharts | null, t: number, totals: Totals): void {
  if (charts === null) return;
  const [ops, mb] = charts.throughput.data.datasets;
  const [p50, p99] = charts.latency.data.datasets;
  push(ops!.data, t, totals.opsPerSec);
  push(mb!.data, t, totals.bytesPerSec / 1e6);
  // In ms; a log axis has no zero, and the servers send null for an interval without operations: a gap.
  push(p50!.data, t, totals.latencyP50Us === null ? null : totals.latencyP50Us / 1000);
  push(p99!.data, t, totals.latencyP99Us === null ? null : totals.latencyP99Us / 1000);
  showWindow(charts.throughput, t);
  showWindow(charts.latency, t);
}

/** The detail view's charts of one job: its bytes, its throughput, its mean latency. */
export interface JobCharts {
  bytes: LineChart;
  throughput: LineChart;
  latency: LineChart;
}

/** The job view's charts (`#job-chart`, `#job-throughput-chart`, `#job-latency-chart`); null without Chart.js. */
export function makeJobCharts(): JobCharts | null {
  if (typeof Chart === 'undefined') return null;
  const bytes = new Chart(
    document.getElementById('job-chart') as HTMLCanvasElement,
    config(
      [line('used', COLORS.blue, 'bytes'), line('reserved', COLORS.grey, 'bytes', { borderDash: [6, 4] })],
      {
        x: timeAxis(),
        bytes: { type: 'linear', position: 'left', beginAtZero: true, ticks: { callback: (value) => fmtBytes(Number(value)) } },
      },
      (_axis, y) => fmtBytes(y),
    ),
  );
  const throughput = throughputChart(document.getElementById('job-throughput-chart') as HTMLCanvasElement, [
    line('ops/s', COLORS.blue, 'ops'),
    line('MB/s in', COLORS.green, 'mb'),
    line('MB/s out', COLORS.teal, 'mb', { borderDash: [6, 4] }),
  ]);
  const latency = latencyChart(document.getElementById('job-latency-chart') as HTMLCanvasElement, [line('mean', COLORS.blue, 'ms')]);
  return { bytes, throughput, latency };
}

/** Replaces the job charts' points with the samples this page has seen of the job. */
export function showJobSamples(charts: JobCharts, samples: JobSample[], now: number): void {
  const [used, reserved] = charts.bytes.data.datasets;
  used!.data = samples.map((s) => ({ x: s.t, y: s.used }));
  reserved!.data = samples.map((s) => ({ x: s.t, y: s.reserved }));
  const [ops, mbIn, mbOut] = charts.throughput.data.datasets;
  ops!.data = samples.map((s) => ({ x: s.t, y: s.opsPerSec }));
  mbIn!.data = samples.map((s) => ({ x: s.t, y: s.bytesInPerSec / 1e6 }));
  mbOut!.data = samples.map((s) => ({ x: s.t, y: s.bytesOutPerSec / 1e6 }));
  // In ms; a log axis has no zero: an interval in which the job was served nothing is a gap.
  charts.latency.data.datasets[0]!.data = samples.map((s) => ({
    x: s.t,
    y: s.latencyMeanUs !== null && s.latencyMeanUs > 0 ? s.latencyMeanUs / 1000 : null,
  }));
  showWindow(charts.bytes, now);
  showWindow(charts.throughput, now);
  showWindow(charts.latency, now);
}
