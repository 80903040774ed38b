/**
 * One job's view (`#job-detail`, opened from its row): what it asked for against what is reserved and what it
 * holds (`[data-field=requested|reserved|used]`), its own throughput and mean latency
 * (`[data-field=throughput|latency]`: its requests on its nodes, which report them per job), its hints, tier,
 * lease and cost, every generation of its placement with the bytes it holds on each node, and charts of its
 * used and reserved bytes, its throughput (ops/s, MB/s in and out) and its mean latency (ms, log axis) while
 * this page has been open.
 *
 * The node columns of the placement table are each node's, shared with its other jobs, and say so. How Redis
 * clients reach the job is job-redis.ts's (`#job-redis`).
 */

import { type JobCharts, makeJobCharts, showJobSamples } from './charts.ts';
import { hintsOf, requestedBytes } from './details.ts';
import { $, h, syncChildren } from './dom.ts';
import { fmtBytes, fmtDuration, fmtLatency, fmtNum, fmtRate, fmtUsd } from './format.ts';
import { forgetRedisUrl, redisRows } from './job-redis.ts';
import { requestedText, usageMeter } from './jobs.ts';
import { JOB_LEVEL_MEANING, jobLevel } from './levels.ts';
import { serverNow, state } from './state.ts';
import type { JobHints, JobRow } from './types.ts';

let charts: JobCharts | null = null;

export function openJob(jobId: string): void {
  if (state.openJob !== jobId) forgetRedisUrl();
  state.openJob = jobId;
  const section = $('#job-detail');
  section.hidden = false;
  charts ??= makeJobCharts();
  renderJobDetail();
  section.scrollIntoView({ block: 'nearest' });
  $<HTMLButtonElement>('#job-detail button[data-action=close-job]').focus({ preventScroll: true });
}

export function closeJob(): void {
  forgetRedisUrl();
  state.openJob = null;
  $('#job-detail').hidden = true;
}

/** A size on a bar scaled to the largest of the three, so the bars compare at a glance. */
function sizeRow(
  field: 'requested' | 'reserved' | 'used',
  bytes: number | null,
  text: string,
  scale: number,
  className: string,
  note: string,
) {
  const fill = h('div', { className: 'fill' });
  if (bytes !== null && scale > 0) fill.style.width = `${Math.min(1, bytes / scale) * 100}%`;
  return h(
    'div',
    { className: `size ${className}`, 'data-key': field },
    h('span', { className: 'size-name', text: field }),
    h('div', { className: 'bar' }, fill),
    h('span', { className: 'figure', 'data-field': field, text }),
    h('span', { className: 'muted size-note', text: note }),
  );
}

function hintList(hints: JobHints | undefined): string {
  if (hints === undefined) return 'reading…';
  const words: string[] = [];
  if (hints.capacity !== undefined) words.push(`capacity ${fmtBytes(hints.capacity)}`);
  if (hints.peakThroughput !== undefined) words.push(`peak throughput ${fmtRate(hints.peakThroughput)}`);
  if (hints.latencySensitive !== undefined) words.push(hints.latencySensitive ? 'latency-sensitive' : 'not latency-sensitive');
  if (hints.replicas !== undefined) words.push(`${hints.replicas} ${hints.replicas === 1 ? 'copy' : 'copies'}`);
  if (hints.functions !== undefined) words.push(`${fmtNum(hints.functions)} functions`);
  if (hints.maxValueBytes !== undefined) words.push(`values up to ${fmtBytes(hints.maxValueBytes)}`);
  return words.length > 0 ? words.join(' · ') : 'none (the defaults)';
}

function facts(job: JobRow): HTMLElement[] {
  const now = serverNow();
  const lease = Date.parse(job.leaseExpiresAt) - now;
  const costByTier = Object.entries(job.cost.byteSeconds)
    .map(([tier, s]) => `${tier} ${fmtNum(s / 1e9 / 3600, 4)} GB·h`)
    .join(', ');
  const rows: [string, string, string?][] = [
    [
      'throughput',
      `${fmtNum(job.opsPerSec, job.opsPerSec < 10 ? 1 : 0)} ops/s · ${fmtRate(job.bytesInPerSec)} in · ${fmtRate(job.bytesOutPerSec)} out`,
      'throughput',
    ],
    [
      'latency',
      job.latencyMeanUs === null
        ? 'idle: nothing served in its nodes\u2019 last report'
        : `${fmtLatency(job.latencyMeanUs)} mean service time on its nodes`,
      'latency',
    ],
    ['hints', hintList(hintsOf(job))],
    ['tier', `${job.tier}: ${job.reason}`],
    [
      'placement',
      `epoch ${job.epoch} · ${job.generations} ${job.generations === 1 ? 'generation' : 'generations'} · ${job.nodes.length} ${job.nodes.length === 1 ? 'node' : 'nodes'} in the newest`,
    ],
    ['age', fmtDuration(now - Date.parse(job.createdAt))],
    [
      'lease',
      Number.isFinite(lease)
        ? lease >= 0
          ? `renew within ${fmtDuration(lease)}, or it is collected`
          : 'lapsed: about to be collected'
        : '–',
    ],
    ['cost so far', `${fmtUsd(job.cost.usd)}${costByTier ? ` (${costByTier})` : ''}`],
  ];
  if (job.pending !== null)
    rows.push(['copying', `${job.pending.kind === 'drain' ? 'moving off' : 'restoring copies lost with'} ${job.pending.node}`]);
  if (job.lostNodes.length > 0)
    rows.push(['lost', `its data on ${job.lostNodes.join(', ')} died with the process: those keys fail with UNAVAILABLE`]);
  return rows.map(([term, value, field]) =>
    h('div', { 'data-key': term }, h('dt', { text: term }), h('dd', { text: value, 'data-field': field ?? null })),
  );
}

/** Every generation's nodes, newest first, with the job's bytes on each and the node's own load. */
function placementRows(job: JobRow): HTMLElement[] {
  const generations = state.details.get(job.id)?.placement.generations ?? [{ nodes: job.nodes }];
  const rows: HTMLElement[] = [];
  generations.forEach((generation, g) => {
    for (const placed of generation.nodes) {
      const node = state.nodes.find((n) => n.id === placed.id);
      const s = node?.stats ?? null;
      rows.push(
        h(
          'tr',
          { 'data-key': `${g}:${placed.id}` },
          h('td', { 'data-label': 'generation', text: g === 0 ? 'newest' : `${g} older` }),
          h('td', { 'data-label': 'node', className: 'mono' }, placed.id, h('div', { className: 'muted', text: placed.address })),
          h('td', { 'data-label': 'weight', className: 'num', text: fmtNum(placed.weight, 2) }),
          h('td', { 'data-label': 'it holds there', className: 'num', text: s ? fmtBytes(s.jobs[job.id] ?? 0) : '–' }),
          h('td', { 'data-label': "node's ops/s (all jobs)", className: 'num', text: s ? fmtNum(s.opsPerSec) : '–' }),
          h('td', {
            'data-label': "node's p50 / p99 (all jobs)",
            className: 'num',
            text: s ? `${fmtLatency(s.latencyP50Us)} / ${fmtLatency(s.latencyP99Us)}` : '–',
          }),
        ),
      );
    }
  });
  if (rows.length === 0)
    rows.push(h('tr', { 'data-key': 'empty' }, h('td', { className: 'empty', colspan: 6, text: 'not placed yet: no node could hold it' })));
  return rows;
}

/** Redraws the open job's view from the last snapshot; closes it when the job is gone. */
export function renderJobDetail(): void {
  if (state.openJob === null) return;
  const job = state.jobs.find((j) => j.id === state.openJob);
  if (job === undefined) {
    closeJob();
    return;
  }
  $('#job-detail-title').textContent = `Job ${job.name}`;
  $('#job-detail-id').textContent = job.id;
  const requested = requestedBytes(hintsOf(job));
  const scale = Math.max(requested ?? 0, job.reservation, job.usage);
  const level = jobLevel(job.usage, job.reservation);
  const asked = requestedText(job);
  syncChildren($('#job-sizes'), [
    sizeRow('requested', requested, asked.text, scale, 'requested', asked.title),
    sizeRow(
      'reserved',
      job.reservation,
      fmtBytes(job.reservation),
      scale,
      'reserved',
      'set aside on its nodes, every copy counted; follows use at 1.25 ×',
    ),
    sizeRow('used', job.usage, fmtBytes(job.usage), scale, level, 'held, from the nodes\u2019 last reports'),
  ]);
  syncChildren($('#job-usage'), [
    usageMeter(job.usage, job.reservation),
    h('span', { className: 'muted', text: `of its reservation: ${JOB_LEVEL_MEANING[level]}` }),
  ]);
  syncChildren($('#job-facts'), facts(job));
  syncChildren($('#job-nodes tbody'), placementRows(job));
  syncChildren($('#job-redis'), redisRows(job));
  if (charts !== null) showJobSamples(charts, state.jobSamples.get(job.id) ?? [], serverNow());
}
