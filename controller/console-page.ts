/**
 * The admin console's page, served at `/`: one HTML document with its CSS and script inline, no framework.
 * Chart.js comes from `/assets/chart.umd.min.js` (served by console.ts from node_modules). Everything live
 * arrives over server-sent events (`GET /api/stream`: `events` once, then `snapshot` every second and
 * `cluster-event` as they happen), read with fetch so the access token (viewer or admin) goes in the
 * Authorization header; the buttons call the JSON API with the admin token. The access token comes from the
 * link (`#token=...`, then taken out of the address bar) or the form the page shows without one or after a
 * 401; both tokens are kept in sessionStorage.
 *
 * Hooks tests rely on: node rows `tr[data-node-id]` with `button[data-action=drain]`, job rows
 * `tr[data-job-id]` with `button[data-action=deregister]`, the add-node form (`select[name=tier]`,
 * `button[data-action=add-node]`), `input[name=admin-token]`, the token form `form#login` (`input[name=token]`,
 * shown while `body.locked`), the events list `#events`, and the status line `#status` (role=status).
 *
 * Data only ever reaches the DOM through textContent and attributes, never innerHTML. The script below is a
 * String.raw template: it must hold no backtick, no dollar-brace and no closing script tag.
 */

const STYLE = String.raw`
:root { color-scheme: light; --fg: #1d2330; --muted: #5f6b7a; --line: #e2e6eb; --bg: #f6f7f9; --ok: #2f9e44; --warn: #e8a317; --hot: #d9480f; --accent: #1c64d1; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: center; padding: 10px 20px; background: #fff; border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 1; }
header h1 { font-size: 18px; margin: 0; }
header label { color: var(--muted); }
header input { font: inherit; width: 22em; padding: 3px 6px; }
#connection { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #eee; color: var(--muted); }
#connection.live { background: #e6f4ea; color: var(--ok); }
#connection.down { background: #fdecea; color: var(--hot); }
#status { flex: 1 1 100%; margin: 0; min-height: 1.4em; color: var(--muted); }
#status.error { color: var(--hot); font-weight: 600; }
#status.ok { color: var(--ok); }
main { padding: 12px 20px 40px; display: grid; gap: 16px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; min-width: 0; }
section h2 { font-size: 15px; margin: 0 0 8px; }
.summary { display: flex; flex-wrap: wrap; gap: 8px 28px; }
.summary div { display: flex; flex-direction: column; }
.summary b { font-size: 18px; font-variant-numeric: tabular-nums; }
.summary span { color: var(--muted); font-size: 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 16px; }
.chart { position: relative; height: 220px; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: middle; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
tbody th.tier { background: #f1f3f6; color: var(--fg); font-size: 13px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.muted { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 8px; background: #fff4e0; color: #8a5a00; margin-left: 6px; }
.bar { position: relative; width: 150px; height: 18px; background: #edf0f3; border-radius: 3px; overflow: hidden; }
.bar > .fill { position: absolute; inset: 0 auto 0 0; background: var(--ok); }
.bar.warn > .fill { background: var(--warn); }
.bar.hot > .fill { background: var(--hot); }
.bar.none > .fill { width: 0; }
.bar > .label { position: relative; display: block; padding: 0 6px; font-size: 11px; line-height: 18px; white-space: nowrap; font-variant-numeric: tabular-nums; }
.bar + .muted { display: block; }
button { font: inherit; padding: 3px 10px; cursor: pointer; }
button[data-action=drain], button[data-action=deregister] { color: var(--hot); }
button:disabled { cursor: default; opacity: .6; }
form { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-top: 10px; }
form input, form select { font: inherit; padding: 3px 6px; }
details { margin-top: 10px; }
#events { list-style: none; margin: 0; padding: 0; max-height: 420px; overflow-y: auto; }
#events li { display: grid; grid-template-columns: 7em 9em 1fr; gap: 10px; padding: 4px 0; border-bottom: 1px solid var(--line); }
#events .kind { font-weight: 600; }
#events .kind.scale-up, #events .kind.node-launched, #events .kind.node-joined { color: var(--ok); }
#events .kind.scale-down, #events .kind.drain-started, #events .kind.drain-finished, #events .kind.node-removed { color: #8a5a00; }
#events .kind.drain-failed, #events .kind.launch-failed { color: var(--hot); }
.empty { color: var(--muted); font-style: italic; }
section.login { display: none; }
body.locked section.login { display: block; }
body.locked main > section:not(.login), body.locked header label, body.locked #forget-token { display: none; }
#login p { flex: 1 1 100%; margin: 0; }
`;

const SCRIPT = String.raw`
'use strict';
var TIERS = ['dram', 'ssd', 'hdd'];
var ACCESS_KEY = 'satchel.token';
var ADMIN_KEY = 'satchel.adminToken';
var WINDOW_MS = 5 * 60 * 1000;
var MAX_EVENTS = 200;

var state = { nodes: [], jobs: [], totals: null, t: 0, events: [], lastSnapshotAt: 0 };
var pendingDrains = new Set();
var pendingDeregistrations = new Set();
var deregistered = new Map(); // job id -> when this page deregistered it: hidden even if an older snapshot arrives

function $(selector) { return document.querySelector(selector); }

/** Builds an element; string children become text nodes, so data is never parsed as markup. */
function h(tag, attrs) {
  var node = document.createElement(tag);
  if (attrs) for (var key in attrs) {
    var value = attrs[key];
    if (value === undefined || value === null || value === false) continue;
    if (key === 'className') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (var i = 2; i < arguments.length; i++) {
    var child = arguments[i];
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * Brings the children of parent in line with next, reusing elements: keyed ones (data-key) by key, the others
 * by position. Rows are patched in place each second, so hover, tooltips and text selection survive updates.
 */
function syncChildren(parent, next) {
  var old = Array.from(parent.childNodes);
  var byKey = new Map();
  var unkeyed = [];
  old.forEach(function (child) { var key = keyOf(child); if (key !== null) byKey.set(key, child); else unkeyed.push(child); });
  var used = new Set();
  var position = 0;
  next.forEach(function (child, i) {
    var key = keyOf(child);
    var match = key !== null ? byKey.get(key) : unkeyed[position++];
    var target = child;
    if (match && !used.has(match) && match.nodeType === child.nodeType && match.nodeName === child.nodeName) {
      morph(match, child);
      used.add(match);
      target = match;
    }
    used.add(target);
    var at = parent.childNodes[i];
    if (at !== target) parent.insertBefore(target, at || null);
  });
  old.forEach(function (child) { if (!used.has(child) && child.parentNode === parent) child.remove(); });
}
function keyOf(node) { return node.nodeType === 1 ? node.getAttribute('data-key') : null; }
function morph(current, next) {
  if (current.nodeType !== 1) {
    if (current.nodeValue !== next.nodeValue) current.nodeValue = next.nodeValue;
    return;
  }
  Array.from(current.attributes).forEach(function (a) { if (!next.hasAttribute(a.name)) current.removeAttribute(a.name); });
  Array.from(next.attributes).forEach(function (a) { if (current.getAttribute(a.name) !== a.value) current.setAttribute(a.name, a.value); });
  syncChildren(current, Array.from(next.childNodes));
}

// ---- formatting -------------------------------------------------------------------------------------------

function fmtBytes(n) {
  if (n === null || n === undefined || !isFinite(n)) return '–';
  var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  var i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
}
function fmtRate(bytesPerSec) {
  if (!isFinite(bytesPerSec)) return '–';
  if (bytesPerSec >= 1e9) return (bytesPerSec / 1e9).toFixed(2) + ' GB/s';
  if (bytesPerSec >= 1e6) return (bytesPerSec / 1e6).toFixed(1) + ' MB/s';
  if (bytesPerSec >= 1e3) return (bytesPerSec / 1e3).toFixed(1) + ' kB/s';
  return Math.round(bytesPerSec) + ' B/s';
}
function fmtNum(n, digits) {
  if (n === null || n === undefined || !isFinite(n)) return '–';
  return n.toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 0 : digits });
}
function fmtUs(us) {
  if (us === null || us === undefined) return '–';
  if (us >= 1e6) return (us / 1e6).toFixed(2) + ' s';
  if (us >= 1e3) return (us / 1e3).toFixed(us >= 1e4 ? 0 : 1) + ' ms';
  return Math.round(us) + ' µs';
}
function fmtPct(fraction) { return isFinite(fraction) ? Math.round(fraction * 100) + '%' : '–'; }
function fmtUsd(usd) {
  if (!isFinite(usd)) return '–';
  if (usd === 0) return '$0';
  if (usd >= 1) return '$' + usd.toFixed(2);
  var decimals = Math.min(12, Math.max(2, Math.ceil(-Math.log10(usd)) + 2));
  return '$' + usd.toFixed(decimals);
}
function fmtDuration(ms) {
  var s = Math.round(Math.abs(ms) / 1000);
  if (s < 90) return s + ' s';
  var m = Math.round(s / 60);
  if (m < 90) return m + ' min';
  var hours = Math.floor(m / 60);
  return hours + ' h ' + (m % 60) + ' min';
}
function fmtClock(ms) {
  var d = new Date(ms);
  return d.toLocaleTimeString(undefined, { hour12: false });
}
function serverNow() { return state.t || Date.now(); }

// ---- tokens -----------------------------------------------------------------------------------------------
// Two, each kept in sessionStorage (this tab, until it closes) and never in the address bar: the access token
// (viewer or admin) every read sends, the live stream included; the admin token the buttons send.

var accessToken = '';

function loadSession(key) {
  try { return sessionStorage.getItem(key) || ''; } catch (e) { return ''; }
}
function saveSession(key, value) {
  try {
    if (value) sessionStorage.setItem(key, value); else sessionStorage.removeItem(key);
  } catch (e) { /* storage refused (private mode): the page still holds it until it is closed */ }
}
function setAccessToken(token) {
  accessToken = token;
  saveSession(ACCESS_KEY, token);
}
function saveToken(token) { saveSession(ADMIN_KEY, token); }
/** The admin token also opens every read; its subject says which it is (v1.@admin.MAC, v1.@viewer.MAC). */
function isAdminToken(token) { return token.split('.')[1] === '@admin'; }
/** #token=...: taken, kept for this tab, and taken out of the address bar (and so of the history) at once. */
function takeTokenFromFragment() {
  if (!location.hash || location.hash.length < 2) return false;
  var token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (token === null) return false;
  history.replaceState(null, '', location.pathname + location.search);
  token = token.trim();
  if (!token) return false;
  setAccessToken(token);
  if (isAdminToken(token)) {
    tokenInput.value = token;
    saveToken(token);
  }
  setStatus((isAdminToken(token) ? 'admin' : 'access') + ' token taken from the link and kept for this tab', 'ok');
  return true;
}
function currentToken() { return tokenInput.value.trim(); }

/** Hides the cluster and asks for a token: at the start without one, and when the console refuses it (401). */
function askForToken(reason) {
  stopStream();
  document.body.classList.add('locked');
  $('#login-reason').textContent = reason;
  setConnection('token needed', 'down');
  var input = $('#login input[name=token]');
  input.value = '';
  input.focus();
}
function onLogin(event) {
  event.preventDefault();
  var token = $('#login input[name=token]').value.trim();
  if (!token) return;
  setAccessToken(token);
  if (isAdminToken(token) && !currentToken()) {
    tokenInput.value = token;
    saveToken(token);
  }
  connect();
}
function forgetTokens() {
  setAccessToken('');
  tokenInput.value = '';
  saveToken('');
  askForToken('Tokens forgotten. Enter a token to see the cluster again.');
}

// ---- status line and API calls ---------------------------------------------------------------------------

var statusLine;
function setStatus(text, kind) {
  statusLine.textContent = text;
  statusLine.className = kind || '';
}

/** Calls the API with the admin token; resolves to the parsed body (or null) or throws an Error in words. */
function api(method, path, body) {
  var token = currentToken();
  if (!token) return Promise.reject(new Error('set the admin token first (field at the top, or open the page with #token=...)'));
  var init = { method: method, headers: { Authorization: 'Bearer ' + token } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch(path, init).then(function (response) {
    return response.text().then(function (text) {
      var parsed = null;
      if (text) { try { parsed = JSON.parse(text); } catch (e) { parsed = null; } }
      if (response.ok) return parsed;
      var code = parsed && parsed.code ? parsed.code : response.statusText;
      var message = parsed && parsed.message ? parsed.message : text || 'no details';
      throw new Error(response.status + ' ' + code + ': ' + message);
    });
  }, function (error) {
    throw new Error('the console did not answer: ' + error.message);
  });
}

function deregisterJob(job) {
  if (pendingDeregistrations.has(job.id)) return;
  if (!confirm('Deregister job "' + job.name + '" (' + job.id + ')? All its data is deleted.')) return;
  pendingDeregistrations.add(job.id);
  renderJobs();
  setStatus('deregistering job ' + job.name + '…');
  api('DELETE', '/api/jobs/' + encodeURIComponent(job.id)).then(function () {
    pendingDeregistrations.delete(job.id);
    deregistered.set(job.id, Date.now());
    state.jobs = state.jobs.filter(function (j) { return j.id !== job.id; });
    renderJobs();
    renderSummary();
    setStatus('job ' + job.name + ' (' + job.id + ') deregistered', 'ok');
  }, function (error) {
    pendingDeregistrations.delete(job.id);
    renderJobs();
    setStatus('deregister ' + job.name + ' failed: ' + error.message, 'error');
  });
}

function drainNode(node) {
  if (pendingDrains.has(node.id) || node.draining === true) return;
  if (!confirm('Drain node ' + node.id + ' (' + node.tier + ', ' + node.address + ') and remove it? Its jobs\' data moves to other nodes first.')) return;
  pendingDrains.add(node.id);
  renderNodes();
  setStatus('draining node ' + node.id + '… (moving its data can take a while)');
  api('DELETE', '/api/nodes/' + encodeURIComponent(node.id)).then(function (result) {
    pendingDrains.delete(node.id);
    renderNodes();
    var r = result || {};
    setStatus('node ' + node.id + ' drained and removed: moved ' + fmtNum(r.keys) + ' keys (' + fmtBytes(r.bytes) + ') of ' +
      fmtNum(r.jobs) + ' jobs in ' + fmtNum(r.seconds, 1) + ' s', 'ok');
  }, function (error) {
    pendingDrains.delete(node.id);
    renderNodes();
    setStatus('drain ' + node.id + ' failed: ' + error.message, 'error');
  });
}

/** One listener for every row button: rows are patched in place, so the button looks its row up by id. */
function onClick(event) {
  var button = event.target instanceof Element ? event.target.closest('button[data-action]') : null;
  if (!button || button.disabled) return;
  var action = button.getAttribute('data-action');
  if (action === 'drain') {
    var nodeId = button.closest('[data-node-id]').getAttribute('data-node-id');
    var node = state.nodes.find(function (n) { return n.id === nodeId; });
    if (node) drainNode(node);
  } else if (action === 'deregister') {
    var jobId = button.closest('[data-job-id]').getAttribute('data-job-id');
    var job = state.jobs.find(function (j) { return j.id === jobId; });
    if (job) deregisterJob(job);
  }
}

function addNode(event) {
  event.preventDefault();
  var tier = $('#add-node select[name=tier]').value;
  var button = $('#add-node button[data-action=add-node]');
  button.disabled = true;
  setStatus('asking for a ' + tier + ' node…');
  api('POST', '/api/nodes', { tier: tier }).then(function () {
    button.disabled = false;
    setStatus('launching a ' + tier + ' node: it shows up here when it joins', 'ok');
  }, function (error) {
    button.disabled = false;
    setStatus('add ' + tier + ' node failed: ' + error.message, 'error');
  });
}

function registerJob(event) {
  event.preventDefault();
  var form = $('#register-job');
  var name = form.querySelector('input[name=job-name]').value.trim();
  var hintsText = form.querySelector('input[name=job-hints]').value.trim();
  var hints = {};
  if (hintsText) {
    try { hints = JSON.parse(hintsText); } catch (e) { setStatus('hints must be JSON: ' + e.message, 'error'); return; }
  }
  if (!name) { setStatus('a job needs a name', 'error'); return; }
  api('POST', '/api/jobs', { name: name, hints: hints }).then(function (reply) {
    var ticket = form.querySelector('input[name=job-ticket]');
    ticket.value = reply && reply.ticket ? reply.ticket : '';
    ticket.hidden = !ticket.value;
    setStatus('job ' + name + ' registered as ' + (reply && reply.jobId) + '; its ticket is below the form', 'ok');
  }, function (error) {
    setStatus('register job failed: ' + error.message, 'error');
  });
}

// ---- bars -------------------------------------------------------------------------------------------------

/** A bar for a fraction; the fill is clamped at 100 %, the label says the real number. */
function bar(fraction, label, title) {
  var known = fraction !== null && fraction !== undefined && isFinite(fraction);
  var level = !known ? 'none' : fraction > 0.8 ? 'hot' : fraction > 0.6 ? 'warn' : 'ok';
  var fill = h('div', { className: 'fill' });
  if (known) fill.style.width = Math.max(0, Math.min(1, fraction)) * 100 + '%';
  return h('div', {
    className: 'bar ' + level, role: 'meter', title: title || label,
    'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': known ? Math.round(fraction * 100) : undefined,
    'aria-label': title || label,
  }, fill, h('span', { className: 'label', text: label }));
}

// ---- nodes ------------------------------------------------------------------------------------------------

function nodeRow(node) {
  var s = node.stats;
  var cpu = s ? s.cpu : null;
  var net = s && node.bandwidth > 0 ? (s.bytesInPerSec + s.bytesOutPerSec) / node.bandwidth : null;
  var used = s ? s.used : 0;
  var cap = node.capacity > 0 ? Math.max(node.reserved, used) / node.capacity : null;
  var jobsOnNode = s && s.jobs ? Object.keys(s.jobs).length : 0;
  var draining = node.draining === true || pendingDrains.has(node.id);
  var drain = h('button', { type: 'button', 'data-action': 'drain', disabled: draining,
    title: 'move its data to other nodes, then remove it' }, draining ? 'draining…' : 'drain');
  return h('tr', { 'data-key': 'node:' + node.id, 'data-node-id': node.id, 'data-tier': node.tier },
    h('td', null, h('span', { className: 'mono', text: node.id }), draining ? h('span', { className: 'badge', text: 'draining' }) : null,
      h('div', { className: 'muted mono', text: node.address })),
    h('td', null, bar(cpu, s ? fmtPct(cpu) : 'no report', s ? 'CPU ' + fmtPct(cpu) + ' of a core' : 'no report yet')),
    h('td', null, bar(net, s ? fmtPct(net) + ' · ' + fmtRate(s.bytesInPerSec + s.bytesOutPerSec) : 'no report',
      s ? 'in ' + fmtRate(s.bytesInPerSec) + ', out ' + fmtRate(s.bytesOutPerSec) + ' of ' + fmtRate(node.bandwidth) : 'no report yet'),
      h('span', { className: 'muted', text: 'of ' + fmtRate(node.bandwidth) })),
    h('td', null, bar(cap, fmtPct(cap) + ' of ' + fmtBytes(node.capacity),
      'reserved ' + fmtBytes(node.reserved) + ', used ' + (s ? fmtBytes(used) : '–') + ' of ' + fmtBytes(node.capacity)),
      h('span', { className: 'muted', text: 'reserved ' + fmtBytes(node.reserved) + ' · used ' + (s ? fmtBytes(used) : '–') })),
    h('td', { className: 'num' }, s ? fmtNum(s.opsPerSec, 0) : '–'),
    h('td', { className: 'num' }, s ? fmtUs(s.latencyP50Us) + ' / ' + fmtUs(s.latencyP99Us) : '–'),
    h('td', { className: 'num' }, String(jobsOnNode)),
    h('td', null, drain));
}

function renderNodes() {
  var table = $('#nodes');
  var fresh = [];
  for (var i = 0; i < TIERS.length; i++) {
    var tier = TIERS[i];
    var nodes = state.nodes.filter(function (n) { return n.tier === tier; });
    nodes.sort(function (a, b) { return a.registeredAt - b.registeredAt || (a.id < b.id ? -1 : 1); });
    var capacity = 0, reserved = 0, used = 0;
    nodes.forEach(function (n) { capacity += n.capacity; reserved += n.reserved; used += n.stats ? n.stats.used : 0; });
    var head = h('tr', { 'data-key': 'head' }, h('th', { className: 'tier', colspan: 8 },
      tier.toUpperCase() + ' — ' + nodes.length + (nodes.length === 1 ? ' node' : ' nodes') +
      (nodes.length ? ' · ' + fmtBytes(capacity) + ' · reserved ' + fmtBytes(reserved) + ' · used ' + fmtBytes(used) : '')));
    var body = h('tbody', { 'data-key': 'tier:' + tier, 'data-tier': tier }, head);
    if (nodes.length === 0) body.append(h('tr', { 'data-key': 'empty' }, h('td', { className: 'empty', colspan: 8, text: 'no ' + tier + ' nodes' })));
    nodes.forEach(function (n) { body.append(nodeRow(n)); });
    fresh.push(body);
  }
  syncChildren(table, [table.tHead].concat(fresh));
}

// ---- jobs -------------------------------------------------------------------------------------------------

function jobRow(job) {
  var now = serverNow();
  var usage = job.usage || 0;
  var fraction = job.reservation > 0 ? usage / job.reservation : null;
  var cost = job.cost || { usd: 0, byteSeconds: {} };
  var costTitle = Object.keys(cost.byteSeconds || {}).map(function (tier) {
    return tier + ': ' + fmtNum(cost.byteSeconds[tier] / 1e9 / 3600, 4) + ' GB·h';
  }).join(', ') || 'nothing reserved yet';
  var nodeText = (job.nodes || []).map(function (n) { return n.id + ' (' + n.address + ', weight ' + fmtNum(n.weight, 2) + ')'; }).join('\n');
  var busy = pendingDeregistrations.has(job.id);
  var button = h('button', { type: 'button', 'data-action': 'deregister', disabled: busy, title: 'delete all its data and free its reservation' },
    busy ? 'deregistering…' : 'deregister');
  var lease = Date.parse(job.leaseExpiresAt) - now;
  return h('tr', { 'data-key': 'job:' + job.id, 'data-job-id': job.id },
    h('td', null, h('strong', { text: job.name }), h('div', { className: 'muted mono', text: job.id })),
    h('td', null, h('span', { text: job.tier }), h('div', { className: 'muted', text: job.reason })),
    h('td', null, bar(fraction, fmtBytes(usage) + ' of ' + fmtBytes(job.reservation), 'usage ' + fmtBytes(usage) + ' against a reservation of ' + fmtBytes(job.reservation))),
    h('td', { className: 'num', title: nodeText || 'not placed yet' }, String((job.nodes || []).length) + ' · epoch ' + job.epoch),
    h('td', { className: 'num' }, fmtDuration(now - Date.parse(job.createdAt))),
    h('td', { className: 'num' }, isFinite(lease) ? (lease >= 0 ? 'in ' + fmtDuration(lease) : 'lapsed') : '–'),
    h('td', { className: 'num', title: costTitle }, fmtUsd(cost.usd)),
    h('td', null, button));
}

function renderJobs() {
  var now = Date.now();
  deregistered.forEach(function (at, id) { if (now - at > 10000) deregistered.delete(id); });
  var jobs = state.jobs.filter(function (j) { return !deregistered.has(j.id); });
  jobs.sort(function (a, b) { return Date.parse(a.createdAt) - Date.parse(b.createdAt) || (a.id < b.id ? -1 : 1); });
  var body = $('#jobs tbody');
  var rows = jobs.map(jobRow);
  if (rows.length === 0) rows = [h('tr', { 'data-key': 'empty' }, h('td', { className: 'empty', colspan: 8, text: 'no jobs' }))];
  syncChildren(body, rows);
  $('#job-count').textContent = '(' + jobs.length + ')';
}

// ---- summary ----------------------------------------------------------------------------------------------

function renderSummary() {
  var totals = state.totals || {};
  var capacity = 0, reserved = 0;
  state.nodes.forEach(function (n) { capacity += n.capacity; reserved += n.reserved; });
  var cost = 0;
  state.jobs.forEach(function (j) { cost += j.cost ? j.cost.usd : 0; });
  var items = [
    [String(state.nodes.length), 'nodes'],
    [String(state.jobs.length), 'jobs'],
    [fmtBytes(reserved) + ' / ' + fmtBytes(capacity), 'reserved / capacity'],
    [fmtNum(totals.opsPerSec, 0), 'ops/s'],
    [fmtRate(totals.bytesPerSec || 0), 'throughput'],
    [fmtUs(totals.latencyP50Us) + ' / ' + fmtUs(totals.latencyP99Us), 'op latency p50 / p99'],
    [fmtUsd(cost), 'cost of current jobs so far'],
  ];
  syncChildren($('#summary'), items.map(function (item) {
    return h('div', null, h('b', { text: item[0] }), h('span', { text: item[1] }));
  }));
  $('#updated').textContent = state.t ? 'updated ' + fmtClock(state.t) : 'waiting for data';
}

// ---- charts -----------------------------------------------------------------------------------------------

var charts = null;

function makeCharts() {
  if (typeof Chart === 'undefined') {
    document.querySelectorAll('.chart').forEach(function (box) {
      box.replaceChildren(h('p', { className: 'empty', text: 'charts unavailable: /assets/chart.umd.min.js did not load' }));
    });
    return null;
  }
  var xAxis = {
    type: 'linear',
    ticks: { maxTicksLimit: 6, callback: function (value) { return fmtClock(value); } },
  };
  var common = {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    parsing: false,
    normalized: true,
    interaction: { mode: 'nearest', axis: 'x', intersect: false },
    plugins: {
      legend: { position: 'bottom' },
      tooltip: { callbacks: { title: function (items) { return items.length ? fmtClock(items[0].parsed.x) : ''; } } },
    },
  };
  function line(label, color, axis) {
    return { label: label, data: [], borderColor: color, backgroundColor: color, borderWidth: 2, pointRadius: 0, tension: 0.2, yAxisID: axis, spanGaps: false };
  }
  var throughput = new Chart($('#throughput-chart'), {
    type: 'line',
    data: { datasets: [line('ops/s', '#1c64d1', 'ops'), line('MB/s', '#2f9e44', 'mb')] },
    options: Object.assign({}, common, {
      scales: {
        x: xAxis,
        ops: { type: 'linear', position: 'left', beginAtZero: true, title: { display: true, text: 'ops/s' } },
        mb: { type: 'linear', position: 'right', beginAtZero: true, title: { display: true, text: 'MB/s' }, grid: { drawOnChartArea: false } },
      },
    }),
  });
  var latency = new Chart($('#latency-chart'), {
    type: 'line',
    data: { datasets: [line('p50 µs', '#1c64d1', 'us'), line('p99 µs', '#d9480f', 'us')] },
    options: Object.assign({}, common, {
      scales: { x: xAxis, us: { type: 'linear', position: 'left', beginAtZero: true, title: { display: true, text: 'µs' } } },
    }),
  });
  return { throughput: throughput, latency: latency };
}

/** Adds one point per snapshot and drops those older than five minutes; the charts are updated, not rebuilt. */
function pushPoint(t, totals) {
  if (!charts) return;
  var values = [
    [charts.throughput.data.datasets[0], totals.opsPerSec],
    [charts.throughput.data.datasets[1], totals.bytesPerSec / 1e6],
    [charts.latency.data.datasets[0], totals.latencyP50Us],
    [charts.latency.data.datasets[1], totals.latencyP99Us],
  ];
  values.forEach(function (pair) {
    var data = pair[0].data;
    var last = data[data.length - 1];
    if (last && last.x >= t) return; // a repeated snapshot (reconnect) or clock step back
    data.push({ x: t, y: pair[1] === null || pair[1] === undefined ? null : pair[1] });
    while (data.length && data[0].x < t - WINDOW_MS) data.shift();
  });
  [charts.throughput, charts.latency].forEach(function (chart) {
    chart.options.scales.x.min = t - WINDOW_MS;
    chart.options.scales.x.max = t;
    chart.update('none');
  });
}

// ---- events -----------------------------------------------------------------------------------------------

function addEvents(list) {
  var bySeq = new Map(state.events.map(function (e) { return [e.seq, e]; }));
  list.forEach(function (e) { if (e && typeof e.seq === 'number') bySeq.set(e.seq, e); });
  state.events = Array.from(bySeq.values()).sort(function (a, b) { return b.seq - a.seq; }).slice(0, MAX_EVENTS);
  renderEvents();
}

function renderEvents() {
  var list = $('#events');
  if (state.events.length === 0) {
    syncChildren(list, [h('li', { className: 'empty', text: 'no events yet' })]);
    return;
  }
  syncChildren(list, state.events.map(function (e) {
    var where = [e.tier, e.node].filter(Boolean).join(' · ');
    var details = e.details ? Object.keys(e.details).map(function (k) {
      var v = e.details[k];
      // A scale decision's cpu, network, capacity and utilization are fractions of the band, not sizes.
      var fraction = e.details.utilization !== undefined && /^(utilization|cpu|network|capacity)$/.test(k);
      return k + '=' + (typeof v !== 'number' ? v : fraction ? fmtPct(v) : /bytes|capacity|used|reserved/i.test(k) ? fmtBytes(v) : fmtNum(v, 3));
    }).join(', ') : '';
    return h('li', { 'data-key': 'event:' + e.seq, 'data-seq': e.seq, 'data-kind': e.kind },
      h('span', { className: 'muted', title: e.at, text: fmtClock(Date.parse(e.at)) }),
      h('span', { className: 'kind ' + e.kind, text: e.kind }),
      h('span', null, where ? h('span', { className: 'mono', text: where + ': ' }) : null, e.reason,
        details ? h('div', { className: 'muted', text: details }) : null));
  }));
}

// ---- the stream -------------------------------------------------------------------------------------------
// Server-sent events read with fetch, not EventSource: EventSource cannot send the token in a header, and cannot
// tell a refused token (401) from a dropped connection.

function setConnection(text, kind, title) {
  var badge = $('#connection');
  badge.textContent = text;
  badge.className = kind;
  badge.title = title || '';
}

var streamAbort = null;
var retryTimer = null;
var retryMs = 1000;

var handlers = {
  snapshot: function (snapshot) {
    state.t = snapshot.t;
    state.nodes = snapshot.nodes || [];
    state.jobs = snapshot.jobs || [];
    state.totals = snapshot.totals || null;
    state.lastSnapshotAt = Date.now();
    setConnection('live', 'live');
    renderSummary();
    renderNodes();
    renderJobs();
    if (snapshot.totals) pushPoint(snapshot.t, snapshot.totals);
  },
  history: function (list) {
    if (Array.isArray(list)) list.forEach(function (point) { pushPoint(point.t, point.totals); });
  },
  events: function (list) {
    if (Array.isArray(list)) addEvents(list);
  },
  'cluster-event': function (e) {
    if (e) addEvents([e]);
  },
};

/** One event block (the lines between blank lines): its type and its data, parsed as JSON. */
function dispatch(block) {
  var type = 'message';
  var data = [];
  block.split('\n').forEach(function (line) {
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  });
  var handler = Object.prototype.hasOwnProperty.call(handlers, type) ? handlers[type] : null;
  if (!handler || data.length === 0) return;
  var parsed;
  try { parsed = JSON.parse(data.join('\n')); } catch (e) { console.error('bad event from /api/stream', type, e); return; }
  if (parsed !== null) handler(parsed);
}

/** Reads the stream until it ends or fails (throws), or resolves 'unauthorized' when the token is refused. */
async function readStream(token, signal) {
  var response = await fetch('/api/stream', { headers: { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' }, cache: 'no-store', signal: signal });
  if (response.status === 401) return 'unauthorized';
  if (!response.ok) {
    var text = await response.text();
    var parsed = null;
    try { parsed = JSON.parse(text); } catch (e) { parsed = null; }
    throw new Error(response.status + ' ' + (parsed && parsed.message ? parsed.message : response.statusText));
  }
  retryMs = 1000;
  setConnection('live', 'live');
  var reader = response.body.getReader();
  var decoder = new TextDecoder();
  var buffer = '';
  var from = 0;
  for (;;) {
    var chunk = await reader.read();
    if (chunk.done) throw new Error('the console ended the stream');
    buffer += decoder.decode(chunk.value, { stream: true });
    var end;
    while ((end = buffer.indexOf('\n\n', from)) >= 0) {
      dispatch(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      from = 0;
    }
    from = Math.max(0, buffer.length - 1);
  }
}

function stopStream() {
  if (retryTimer !== null) clearTimeout(retryTimer);
  retryTimer = null;
  if (streamAbort !== null) streamAbort.abort();
  streamAbort = null;
}

/** Opens the stream with the access token; reconnects after a failure (1 s, doubling to 15 s); asks on a 401. */
function connect() {
  stopStream();
  if (!accessToken) {
    askForToken('This console needs a token: the viewer token (it reads) or the admin token. satchel up prints a link with it; cluster.json holds both (viewerToken, adminToken).');
    return;
  }
  document.body.classList.remove('locked');
  var abort = new AbortController();
  streamAbort = abort;
  setConnection('connecting…', '');
  // readStream only returns when the token is refused; a stream that ends or fails throws.
  readStream(accessToken, abort.signal).then(function () {
    if (abort.signal.aborted) return;
    setAccessToken('');
    askForToken('The console refused that token (401). Enter the viewer token or the admin token.');
  }, function (error) {
    if (abort.signal.aborted) return;
    streamAbort = null;
    setConnection('reconnecting…', 'down', error.message);
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 15000);
  });
}

// ---- start ------------------------------------------------------------------------------------------------

var tokenInput = $('input[name=admin-token]');
statusLine = $('#status');
// Pages before these kept the admin token in localStorage, past the browser's session: no longer.
try { localStorage.removeItem(ADMIN_KEY); } catch (e) { /* nothing kept */ }
accessToken = loadSession(ACCESS_KEY);
tokenInput.value = loadSession(ADMIN_KEY);
takeTokenFromFragment();
window.addEventListener('hashchange', function () { if (takeTokenFromFragment()) connect(); });
tokenInput.addEventListener('input', function () { saveToken(currentToken()); });
$('#login').addEventListener('submit', onLogin);
$('#forget-token').addEventListener('click', forgetTokens);
$('#add-node').addEventListener('submit', addNode);
$('#register-job').addEventListener('submit', registerJob);
document.addEventListener('click', onClick);
renderSummary();
renderNodes();
renderJobs();
renderEvents();
charts = makeCharts();
connect();
// Only a display check (no request): flags a stream that has gone quiet.
setInterval(function () {
  if (state.lastSnapshotAt && Date.now() - state.lastSnapshotAt > 5000) setConnection('no update for ' + fmtDuration(Date.now() - state.lastSnapshotAt), 'down');
}, 1000);
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Satchel console</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>Satchel</h1>
  <span id="connection">connecting…</span>
  <span id="updated" class="muted"></span>
  <label>admin token <input name="admin-token" type="password" autocomplete="off" spellcheck="false" placeholder="needed for the buttons"></label>
  <button type="button" id="forget-token" data-action="forget-token" title="forget the tokens this tab holds">forget tokens</button>
  <p id="status" role="status" aria-live="polite"></p>
</header>
<main>
  <section id="login-section" class="login" aria-labelledby="login-title">
    <h2 id="login-title">Token</h2>
    <form id="login">
      <p id="login-reason"></p>
      <label>token <input name="token" type="password" autocomplete="off" spellcheck="false" size="50" required></label>
      <button type="submit" data-action="login">open the console</button>
    </form>
  </section>
  <section aria-labelledby="summary-title">
    <h2 id="summary-title">Cluster at a glance</h2>
    <div id="summary" class="summary"></div>
  </section>
  <section aria-labelledby="charts-title">
    <h2 id="charts-title">Last 5 minutes</h2>
    <div class="charts">
      <div><div class="muted">Throughput (ops/s, MB/s)</div><div class="chart"><canvas id="throughput-chart" aria-label="throughput over the last 5 minutes" role="img"></canvas></div></div>
      <div><div class="muted">Op latency (p50, p99)</div><div class="chart"><canvas id="latency-chart" aria-label="op latency over the last 5 minutes" role="img"></canvas></div></div>
    </div>
  </section>
  <section aria-labelledby="nodes-title">
    <h2 id="nodes-title">Nodes</h2>
    <table id="nodes">
      <thead><tr><th>node</th><th>CPU</th><th>network</th><th>capacity (max of reserved, used)</th><th>ops/s</th><th>p50 / p99</th><th>jobs</th><th></th></tr></thead>
    </table>
    <form id="add-node">
      <label>add a node on tier <select name="tier"><option value="dram">DRAM</option><option value="ssd" selected>SSD</option><option value="hdd">HDD</option></select></label>
      <button type="submit" data-action="add-node">add node</button>
      <span class="muted">needs a provisioner (satchel up, Kubernetes)</span>
    </form>
  </section>
  <section aria-labelledby="jobs-title">
    <h2 id="jobs-title">Jobs <span id="job-count" class="muted"></span></h2>
    <table id="jobs">
      <thead><tr><th>job</th><th>tier and why</th><th>usage of reservation</th><th>nodes</th><th>age</th><th>lease</th><th>cost so far</th><th></th></tr></thead>
      <tbody></tbody>
    </table>
    <details>
      <summary>register a job</summary>
      <form id="register-job">
        <input name="job-name" placeholder="name" required maxlength="200">
        <input name="job-hints" placeholder='hints, JSON: {"latencySensitive": true}' size="40">
        <button type="submit" data-action="register-job">register</button>
        <input name="job-ticket" readonly hidden size="60" aria-label="ticket of the registered job" class="mono">
        <span class="muted">this page does not renew its lease: it is collected when the lease lapses unless a driver renews it</span>
      </form>
    </details>
  </section>
  <section aria-labelledby="events-title">
    <h2 id="events-title">Autoscaler and cluster events</h2>
    <ol id="events"></ol>
  </section>
</main>
<script src="/assets/chart.umd.min.js"></script>
<script>${SCRIPT}</script>
</body>
</html>
`;

/** The console page: self-contained HTML (inline CSS and script); Chart.js is loaded from /assets. */
export function consolePage(): string {
  return PAGE;
}
