/**
 * The events list (`#events`, newest first, the last MAX_EVENTS): the autoscaler's decisions with the measured
 * utilization behind each, nodes joining, lost and drained, copies restored, and jobs registered, deregistered
 * and collected when their lease lapsed (kinds `job-*`). A filter (`#events-filter`) shows all, the jobs' or
 * the cluster's; an event naming a live job (`details.job`) opens its view.
 */
import { $, h, syncChildren } from './dom.ts';
import { fmtBytes, fmtClock, fmtNum, fmtPct } from './format.ts';
import { MAX_EVENTS, state } from './state.ts';
import type { ClusterEvent } from './types.ts';

/** The job an event is about: `details.job` (copies, registrations), or none. */
function jobOf(event: ClusterEvent): string | undefined {
  const job = event.details?.job;
  return typeof job === 'string' ? job : undefined;
}

export function isJobEvent(event: ClusterEvent): boolean {
  return event.kind.startsWith('job-') || event.kind === 'quota-reached' || jobOf(event) !== undefined;
}

export function addEvents(list: unknown[]): void {
  const bySeq = new Map(state.events.map((e) => [e.seq, e]));
  for (const e of list) {
    if (e !== null && typeof e === 'object' && typeof (e as ClusterEvent).seq === 'number')
      bySeq.set((e as ClusterEvent).seq, e as ClusterEvent);
  }
  state.events = [...bySeq.values()].sort((a, b) => b.seq - a.seq).slice(0, MAX_EVENTS);
  renderEvents();
}

function detailsText(e: ClusterEvent): string {
  if (e.details === undefined) return '';
  const details = e.details;
  return Object.entries(details)
    .map(([k, v]) => {
      // A scale decision's cpu, network, capacity and utilization are fractions of the band, not sizes.
      const fraction = details.utilization !== undefined && /^(utilization|cpu|network|capacity)$/.test(k);
      return `${k}=${typeof v !== 'number' ? v : fraction ? fmtPct(v) : /bytes|capacity|used|reserved|reservation|quota|usage/i.test(k) ? fmtBytes(v) : fmtNum(v, 3)}`;
    })
    .join(', ');
}

export function renderEvents(): void {
  const filter = $<HTMLSelectElement>('#events-filter').value;
  const shown = state.events.filter((e) => filter === 'all' || (filter === 'jobs') === isJobEvent(e));
  const list = $('#events');
  if (shown.length === 0) {
    syncChildren(list, [h('li', { className: 'empty', text: state.events.length === 0 ? 'no events yet' : 'no events of this kind yet' })]);
    return;
  }
  const live = new Set(state.jobs.map((j) => j.id));
  syncChildren(
    list,
    shown.map((e) => {
      const where = [e.tier, e.node].filter(Boolean).join(' · ');
      const details = detailsText(e);
      const job = jobOf(e);
      return h(
        'li',
        { 'data-key': `event:${e.seq}`, 'data-seq': e.seq, 'data-kind': e.kind, 'data-event-job': job },
        h('span', { className: 'muted', title: e.at, text: fmtClock(Date.parse(e.at)) }),
        h('span', { className: `kind ${e.kind}`, text: e.kind }),
        h(
          'span',
          { className: 'what' },
          where ? h('span', { className: 'mono', text: `${where}: ` }) : null,
          e.reason,
          job !== undefined && live.has(job)
            ? h('button', { type: 'button', className: 'link', 'data-action': 'open-job', 'data-job': job, text: ` show ${job}` })
            : null,
          details ? h('div', { className: 'muted', text: details }) : null,
        ),
      );
    }),
  );
}
