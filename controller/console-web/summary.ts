/** The cluster at a glance (`#summary`) and when it was last updated (`#updated`). */
import { $, h, syncChildren } from './dom.ts';
import { fmtBytes, fmtClock, fmtLatency, fmtNum, fmtRate, fmtUsd } from './format.ts';
import { state } from './state.ts';

export function renderSummary(jobCount: number): void {
  const totals = state.totals;
  let capacity = 0;
  let reserved = 0;
  for (const n of state.nodes) {
    capacity += n.capacity;
    reserved += n.reserved;
  }
  let cost = 0;
  for (const j of state.jobs) cost += j.cost.usd;
  const items: [string, string][] = [
    [String(state.nodes.length), 'nodes'],
    [String(jobCount), 'jobs'],
    [`${fmtBytes(reserved)} / ${fmtBytes(capacity)}`, 'reserved / capacity'],
    [fmtNum(totals?.opsPerSec), 'ops/s'],
    [fmtRate(totals?.bytesPerSec ?? 0), 'throughput'],
    [`${fmtLatency(totals?.latencyP50Us)} / ${fmtLatency(totals?.latencyP99Us)}`, 'op latency p50 / p99'],
    [fmtUsd(cost), 'cost of current jobs so far'],
  ];
  syncChildren(
    $('#summary'),
    items.map(([value, label]) => h('div', null, h('b', { text: value }), h('span', { text: label }))),
  );
  $('#updated').textContent = state.t ? `updated ${fmtClock(state.t)}` : 'waiting for data';
}
