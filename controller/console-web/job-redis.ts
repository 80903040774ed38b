/**
 * The job view's "Redis clients" part (`#job-redis`): where Redis clients of the job connect (its nodes' RESP
 * front doors), the form of its URL, and — for the admin — the URL itself with a fresh data token
 * (`button[data-action=redis-url]` asks `POST /api/jobs/:id/redis-url`; the URL lands in
 * `input[name=redis-url]`). The controller keeps no token it handed out, so it signs a new one each time, and the
 * events list records that it did. Every reader sees the addresses; only the admin token gets a token.
 */
import { adminCall } from './api.ts';
import { h } from './dom.ts';
import { state } from './state.ts';
import { setStatus } from './status.ts';
import type { JobRow, RedisCredentials } from './types.ts';

/** The URL last fetched, for the open job only (closing or switching jobs forgets it). */
let shown: { jobId: string; credentials: RedisCredentials } | null = null;
let fetching: string | null = null;

/** Forgets the URL shown (the job view closed or shows another job). */
export function forgetRedisUrl(): void {
  shown = null;
}

/** The part's rows, from the job's details (its `redis` field); "reading…" until they arrive. */
export function redisRows(job: JobRow): HTMLElement[] {
  const redis = state.details.get(job.id)?.redis;
  if (redis === undefined) return [h('p', { 'data-key': 'reading', className: 'muted', text: 'reading…' })];
  if (redis.url === null)
    return [
      h('p', {
        'data-key': 'none',
        'data-field': 'redis-none',
        text: 'None of its nodes has a RESP front door (storage nodes started without --resp-port): Redis clients cannot reach it.',
      }),
    ];
  const doors = redis.nodes.map((n) => `${n.id} ${n.resp ?? '(none)'}`).join(' · ');
  const rows: HTMLElement[] = [
    h(
      'p',
      { 'data-key': 'form' },
      'URL ',
      h('code', { className: 'mono', 'data-field': 'redis-form', text: redis.url }),
      h('span', {
        className: 'muted',
        text: ` — <token> is a data token of the job: the one in its ticket, or the driver's job.redisUrl whole. A Redis Cluster client (redis-cli -c, redis-py RedisCluster, go-redis, Jedis, ioredis) finds the other nodes from the one it names.${redis.scheme === 'rediss' ? ' TLS: clients check the cluster CA (redis-cli --tls --cacert ca.pem).' : ''}`,
      }),
    ),
    h('p', { 'data-key': 'doors' }, 'RESP front doors ', h('span', { className: 'mono', 'data-field': 'redis-nodes', text: doors })),
  ];
  const mine = shown?.jobId === job.id ? shown.credentials : null;
  rows.push(
    h(
      'p',
      { 'data-key': 'reveal' },
      h('button', {
        type: 'button',
        'data-action': 'redis-url',
        'data-job': job.id,
        disabled: fetching === job.id,
        title: 'needs the admin token: signs a data token of the job (an event records it)',
        text: mine === null ? 'show the URL with a token' : 'sign another token',
      }),
      mine === null
        ? null
        : h('input', {
            name: 'redis-url',
            readonly: true,
            className: 'mono',
            size: 70,
            'aria-label': 'Redis URL of the job',
            value: mine.url,
          }),
      mine === null ? null : h('span', { className: 'muted', text: ` its token works until ${new Date(mine.expiresAt).toLocaleString()}` }),
    ),
  );
  return rows;
}

/** Asks the console for the URL with a token (admin token), then `changed` redraws the view. */
export function fetchRedisUrl(jobId: string, changed: () => void): void {
  if (fetching !== null) return;
  fetching = jobId;
  changed();
  adminCall<RedisCredentials>('POST', `/api/jobs/${encodeURIComponent(jobId)}/redis-url`).then(
    (credentials) => {
      fetching = null;
      if (credentials !== null && state.openJob === jobId) shown = { jobId, credentials };
      setStatus(`Redis URL of job ${jobId}: a fresh data token, in the job's view`, 'ok');
      changed();
    },
    (error: Error) => {
      fetching = null;
      setStatus(`Redis URL of ${jobId} failed: ${error.message}`, 'error');
      changed();
    },
  );
}
