/**
 * The jobs table (`#jobs`): a row per job (`tr[data-job-id]`) with what it asked for (its capacity hint, times
 * its copies), what is reserved for it, what it holds (coloured by levels.ts `jobLevel`), its ops/s
 * (`[data-field=ops]`; bytes and mean latency in its tooltip), its nodes, age, lease and cost; its name opens the detail view (`button[data-action=open-job]`), and `button[data-action=deregister]`
 * ends it. And the register-a-job form (`#register-job`).
 */
import { adminCall } from './api.ts';
import { hintsOf, requestedBytes } from './details.ts';
import { $, cell, h, meter, syncChildren } from './dom.ts';
import { fmtBytes, fmtDuration, fmtLatency, fmtNum, fmtPct, fmtRate, fmtUsd } from './format.ts';
import { JOB_LEVEL_MEANING, jobLevel } from './levels.ts';
import { serverNow, state } from './state.ts';
import { setStatus } from './status.ts';
import type { JobRow } from './types.ts';

const COLUMNS = 11;
const pendingDeregistrations = new Set<string>();
/** Job id → when this page deregistered it: hidden even if a snapshot from before arrives. */
const deregistered = new Map<string, number>();

/** The requested column: the capacity hint × copies; '…' while the job's hints are being fetched. */
export function requestedText(job: JobRow): { text: string; title: string } {
  const hints = hintsOf(job);
  if (hints === undefined) return { text: '…', title: 'reading its hints' };
  const requested = requestedBytes(hints);
  const copies = hints.replicas ?? 1;
  if (requested === null) {
    return {
      text: 'no hint',
      title: hints.peakThroughput
        ? 'no capacity hint: reserved for its peakThroughput hint'
        : 'no capacity hint: reserved the 64 MiB default',
    };
  }
  return {
    text: fmtBytes(requested),
    title: copies > 1 ? `capacity hint ${fmtBytes(hints.capacity)} × ${copies} copies` : `capacity hint ${fmtBytes(hints.capacity)}`,
  };
}

/** The used-of-reserved meter, with what its colour means in its tooltip. */
export function usageMeter(used: number, reserved: number): HTMLElement {
  const level = jobLevel(used, reserved);
  const fraction = reserved > 0 ? used / reserved : null;
  return meter(fraction, level, fmtPct(fraction), `holds ${fmtBytes(used)} of ${fmtBytes(reserved)} reserved: ${JOB_LEVEL_MEANING[level]}`);
}

function jobRow(job: JobRow): HTMLTableRowElement {
  const now = serverNow();
  const requested = requestedText(job);
  const costTitle =
    Object.entries(job.cost.byteSeconds)
      .map(([tier, byteSeconds]) => `${tier}: ${fmtNum(byteSeconds / 1e9 / 3600, 4)} GB·h`)
      .join(', ') || 'nothing reserved yet';
  const nodeText = job.nodes.map((n) => `${n.id} (${n.address}, weight ${fmtNum(n.weight, 2)})`).join('\n');
  const busy = pendingDeregistrations.has(job.id);
  const lease = Date.parse(job.leaseExpiresAt) - now;
  const open = state.openJob === job.id;
  return h(
    'tr',
    { 'data-key': `job:${job.id}`, 'data-job-id': job.id, className: open ? 'open' : null },
    cell(
      'job',
      null,
      h(
        'button',
        { type: 'button', className: 'link', 'data-action': 'open-job', 'aria-expanded': open ? 'true' : 'false', title: 'show this job' },
        h('strong', { text: job.name }),
      ),
      h('div', { className: 'muted mono', text: job.id }),
    ),
    cell('tier and why', null, h('span', { text: job.tier }), h('div', { className: 'muted', text: job.reason })),
    cell('requested', { className: 'num', title: requested.title, 'data-field': 'requested' }, requested.text),
    cell('reserved', { className: 'num', 'data-field': 'reserved' }, fmtBytes(job.reservation)),
    cell(
      'used of reserved',
      { 'data-field': 'used' },
      usageMeter(job.usage, job.reservation),
      h('div', { className: 'muted', text: fmtBytes(job.usage) }),
    ),
    cell(
      'ops/s',
      {
        className: 'num',
        'data-field': 'ops',
        title: `${fmtRate(job.bytesInPerSec)} in, ${fmtRate(job.bytesOutPerSec)} out; mean service time ${fmtLatency(job.latencyMeanUs)}`,
      },
      fmtNum(job.opsPerSec, job.opsPerSec < 10 ? 1 : 0),
    ),
    cell('nodes', { className: 'num', title: nodeText || 'not placed yet' }, `${job.nodes.length} · epoch ${job.epoch}`),
    cell('age', { className: 'num' }, fmtDuration(now - Date.parse(job.createdAt))),
    cell('lease', { className: 'num' }, Number.isFinite(lease) ? (lease >= 0 ? `in ${fmtDuration(lease)}` : 'lapsed') : '–'),
    cell('cost so far', { className: 'num', title: costTitle }, fmtUsd(job.cost.usd)),
    cell(
      '',
      { className: 'actions' },
      h(
        'button',
        { type: 'button', 'data-action': 'deregister', disabled: busy, title: 'delete all its data and free its reservation' },
        busy ? 'deregistering…' : 'deregister',
      ),
    ),
  );
}

/** The jobs on screen: those of the last snapshot but the ones this page just deregistered. */
export function visibleJobs(): JobRow[] {
  const now = Date.now();
  for (const [id, at] of deregistered) if (now - at > 10_000) deregistered.delete(id);
  return state.jobs.filter((j) => !deregistered.has(j.id));
}

export function renderJobs(): void {
  const jobs = visibleJobs();
  jobs.sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || (a.id < b.id ? -1 : 1));
  let rows: Node[] = jobs.map(jobRow);
  if (rows.length === 0) rows = [h('tr', { 'data-key': 'empty' }, h('td', { className: 'empty', colspan: COLUMNS, text: 'no jobs' }))];
  syncChildren($('#jobs tbody'), rows);
  $('#job-count').textContent = `(${jobs.length})`;
}

/** Asks, then deregisters; `done` runs once it is gone (the detail view closes). */
export function deregisterJob(jobId: string, done: () => void): void {
  const job = state.jobs.find((j) => j.id === jobId);
  if (job === undefined || pendingDeregistrations.has(job.id)) return;
  if (!confirm(`Deregister job "${job.name}" (${job.id})? All its data is deleted.`)) return;
  pendingDeregistrations.add(job.id);
  renderJobs();
  setStatus(`deregistering job ${job.name}…`);
  adminCall('DELETE', `/api/jobs/${encodeURIComponent(job.id)}`).then(
    () => {
      pendingDeregistrations.delete(job.id);
      deregistered.set(job.id, Date.now());
      state.jobs = state.jobs.filter((j) => j.id !== job.id);
      done();
      setStatus(`job ${job.name} (${job.id}) deregistered`, 'ok');
    },
    (error: Error) => {
      pendingDeregistrations.delete(job.id);
      renderJobs();
      setStatus(`deregister ${job.name} failed: ${error.message}`, 'error');
    },
  );
}

export function registerJob(event: Event): void {
  event.preventDefault();
  const form = $<HTMLFormElement>('#register-job');
  const name = form.querySelector<HTMLInputElement>('input[name=job-name]')!.value.trim();
  const hintsText = form.querySelector<HTMLInputElement>('input[name=job-hints]')!.value.trim();
  let hints: unknown = {};
  if (hintsText) {
    try {
      hints = JSON.parse(hintsText);
    } catch (error) {
      setStatus(`hints must be JSON: ${(error as Error).message}`, 'error');
      return;
    }
  }
  if (!name) {
    setStatus('a job needs a name', 'error');
    return;
  }
  adminCall<{ jobId: string; ticket: string }>('POST', '/api/jobs', { name, hints }).then(
    (reply) => {
      const ticket = form.querySelector<HTMLInputElement>('input[name=job-ticket]')!;
      ticket.value = reply?.ticket ?? '';
      ticket.hidden = !ticket.value;
      setStatus(`job ${name} registered as ${reply?.jobId}; its ticket is below the form`, 'ok');
    },
    (error: Error) => setStatus(`register job failed: ${error.message}`, 'error'),
  );
}
