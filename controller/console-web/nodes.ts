/**
 * The nodes table (`#nodes`): a tbody per tier, a row per node (`tr[data-node-id]`) with its CPU, network and
 * capacity against the autoscaler's band, ops/s, service-time p50/p99, and a drain button
 * (`button[data-action=drain]`); and the add-node form (`#add-node`).
 */
import { adminCall } from './api.ts';
import { $, cell, h, meter, syncChildren } from './dom.ts';
import { fmtBytes, fmtLatency, fmtNum, fmtPct, fmtRate } from './format.ts';
import { nodeLevel } from './levels.ts';
import { state } from './state.ts';
import { setStatus } from './status.ts';
import type { NodeRow, Tier } from './types.ts';

const TIERS: Tier[] = ['dram', 'ssd', 'hdd'];
const COLUMNS = 8;
const pendingDrains = new Set<string>();

function nodeRow(node: NodeRow): HTMLTableRowElement {
  const s = node.stats;
  const band = state.band;
  const cpu = s ? s.cpu : null;
  const rate = s ? s.bytesInPerSec + s.bytesOutPerSec : 0;
  const net = s && node.bandwidth > 0 ? rate / node.bandwidth : null;
  const used = s ? s.used : 0;
  const cap = node.capacity > 0 ? Math.max(node.reserved, used) / node.capacity : null;
  const jobsOnNode = s ? Object.keys(s.jobs).length : 0;
  const draining = node.draining === true || pendingDrains.has(node.id);
  const bandWords = `the autoscaler holds the tier at ${fmtPct(band.low)}–${fmtPct(band.high)}`;
  return h(
    'tr',
    { 'data-key': `node:${node.id}`, 'data-node-id': node.id, 'data-tier': node.tier },
    cell(
      'node',
      null,
      h('span', { className: 'mono', text: node.id }),
      draining ? h('span', { className: 'badge', text: 'draining' }) : null,
      node.lost ? h('span', { className: 'badge hot', text: 'lost' }) : null,
      h('div', { className: 'muted mono', text: node.address }),
    ),
    cell(
      'CPU',
      null,
      meter(cpu, nodeLevel(cpu, band), s ? fmtPct(cpu) : 'no report', s ? `CPU ${fmtPct(cpu)} of a core; ${bandWords}` : 'no report yet'),
    ),
    cell(
      'network',
      null,
      meter(
        net,
        nodeLevel(net, band),
        s ? fmtPct(net) : 'no report',
        s
          ? `in ${fmtRate(s.bytesInPerSec)}, out ${fmtRate(s.bytesOutPerSec)} of ${fmtRate(node.bandwidth)}; ${bandWords}`
          : 'no report yet',
      ),
      h('div', { className: 'muted', text: `${s ? fmtRate(rate) : '–'} of ${fmtRate(node.bandwidth)}` }),
    ),
    cell(
      'capacity (max of reserved, used)',
      null,
      meter(
        cap,
        nodeLevel(cap, band),
        fmtPct(cap),
        `reserved ${fmtBytes(node.reserved)}, used ${s ? fmtBytes(used) : '–'} of ${fmtBytes(node.capacity)}; ${bandWords}`,
      ),
      h('div', {
        className: 'muted',
        text: `reserved ${fmtBytes(node.reserved)} · used ${s ? fmtBytes(used) : '–'} of ${fmtBytes(node.capacity)}`,
      }),
    ),
    cell('ops/s', { className: 'num' }, s ? fmtNum(s.opsPerSec) : '–'),
    cell('p50 / p99', { className: 'num' }, s ? `${fmtLatency(s.latencyP50Us)} / ${fmtLatency(s.latencyP99Us)}` : '–'),
    cell('jobs', { className: 'num' }, String(jobsOnNode)),
    cell(
      '',
      { className: 'actions' },
      h(
        'button',
        { type: 'button', 'data-action': 'drain', disabled: draining, title: 'move its data to other nodes, then remove it' },
        draining ? 'draining…' : 'drain',
      ),
    ),
  );
}

export function renderNodes(): void {
  const table = $<HTMLTableElement>('#nodes');
  const bodies: Node[] = [];
  for (const tier of TIERS) {
    const nodes = state.nodes.filter((n) => n.tier === tier);
    nodes.sort((a, b) => a.registeredAt - b.registeredAt || (a.id < b.id ? -1 : 1));
    let capacity = 0;
    let reserved = 0;
    let used = 0;
    for (const n of nodes) {
      capacity += n.capacity;
      reserved += n.reserved;
      used += n.stats ? n.stats.used : 0;
    }
    const head = h(
      'tr',
      { 'data-key': 'head', className: 'tier-head' },
      h(
        'th',
        { className: 'tier', colspan: COLUMNS },
        `${tier.toUpperCase()} — ${nodes.length} ${nodes.length === 1 ? 'node' : 'nodes'}` +
          (nodes.length > 0 ? ` · ${fmtBytes(capacity)} · reserved ${fmtBytes(reserved)} · used ${fmtBytes(used)}` : ''),
      ),
    );
    const body = h('tbody', { 'data-key': `tier:${tier}`, 'data-tier': tier }, head);
    if (nodes.length === 0)
      body.append(h('tr', { 'data-key': 'empty' }, h('td', { className: 'empty', colspan: COLUMNS, text: `no ${tier} nodes` })));
    for (const n of nodes) body.append(nodeRow(n));
    bodies.push(body);
  }
  syncChildren(table, [table.tHead!, ...bodies]);
}

export function drainNode(nodeId: string): void {
  const node = state.nodes.find((n) => n.id === nodeId);
  if (node === undefined || pendingDrains.has(node.id) || node.draining === true) return;
  if (!confirm(`Drain node ${node.id} (${node.tier}, ${node.address}) and remove it? Its jobs' data moves to other nodes first.`)) return;
  pendingDrains.add(node.id);
  renderNodes();
  setStatus(`draining node ${node.id}… (moving its data can take a while)`);
  adminCall<{ keys: number; bytes: number; jobs: number; seconds: number }>('DELETE', `/api/nodes/${encodeURIComponent(node.id)}`).then(
    (result) => {
      pendingDrains.delete(node.id);
      renderNodes();
      const r = result ?? { keys: NaN, bytes: NaN, jobs: NaN, seconds: NaN };
      setStatus(
        `node ${node.id} drained and removed: moved ${fmtNum(r.keys)} keys (${fmtBytes(r.bytes)}) of ${fmtNum(r.jobs)} jobs in ${fmtNum(r.seconds, 1)} s`,
        'ok',
      );
    },
    (error: Error) => {
      pendingDrains.delete(node.id);
      renderNodes();
      setStatus(`drain ${node.id} failed: ${error.message}`, 'error');
    },
  );
}

export function addNode(event: Event): void {
  event.preventDefault();
  const tier = $<HTMLSelectElement>('#add-node select[name=tier]').value;
  const button = $<HTMLButtonElement>('#add-node button[data-action=add-node]');
  button.disabled = true;
  setStatus(`asking for a ${tier} node…`);
  adminCall('POST', '/api/nodes', { tier }).then(
    () => {
      button.disabled = false;
      setStatus(`launching a ${tier} node: it shows up here when it joins`, 'ok');
    },
    (error: Error) => {
      button.disabled = false;
      setStatus(`add ${tier} node failed: ${error.message}`, 'error');
    },
  );
}
