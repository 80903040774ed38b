/**
 * The console page's script (bundled by build.mjs into /assets/console.js): wires the views to the live stream
 * and the buttons. Hooks the tests use: node rows `tr[data-node-id]` with `button[data-action=drain]`, job rows
 * `tr[data-job-id]` with `button[data-action=open-job]` and `button[data-action=deregister]`, the job view
 * `#job-detail` (`[data-field=requested|reserved|used|throughput|latency]`, `button[data-action=close-job]`; its
 * Redis part `#job-redis`: `[data-field=redis-form|redis-nodes]`, `button[data-action=redis-url]`,
 * `input[name=redis-url]`),
 * the add-node form (`select[name=tier]`, `button[data-action=add-node]`), `input[name=admin-token]`, the token
 * form `form#login` (`input[name=token]`, shown while `body.locked`), the events list `#events`, the status line
 * `#status` (role=status), and the charts' canvases (`#throughput-chart`, `#latency-chart`, `#job-chart`,
 * `#job-throughput-chart`, `#job-latency-chart`; Chart.js's `Chart.getChart(canvas)` finds each chart).
 */
import { readCluster } from './api.ts';
import { type ClusterCharts, makeClusterCharts, pushTotals } from './charts.ts';
import { fetchDetails } from './details.ts';
import { $ } from './dom.ts';
import { addEvents, renderEvents } from './events.ts';
import { fmtDuration } from './format.ts';
import { closeJob, openJob, renderJobDetail } from './job-detail.ts';
import { fetchRedisUrl } from './job-redis.ts';
import { deregisterJob, registerJob, renderJobs, visibleJobs } from './jobs.ts';
import { addNode, drainNode, renderNodes } from './nodes.ts';
import {
  forgetTokens,
  getAccessToken,
  hideLogin,
  restoreTokens,
  setAccessToken,
  showLogin,
  takeLoginToken,
  takeTokenFromFragment,
  tokenAccepted,
  tokenRefused,
} from './session.ts';
import { sampleJobs, state } from './state.ts';
import { setConnection } from './status.ts';
import { type StreamHandlers, startStream, stopStream } from './stream.ts';
import { renderSummary } from './summary.ts';

let charts: ClusterCharts | null = null;
/** The jobs the events list last linked to. */
let eventJobIds = '';

function renderAll(): void {
  renderSummary(visibleJobs().length);
  renderNodes();
  renderJobs();
  renderJobDetail();
}

/** A job's details arrived (its hints, its whole placement): the views that show them. */
function detailsArrived(): void {
  renderJobs();
  renderJobDetail();
}

const handlers: StreamHandlers = {
  snapshot(snapshot) {
    tokenAccepted();
    state.t = snapshot.t;
    state.nodes = snapshot.nodes ?? [];
    state.jobs = snapshot.jobs ?? [];
    state.totals = snapshot.totals ?? null;
    state.lastSnapshotAt = Date.now();
    sampleJobs(snapshot.t, state.jobs);
    setConnection('live', 'live');
    renderAll();
    // An event's link to its job shows while the job lives: redrawn when the jobs change, not every second.
    const jobIds = state.jobs.map((j) => j.id).join(' ');
    if (jobIds !== eventJobIds) {
      eventJobIds = jobIds;
      renderEvents();
    }
    if (snapshot.totals) pushTotals(charts, snapshot.t, snapshot.totals);
    fetchDetails(state.jobs, detailsArrived);
  },
  history(points) {
    for (const point of points) pushTotals(charts, point.t, point.totals);
  },
  events(list) {
    addEvents(list);
  },
  refused() {
    tokenRefused();
    setAccessToken('');
    lock('The console refused that token (401). Enter the viewer token or the admin token.');
  },
  opened() {
    // The autoscaler's band, which the node bars are coloured against (levels.ts); the default without one.
    readCluster().then(
      (info) => {
        if (info?.autoscaler) state.band = { low: info.autoscaler.low, high: info.autoscaler.high };
        renderNodes();
      },
      () => {},
    );
  },
};

/** Hides the cluster and asks for a token: at the start without one, and when the console refuses it (401). */
function lock(reason: string): void {
  stopStream();
  showLogin(reason);
}

/** Opens the stream with the access token, or asks for one. */
function connect(): void {
  stopStream();
  if (!getAccessToken()) {
    lock(
      'This console needs a token: the viewer token (it reads) or the admin token. satchel up prints a link with it; cluster.json holds both (viewerToken, adminToken).',
    );
    return;
  }
  hideLogin();
  startStream(handlers);
}

function toggleJob(jobId: string): void {
  if (state.openJob === jobId) closeJob();
  else openJob(jobId);
  renderJobs();
  fetchDetails(state.jobs, detailsArrived);
}

/** One listener for every button with a `data-action`: rows are patched in place, so each finds its row by id. */
function onClick(event: MouseEvent): void {
  const button = event.target instanceof Element ? event.target.closest<HTMLButtonElement>('button[data-action]') : null;
  if (button === null || button.disabled) return;
  const nodeId = button.closest('[data-node-id]')?.getAttribute('data-node-id');
  const jobId = button.dataset.job ?? button.closest('[data-job-id]')?.getAttribute('data-job-id');
  switch (button.dataset.action) {
    case 'drain':
      if (nodeId) drainNode(nodeId);
      break;
    case 'deregister':
      if (jobId) {
        deregisterJob(jobId, () => {
          if (state.openJob === jobId) closeJob();
          renderAll();
        });
      }
      break;
    case 'open-job':
      if (jobId) toggleJob(jobId);
      break;
    case 'close-job':
      closeJob();
      renderJobs();
      break;
    case 'redis-url':
      if (jobId) fetchRedisUrl(jobId, renderJobDetail);
      break;
  }
}

restoreTokens();
takeTokenFromFragment();
window.addEventListener('hashchange', () => {
  if (takeTokenFromFragment()) connect();
});
$('#login').addEventListener('submit', (event) => {
  event.preventDefault();
  if (takeLoginToken()) connect();
});
$('#forget-token').addEventListener('click', () => {
  forgetTokens();
  lock('Tokens forgotten. Enter a token to see the cluster again.');
});
$('#add-node').addEventListener('submit', addNode);
$('#register-job').addEventListener('submit', registerJob);
$('#events-filter').addEventListener('change', renderEvents);
document.addEventListener('click', onClick);
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && state.openJob !== null) {
    closeJob();
    renderJobs();
  }
});
renderAll();
renderEvents();
charts = makeClusterCharts();
connect();
// Only a display check (no request): flags a stream that has gone quiet.
setInterval(() => {
  if (state.lastSnapshotAt && Date.now() - state.lastSnapshotAt > 5000)
    setConnection(`no update for ${fmtDuration(Date.now() - state.lastSnapshotAt)}`, 'down');
}, 1000);
