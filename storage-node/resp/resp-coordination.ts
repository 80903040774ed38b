/**
 * The native client's `waitFor` and `watch` in Redis's shapes, parked in the node's coordination.ts like the frame
 * protocol's WAIT and WATCH (so a native PUT wakes a RESP reader and the reverse):
 *
 * - `WAITFOR key timeout`: a blocking read, BLPOP's shape for one key. The value once the key exists (at once if it
 *   does), nil when `timeout` seconds pass (decimals allowed; 0 waits as long as the node allows, an hour). The
 *   connection's later commands wait behind it, as behind any blocking command. When the job's placement moves
 *   the key to another node the answer is `MOVED`, and a cluster client asks the new owner.
 * - `PSUBSCRIBE __keyspace@0__:<prefix>*`: Redis's keyspace notifications for the job's keys under a prefix on
 *   this node: `pmessage <pattern> __keyspace@0__:<key> set|del`. As in any Redis Cluster, notifications are each
 *   node's own: subscribe on every node CLUSTER SHARDS lists. Satchel adds two channels every pattern hears:
 *   `__satchel__:placement` (the job's placement changed, the message is its epoch: keys may have moved, subscribe
 *   on the nodes CLUSTER SHARDS lists now) and `__satchel__:job` (`deregistered`, or `moved` off this node: the
 *   subscription has ended).
 */
import {
  COPY_THRESHOLD,
  errorCodeOf,
  Flag,
  keySlotOfBytes,
  MAX_WAIT_MS,
  type RespCommand,
  Status,
  type StatusCode,
  WatchEvent,
} from '../../proto/index.ts';
import { isPromise } from '../client-connection.ts';
import type { StoredEntry } from '../engine.ts';
import type { AnnouncedJob } from '../job-table.ts';
import { OpKind } from '../metrics.ts';
import type { BlockedRead, CommandSpec, RespContext } from './resp-context.ts';
import { respErrorText } from './resp-errors.ts';
import { slotOwner } from './resp-routing.ts';

const KEYSPACE = /^__keyspace@[0*]__:(.*)\*$/s;
/** Glob characters: a prefix pattern ends in its one `*`; anything else would need matching Satchel does not do. */
const GLOB = /[*?[\]\\]/;

/** The key prefix a PSUBSCRIBE pattern watches, or null for a pattern Satchel does not publish to. */
export function keyspacePrefix(pattern: string): string | null {
  const match = KEYSPACE.exec(pattern);
  if (match === null || GLOB.test(match[1]!)) return null;
  return match[1]!;
}

/** WAITFOR key timeout. */
function waitFor(s: RespContext, args: Buffer[], _c: RespCommand, job: AnnouncedJob): void {
  const text = args[2]!.toString('latin1');
  const seconds = text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(seconds)) return s.error('ERR timeout is not a float or out of range');
  if (seconds < 0) return s.error('ERR timeout is negative');
  const ms = seconds === 0 ? MAX_WAIT_MS : Math.min(Math.max(1, Math.round(seconds * 1000)), MAX_WAIT_MS);
  const read: BlockedRead = { id: s.parkedId(), key: args[1]!.toString('utf8'), slot: keySlotOfBytes(args[1]!), deadline: Date.now() + ms };
  const refusal = park(s, job, read);
  if (refusal !== null) s.refuse('FULL', refusal);
}

/**
 * Parks `read`, then looks its key up (in that order: a PUT landing while a disk engine reads still wakes it); a
 * key found answers through coordination.ts like a PUT would. Why it cannot be parked, or null.
 */
function park(s: RespContext, job: AnnouncedJob, read: BlockedRead): string | null {
  const server = s.host;
  const coordination = server.coordination;
  const jobId = s.job!;
  const refusal = coordination.admit(s, read.id, jobId);
  if (refusal !== null) return refusal;
  s.blocked = read;
  s.hold();
  coordination.wait(s, read.id, jobId, read.key, job.epoch, Math.max(1, read.deadline - Date.now()));
  const lookup = server.engine.get(jobId, read.key);
  if (!isPromise(lookup)) found(s, read, lookup);
  else
    lookup.then(
      (entry) => found(s, read, entry),
      () => {
        coordination.abandon(s, read.id);
        if (s.blocked === read) unblock(s, () => s.out.error(respErrorText('UNAVAILABLE', 'storage engine error')));
      },
    );
  return null;
}

function found(s: RespContext, read: BlockedRead, entry: StoredEntry | undefined): void {
  if (entry === undefined || s.blocked !== read || s.socket.destroyed) return;
  // coordination.ts answers with the stored buffer itself: it must not be recycled while it is being sent.
  if (entry.value.length > COPY_THRESHOLD) entry.pinned = true;
  s.host.metrics.bytesOut(entry.value.length);
  s.host.coordination.settleWait(s, read.id, entry.value, entry.flags);
}

/** Ends the blocked read with what `write` encodes, and lets the commands behind it go on. */
function unblock(s: RespContext, write: () => void): void {
  s.blocked = null;
  if (!s.socket.destroyed) {
    const before = s.out.bytesEncoded;
    write();
    s.sentUnasked(before);
  }
  s.resume();
}

/**
 * What coordination.ts answers a parked request with (`push`), as RESP: the blocked read's value, nil or error,
 * or a subscription's event. Requests this connection no longer has are ignored (PUNSUBSCRIBE cancelled them).
 */
export function answerParked(
  s: RespContext,
  status: StatusCode,
  flags: number,
  id: number,
  epoch: number,
  arg: number,
  key: string,
  body: Uint8Array | null,
): void {
  const read = s.blocked;
  if (read !== null && read.id === id) return answerRead(s, read, status, flags, epoch, body);
  const pattern = s.subscriptions.get(id);
  if (pattern === undefined) return;
  const before = s.out.bytesEncoded;
  if ((flags & Flag.EVENT) !== 0) {
    if (arg === WatchEvent.PUT) message(s, pattern, `__keyspace@0__:${key}`, 'set');
    else if (arg === WatchEvent.DELETE) message(s, pattern, `__keyspace@0__:${key}`, 'del');
    else if (arg === WatchEvent.PLACEMENT) message(s, pattern, '__satchel__:placement', String(epoch));
  } else {
    // The watch ended with the job's data on this node: deregistered (NO_SUCH_JOB) or moved away (STALE).
    s.subscriptions.delete(id);
    message(s, pattern, '__satchel__:job', status === Status.NO_SUCH_JOB ? 'deregistered' : 'moved');
  }
  s.sentUnasked(before);
}

function answerRead(s: RespContext, read: BlockedRead, status: StatusCode, flags: number, epoch: number, body: Uint8Array | null): void {
  if (status === Status.OK) {
    if ((flags & Flag.MANIFEST) !== 0)
      return unblock(s, () =>
        s.out.error(
          respErrorText('TOO_LARGE', `${read.key} holds a value stored in blocks by the Satchel client: read it with that client`),
        ),
      );
    return unblock(s, () => s.out.bulk(body));
  }
  if (status === Status.TIMEOUT) return unblock(s, () => s.out.bulk(null));
  // The job's placement changed (no body; dropped() sends one): after the change is applied, the read stays if
  // this node still owns the key, or is sent to the owner now.
  if (status === Status.STALE && body === null) return queueMicrotask(() => reroute(s, read, epoch));
  const text = body === null ? '' : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  unblock(s, () => s.out.error(respErrorText(errorCodeOf(status), text)));
}

function reroute(s: RespContext, read: BlockedRead, epoch: number): void {
  if (s.blocked !== read || s.socket.destroyed) return;
  const job = s.host.jobs.get(s.job!);
  if (job === undefined || job.moved)
    return unblock(s, () => s.out.error(respErrorText('STALE', `the job's placement moved on (epoch ${epoch})`)));
  const owner = slotOwner(job.placement, read.slot);
  if (owner !== null && owner.id !== s.host.options.id && owner.resp !== '')
    return unblock(s, () => s.out.error(`MOVED ${read.slot} ${owner.resp}`));
  s.blocked = null;
  const refusal = park(s, job, read);
  if (refusal !== null) unblock(s, () => s.out.error(respErrorText('FULL', refusal)));
}

/** One keyspace event: a push in RESP3, a 4-element array in RESP2. */
function message(s: RespContext, pattern: string, channel: string, data: string): void {
  const out = s.out;
  if (out.version === 3) out.push(4);
  else out.array(4);
  out.bulk('pmessage');
  out.bulk(pattern);
  out.bulk(channel);
  out.bulk(data);
}

/** A (P)SUBSCRIBE or (P)UNSUBSCRIBE confirmation: the kind, the pattern (null: none) and how many remain. */
function confirmation(s: RespContext, kind: string, pattern: string | null, count: number): void {
  const out = s.out;
  if (out.version === 3) out.push(3);
  else out.array(3);
  out.bulk(kind);
  out.bulk(pattern);
  out.integer(count);
}

function patternId(s: RespContext, pattern: string): number | undefined {
  for (const [id, p] of s.subscriptions) if (p === pattern) return id;
  return undefined;
}

function psubscribe(s: RespContext, args: Buffer[], _c: RespCommand, job: AnnouncedJob): void {
  const patterns = args.slice(1).map((a) => a.toString('utf8'));
  const prefixes: string[] = [];
  for (const pattern of patterns) {
    const prefix = keyspacePrefix(pattern);
    if (prefix === null)
      return s.error(
        `ERR Satchel publishes keyspace events of the job's keys only: PSUBSCRIBE __keyspace@0__:<prefix>* (a prefix, then one *), not ${JSON.stringify(pattern.slice(0, 64))}`,
      );
    prefixes.push(prefix);
  }
  const coordination = s.host.coordination;
  const before = s.out.bytesEncoded;
  for (let i = 0; i < patterns.length; i++) {
    const pattern = patterns[i]!;
    if (patternId(s, pattern) === undefined) {
      const id = s.parkedId();
      const refusal = coordination.admit(s, id, s.job!);
      if (refusal !== null) {
        // The confirmations so far stand; the rest of the patterns are not subscribed.
        s.replied(before);
        return s.refuse('FULL', refusal);
      }
      s.subscriptions.set(id, pattern);
      coordination.watch(s, id, s.job!, prefixes[i]!, job.epoch);
    }
    confirmation(s, 'psubscribe', pattern, s.subscriptions.size);
  }
  s.replied(before);
}

function punsubscribe(s: RespContext, args: Buffer[]): void {
  const patterns = args.length > 1 ? args.slice(1).map((a) => a.toString('utf8')) : [...s.subscriptions.values()];
  const before = s.out.bytesEncoded;
  if (patterns.length === 0) confirmation(s, 'punsubscribe', null, 0);
  for (const pattern of patterns) {
    const id = patternId(s, pattern);
    if (id !== undefined) {
      // Forgotten first: the cancel's own answer finds no subscription and is not sent.
      s.subscriptions.delete(id);
      s.host.coordination.cancel(s, id);
    }
    confirmation(s, 'punsubscribe', pattern, s.subscriptions.size);
  }
  s.replied(before);
}

/** UNSUBSCRIBE: no channel is ever subscribed here, but clients send it when they reset a connection. */
function unsubscribe(s: RespContext, args: Buffer[]): void {
  const before = s.out.bytesEncoded;
  if (args.length === 1) confirmation(s, 'unsubscribe', null, s.subscriptions.size);
  for (const channel of args.slice(1)) confirmation(s, 'unsubscribe', channel.toString('utf8'), s.subscriptions.size);
  s.replied(before);
}

/** The only commands a RESP2 connection with subscriptions may send (Redis's rule: its replies are events). */
export const SUBSCRIBED_COMMANDS = new Set([
  'PSUBSCRIBE',
  'PUNSUBSCRIBE',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'SSUBSCRIBE',
  'SUNSUBSCRIBE',
  'PING',
  'QUIT',
  'RESET',
]);

export const COORDINATION_SPECS: CommandSpec[] = [
  {
    name: 'WAITFOR',
    arity: 3,
    flags: ['readonly', 'blocking'],
    keys: { first: 1, last: 1, step: 1 },
    opKind: OpKind.get,
    summary: 'WAITFOR key timeout: the value once the key exists, nil after timeout seconds (0: an hour).',
    group: 'string',
    run: waitFor,
  },
  {
    name: 'PSUBSCRIBE',
    arity: -2,
    flags: ['pubsub', 'noscript', 'loading', 'stale'],
    needsJob: true,
    opKind: OpKind.other,
    summary: 'PSUBSCRIBE __keyspace@0__:<prefix>*: set and del events of the job’s keys on this node.',
    group: 'pubsub',
    run: psubscribe,
  },
  {
    name: 'PUNSUBSCRIBE',
    arity: -1,
    flags: ['pubsub', 'noscript', 'loading', 'stale'],
    opKind: OpKind.other,
    summary: 'Ends keyspace subscriptions.',
    group: 'pubsub',
    run: punsubscribe,
  },
  {
    name: 'SUBSCRIBE',
    arity: -2,
    flags: ['pubsub', 'noscript', 'loading', 'stale'],
    opKind: OpKind.other,
    summary: 'Not served: keyspace events come by PSUBSCRIBE.',
    group: 'pubsub',
    run: (s) => s.error('ERR Satchel has no channels: PSUBSCRIBE __keyspace@0__:<prefix>* for the job’s keyspace events'),
  },
  {
    name: 'UNSUBSCRIBE',
    arity: -1,
    flags: ['pubsub', 'noscript', 'loading', 'stale'],
    opKind: OpKind.other,
    summary: 'Accepted: no channel is subscribed.',
    group: 'pubsub',
    run: unsubscribe,
  },
];
