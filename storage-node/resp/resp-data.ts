/**
 * The RESP front door's data commands, over the node's engine exactly as the frame protocol's PUT, GET, DELETE,
 * INCR and LIST (session.ts): the same versions (the job's announced epoch), tombstones, capacity, FULL refusals
 * the controller hears of, waiters and watches woken, and buffers recycled. A key written here is read by the
 * native client and the reverse: keys are the same UTF-8 text, values the same bytes, counters the same decimal
 * text. Every command's keys were checked by resp-routing.ts before it runs (valid, one slot, owned here).
 *
 * A job that keeps copies: the key's other copies get each write before it is answered (resp-replicas.ts).
 *
 * Not like Redis: no expiry (EX/PX are refused: data lives as long as the job); MSET is not atomic across keys;
 * SET … GET and GETDEL read, then write, so on a disk tier a write racing them from another connection may land
 * in between; a value the native client stored in blocks (over the job's block size) is not served here.
 */
import { COPY_THRESHOLD, decodeManifest, Flag, keySlot, keySlotOfBytes, type RespCommand, Status } from '../../proto/index.ts';
import { isPromise } from '../client-connection.ts';
import { counterValue } from '../counter-value.ts';
import type { ListPage, PutOutcome, StoredEntry } from '../engine.ts';
import type { AnnouncedJob } from '../job-table.ts';
import type { RespContext } from './resp-context.ts';
import { respFinalErrorText } from './resp-errors.ts';
import { inTurn } from './resp-in-turn.ts';
import { getFromOlder, readHere, withOlderCopy } from './resp-older.ts';
import { copiesHeldFor, keysLostIn, replicateIncrement, replicateWrite } from './resp-replicas.ts';
import { lostInOlder, olderOwner } from './resp-routing.ts';

const BLOCKS = 'stored in blocks by the Satchel client (over the job’s block size): read and write it with that client';

/**
 * A key argument as the engines' text: latin1 when routing found every key ASCII (the same string; ~15 % less
 * JavaScript per GET than decoding UTF-8, `bench resp` profiles 2026-12-04), UTF-8 otherwise.
 */
function keyOf(s: RespContext, arg: Buffer): string {
  return s.keysAscii ? arg.toString('latin1') : arg.toString('utf8');
}

function isManifest(entry: StoredEntry): boolean {
  return (entry.flags & Flag.MANIFEST) !== 0;
}

/**
 * A read the slot's newest owner missed while older generations hold the slot elsewhere (the job grows, drains or
 * restores), unless this node remembers the key deleted. With `fetchHere` (GET) it is answered from their newest
 * copy, fetched by this node (resp-older.ts `getFromOlder`); otherwise, and for an ASKING read an older owner
 * missed, the client is sent on with ASK. True when answered.
 */
function askedElsewhere(s: RespContext, job: AnnouncedJob, keyBytes: Buffer, key: string, fetchHere = false): boolean {
  if (job.placement === null || job.placement.generations.length < 2) return false;
  if (s.host.engine.deletedAt(s.job!, key) !== undefined) return false;
  const slot = keySlotOfBytes(keyBytes);
  // An ASKING read this older owner missed goes on to the generation after its own (resp-routing.ts).
  const older = olderOwner(job.placement, slot, s.host.options.id, s.askingServed);
  if (older === null) return false;
  if (older === 'lost') {
    // Final, not TRYAGAIN: no retry brings the key back.
    s.error(lostText(job, key));
    return true;
  }
  if (!fetchHere || s.askingServed) {
    s.error(`ASK ${slot} ${older.resp}`);
    return true;
  }
  getFromOlder(s, job.placement, job.epoch, key, () => {
    if (lostHere(s, job, key)) return s.error(lostText(job, key));
    const before = s.out.bytesEncoded;
    s.out.bulk(null);
    s.replied(before, Status.NOT_FOUND);
  });
  return true;
}

/**
 * Whether `key`, which this node does not hold, is one whose every copy died (`lostInOlder`) and was not deleted
 * since (a tombstone here): the command answering it as absent would be wrong (EXISTS 0, INCR from 0, SET NX).
 */
function lostHere(s: RespContext, job: AnnouncedJob, key: string): boolean {
  if (job.placement === null || job.placement.generations.length < 2) return false;
  if (s.host.engine.deletedAt(s.job!, key) !== undefined) return false;
  return lostInOlder(job.placement, keySlot(key));
}

function lostText(job: AnnouncedJob, key: string): string {
  return respFinalErrorText(
    'UNAVAILABLE',
    (job.placement?.replicas ?? 1) < 2
      ? `${key} was lost: the node holding it restarted since the job was placed on it, and the job keeps one copy`
      : `every copy of ${key} was lost: its holders restarted before its copies were restored`,
  );
}

/** Replies with a stored value (by reference when large: the pool gets it back once the socket wrote it). */
function replyValue(s: RespContext, entry: StoredEntry): void {
  const server = s.host;
  server.metrics.bytesOut(entry.value.length);
  if (entry.value.length <= COPY_THRESHOLD) return s.out.bulk(entry.value);
  entry.lent = (entry.lent ?? 0) + 1;
  s.out.bulk(entry.value, () => server.sentByReference(entry));
}

export function get(s: RespContext, args: Buffer[], _c: RespCommand, job: AnnouncedJob): void {
  const key = keyOf(s, args[1]!);
  const result = s.host.engine.get(s.job!, key);
  // A DRAM node's answer is at hand: no closure made for it.
  if (!isPromise(result)) return getReply(s, job, args, key, result);
  s.wait(result, (entry) => getReply(s, job, args, key, entry));
}

function getReply(s: RespContext, job: AnnouncedJob, args: Buffer[], key: string, entry: StoredEntry | undefined): void {
  if (entry === undefined) {
    if (askedElsewhere(s, job, args[1]!, key, true)) return;
    const before = s.out.bytesEncoded;
    s.out.bulk(null);
    return s.replied(before, Status.NOT_FOUND);
  }
  if (isManifest(entry)) return s.refuse('TOO_LARGE', `${key} holds a value of ${manifestSize(entry)} bytes ${BLOCKS}`);
  const before = s.out.bytesEncoded;
  replyValue(s, entry);
  s.replied(before);
}

function manifestSize(entry: StoredEntry): number {
  try {
    return decodeManifest(entry.value).size;
  } catch {
    return 0;
  }
}

/** The value argument as a buffer the engine may keep: an assembled one as it is, a view of a read chunk copied. */
function ownedValue(s: RespContext, command: RespCommand, index: number): Buffer {
  const value = command.args[index]!;
  if (command.owned(index)) return value;
  // Neither zero-filled nor cut from Node's shared pool (which one small stored value would keep alive whole): a
  // buffer of its own, one a replaced value of the size left when there is one (ValuePool.takeSmall).
  const copy = s.host.pool.takeSmall(value.length) ?? Buffer.allocUnsafeSlow(value.length);
  value.copy(copy);
  return copy;
}

interface SetOptions {
  nx: boolean;
  xx: boolean;
  get: boolean;
}

/** A SET without options (the usual one): one object for all of them. */
const PLAIN: Readonly<SetOptions> = { nx: false, xx: false, get: false };

/** SET's options, or the error text. */
function setOptions(args: Buffer[]): SetOptions | string {
  if (args.length === 3) return PLAIN;
  const options = { nx: false, xx: false, get: false };
  for (let i = 3; i < args.length; i++) {
    const option = args[i]!.toString('latin1').toUpperCase();
    if (option === 'NX' && !options.xx) options.nx = true;
    else if (option === 'XX' && !options.nx) options.xx = true;
    else if (option === 'GET') options.get = true;
    else if (option === 'KEEPTTL')
      continue; // no key has a TTL to keep
    else if (option === 'EX' || option === 'PX' || option === 'EXAT' || option === 'PXAT')
      return 'ERR Satchel keys do not expire: they live as long as their job (drop the EX/PX option) [BAD_REQUEST]';
    else return 'ERR syntax error';
  }
  return options;
}

/**
 * Writes `value` at `key` as one step under the key (the engine's `update`, as INCR): NX and XX decided on what is
 * there, and a value the native client stored in blocks is never overwritten from here (its blocks would be left
 * behind). Calls `done` with true when stored, false when NX/XX left it alone; answers refusals itself.
 */
function store(s: RespContext, job: AnnouncedJob, key: string, value: Buffer, options: SetOptions, done: (stored: boolean) => void): void {
  const server = s.host;
  const jobId = s.job!;
  if (value.length > server.maxValueBytes)
    return s.refuse('TOO_LARGE', `value of ${value.length} bytes exceeds the node's limit of ${server.maxValueBytes}`);
  server.metrics.bytesIn(value.length);
  let skipped = false;
  let blocks = false;
  let lost = false;
  const compute = (old: StoredEntry | undefined): Buffer | { refuse: string } => {
    if (old !== undefined && isManifest(old)) {
      blocks = true;
      return { refuse: BLOCKS };
    }
    // A plain SET overwrites whatever was there; NX, XX and GET depend on it.
    if (old === undefined && (options.nx || options.xx || options.get) && lostHere(s, job, key)) {
      lost = true;
      return { refuse: 'lost' };
    }
    if ((options.nx && old !== undefined) || (options.xx && old === undefined)) {
      skipped = true;
      return { refuse: 'condition not met' };
    }
    return value;
  };
  const epoch = job.epoch;
  s.wait(server.engine.update(jobId, key, compute, epoch), (outcome: PutOutcome) => {
    if (!outcome.ok) {
      if (skipped) return done(false);
      if (lost) return s.error(lostText(job, key));
      if (blocks) return s.refuse('BAD_REQUEST', `${key} holds a value ${BLOCKS}`);
      if (outcome.reason === 'FULL') server.fullRefused(jobId);
      return s.refuse(outcome.reason, outcome.message);
    }
    if (server.coordination.active > 0) server.coordination.stored(jobId, key, value, 0, epoch, true);
    const replaced = outcome.replaced;
    if (job.replicated) {
      // The key's other copies first (resp-replicas.ts); the old value stays ours until answered (SET … GET).
      return replicateWrite(s, job, key, value, epoch, outcome.seq, () => {
        done(true);
        if (replaced !== undefined) server.retire(replaced);
      });
    }
    done(true);
    // After `done`: SET … GET answers with the old value, which is lent (a large one) or copied (a small one)
    // before its buffer goes back to the pool.
    if (replaced !== undefined) server.retire(replaced);
  });
}

export function set(s: RespContext, args: Buffer[], command: RespCommand, job: AnnouncedJob): void {
  const options = setOptions(args);
  if (typeof options === 'string') return s.error(options);
  const key = keyOf(s, args[1]!);
  const value = ownedValue(s, command, 2);
  const write = (old: StoredEntry | undefined) =>
    store(s, job, key, value, options, (stored) => {
      const before = s.out.bytesEncoded;
      if (options.get) {
        if (old === undefined) s.out.bulk(null);
        else replyValue(s, old);
      } else if (stored) s.out.simple('OK');
      else s.out.bulk(null);
      s.replied(before);
    });
  if (!options.nx && !options.xx && !options.get) return write(undefined);
  // NX, XX and GET depend on what is there, which may be in an older generation (resp-older.ts).
  if (!options.get) return withOlderCopy(s, job, key, () => write(undefined));
  // SET … GET: the old value first (a disk engine hands `update` no large value).
  readHere(s, job, key, (old) => {
    if (old !== undefined && isManifest(old)) return s.refuse('BAD_REQUEST', `${key} holds a value ${BLOCKS}`);
    write(old);
  });
}

/** MSET: every key (one slot) written in turn; not atomic across them. */
export function mset(s: RespContext, args: Buffer[], command: RespCommand, job: AnnouncedJob): void {
  if (args.length % 2 === 0) return s.error("ERR wrong number of arguments for 'mset' command");
  const options = { nx: false, xx: false, get: false };
  inTurn(
    1,
    args.length,
    2,
    (i, done) => store(s, job, keyOf(s, args[i]!), ownedValue(s, command, i + 1), options, done),
    () => {
      const before = s.out.bytesEncoded;
      s.out.simple('OK');
      s.replied(before);
    },
  );
}

/** MGET: an array of values, nil for a missing key, an error element for one stored in blocks or lost. */
export function mget(s: RespContext, args: Buffer[], _c: RespCommand, job: AnnouncedJob): void {
  const entries: (StoredEntry | undefined)[] = [];
  const step = (i: number, done: () => void) => {
    const key = keyOf(s, args[i]!);
    // No ASK for one element: a key in an older generation is fetched here first (resp-older.ts).
    readHere(s, job, key, (entry) => {
      entries.push(entry);
      done();
    });
  };
  inTurn(1, args.length, 1, step, () => {
    const before = s.out.bytesEncoded;
    s.out.array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      if (entry === undefined) {
        const key = keyOf(s, args[i + 1]!);
        if (lostHere(s, job, key)) s.out.error(lostText(job, key));
        else s.out.bulk(null);
      } else if (isManifest(entry)) s.out.error(`ERR value ${BLOCKS} [TOO_LARGE]`);
      else replyValue(s, entry);
    }
    s.replied(before);
  });
}

/**
 * Deletes one key (after checking it holds no value in blocks, whose blocks would stay behind) and calls `then`
 * with what was there. Answers refusals itself.
 */
function deleteOne(
  s: RespContext,
  job: AnnouncedJob,
  key: string,
  then: (old: StoredEntry | undefined, read: StoredEntry | undefined) => void,
): void {
  const server = s.host;
  const jobId = s.job!;
  // A key in an older generation is fetched first, so the delete leaves a tombstone over it here (before, DEL
  // answered 0 and the next GET's ASK found the value again: resp-older.ts).
  readHere(s, job, key, (entry) => {
    if (entry === undefined) return then(undefined, undefined);
    if (isManifest(entry)) return s.refuse('BAD_REQUEST', `${key} holds a value ${BLOCKS}`);
    const epoch = job.epoch;
    s.wait(server.engine.delete(jobId, key, epoch, 0, server.jobs.keepsTombstones(job)), (outcome) => {
      if (!outcome.ok) return s.refuse(outcome.reason, outcome.message);
      if (outcome.old !== undefined && server.coordination.active > 0) server.coordination.deleted(jobId, key, epoch);
      // `read` has the value even where the engine's `old` does not (a disk tier's large values).
      const answer = () => then(outcome.old, outcome.old === undefined ? undefined : entry);
      if (outcome.skipped === true) return answer();
      replicateWrite(s, job, key, null, epoch, outcome.seq, answer);
    });
  });
}

/** DEL / UNLINK: how many of the keys existed. */
export function del(s: RespContext, args: Buffer[], _c: RespCommand, job: AnnouncedJob): void {
  let deleted = 0;
  const step = (i: number, done: () => void) =>
    deleteOne(s, job, keyOf(s, args[i]!), (old) => {
      if (old !== undefined) {
        deleted++;
        s.host.retire(old);
      }
      done();
    });
  inTurn(1, args.length, 1, step, () => {
    const before = s.out.bytesEncoded;
    s.out.integer(deleted);
    s.replied(before);
  });
}

/** GETDEL: the value, and the key deleted (read, then write: see the top of the file). */
export function getdel(s: RespContext, args: Buffer[], _c: RespCommand, job: AnnouncedJob): void {
  const key = keyOf(s, args[1]!);
  deleteOne(s, job, key, (old, read) => {
    if (old === undefined && askedElsewhere(s, job, args[1]!, key)) return;
    const before = s.out.bytesEncoded;
    if (old === undefined || read === undefined) s.out.bulk(null);
    else {
      s.host.metrics.bytesOut(read.value.length);
      // Sent by copy: the deleted entry's buffer goes back to the pool now.
      s.out.bulk(Buffer.from(read.value));
      s.host.retire(old);
    }
    s.replied(before, old === undefined ? Status.NOT_FOUND : Status.OK);
  });
}

/** EXISTS: how many of the keys (repeats counted) exist. */
export function exists(s: RespContext, args: Buffer[], _c: RespCommand, job: AnnouncedJob): void {
  let count = 0;
  const step = (i: number, done: () => void) => {
    const key = keyOf(s, args[i]!);
    readHere(s, job, key, (entry) => {
      if (entry === undefined && lostHere(s, job, key)) return s.error(lostText(job, key));
      if (entry !== undefined) count++;
      done();
    });
  };
  inTurn(1, args.length, 1, step, () => {
    const before = s.out.bytesEncoded;
    s.out.integer(count);
    s.replied(before);
  });
}

export function strlen(s: RespContext, args: Buffer[], _c: RespCommand, job: AnnouncedJob): void {
  const key = keyOf(s, args[1]!);
  readHere(s, job, key, (entry) => {
    if (entry === undefined && lostHere(s, job, key)) return s.error(lostText(job, key));
    const before = s.out.bytesEncoded;
    s.out.integer(entry === undefined ? 0 : isManifest(entry) ? manifestSize(entry) : entry.value.length);
    s.replied(before);
  });
}

export function type(s: RespContext, args: Buffer[], _c: RespCommand, job: AnnouncedJob): void {
  const key = keyOf(s, args[1]!);
  readHere(s, job, key, (entry) => {
    if (entry === undefined && lostHere(s, job, key)) return s.error(lostText(job, key));
    const before = s.out.bytesEncoded;
    s.out.simple(entry === undefined ? 'none' : 'string');
    s.replied(before);
  });
}

const INTEGER = /^-?(0|[1-9]\d{0,15})$/;

/** INCR, INCRBY, DECR, DECRBY: the counter the native `incr` keeps (decimal text of a safe integer). */
export function increment(sign: 1 | -1, byArg: boolean) {
  return (s: RespContext, args: Buffer[], _c: RespCommand, job: AnnouncedJob): void => {
    let by = 1;
    if (byArg) {
      const text = args[2]!.toString('latin1');
      by = INTEGER.test(text) ? Number(text) : Number.NaN;
      if (!Number.isSafeInteger(by)) return s.error('ERR value is not an integer or out of range');
    }
    by *= sign;
    const server = s.host;
    const jobId = s.job!;
    const key = keyOf(s, args[1]!);
    let total = 0;
    let stored: Buffer | null = null;
    let notCounter = false;
    let lost = false;
    const compute = (old: StoredEntry | undefined): Buffer | { refuse: string } => {
      // A counter whose every copy died does not start again from 0 (the native client's incr refuses it too).
      if (old === undefined && lostHere(s, job, key)) {
        lost = true;
        return { refuse: 'lost' };
      }
      const current = old === undefined ? 0 : counterValue(old);
      if (current === null || !Number.isSafeInteger(current + by)) {
        notCounter = current === null;
        return { refuse: 'not a counter' };
      }
      total = current + by;
      return (stored = Buffer.from(String(total)));
    };
    const answer = (outcome: PutOutcome, epoch: number): void => {
      if (!outcome.ok) {
        if (lost) return s.error(lostText(job, key));
        if (outcome.reason === 'BAD_REQUEST')
          return s.error(notCounter ? 'ERR value is not an integer or out of range' : 'ERR increment or decrement would overflow');
        if (outcome.reason === 'FULL') server.fullRefused(jobId);
        return s.refuse(outcome.reason, outcome.message);
      }
      if (server.coordination.active > 0 && stored !== null) server.coordination.stored(jobId, key, stored, 0, epoch, true);
      if (outcome.replaced !== undefined) server.retire(outcome.replaced);
      replicateIncrement(s, job, key, total, epoch, outcome.seq, () => {
        const before = s.out.bytesEncoded;
        s.out.integer(total);
        s.replied(before);
      });
    };
    // A counter in an older generation is fetched first: before, INCR started it again from 0 (resp-older.ts).
    withOlderCopy(s, job, key, () => {
      const epoch = job.epoch;
      s.wait(server.engine.update(jobId, key, compute, epoch), (outcome: PutOutcome) => answer(outcome, epoch));
    });
  };
}

const MAX_SCAN_COUNT = 1000;
const MAX_CURSORS = 1024;

/**
 * SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: the job's keys on this node in key order, a page per call. A
 * cursor is a number standing for the last key returned (kept per connection, at most 1,024), so keys written or
 * deleted meanwhile do not upset it; a key is returned at most once per scan on a node. A cluster client scans
 * every node and may see a key twice while it moves between them, as Redis allows; the copies a replicated job
 * keeps are listed by the key's primary only (`copiesHeldFor`).
 */
export function scan(s: RespContext, args: Buffer[]): void {
  const cursorText = args[1]!.toString('latin1');
  let after = '';
  if (cursorText !== '0') {
    const known = /^\d{1,15}$/.test(cursorText) ? s.cursors.get(Number(cursorText)) : undefined;
    if (known === undefined) return s.error('ERR invalid cursor');
    after = known;
    s.cursors.delete(Number(cursorText));
  }
  let pattern: string | null = null;
  let count = 10;
  let wantType: string | null = null;
  for (let i = 2; i < args.length; i += 2) {
    const option = args[i]!.toString('latin1').toUpperCase();
    const value = args[i + 1];
    if (value === undefined) return s.error('ERR syntax error');
    if (option === 'MATCH') pattern = value.toString('utf8');
    else if (option === 'COUNT') {
      count = Number(value.toString('latin1'));
      if (!Number.isInteger(count) || count < 1) return s.error('ERR value is not an integer or out of range');
    } else if (option === 'TYPE') wantType = value.toString('latin1').toLowerCase();
    else return s.error('ERR syntax error');
  }
  const lost = keysLostIn(s.host.jobs.get(s.job!));
  if (lost !== null) return s.error(respFinalErrorText('UNAVAILABLE', lost));
  const prefix = pattern === null ? '' : literalPrefix(pattern);
  const matches = pattern === null ? null : globMatcher(pattern);
  const copy = copiesHeldFor(s.host.jobs.get(s.job!), s.host.options.id);
  s.wait(s.host.engine.list(s.job!, prefix, after, Math.min(count, MAX_SCAN_COUNT)), (page: ListPage) => {
    let cursor = 0;
    if (page.more && page.keys.length > 0) {
      cursor = s.nextCursor++;
      s.cursors.set(cursor, page.keys.at(-1)!);
      if (s.cursors.size > MAX_CURSORS) s.cursors.delete(s.cursors.keys().next().value!);
    }
    const wanted = (key: string) => (matches === null || matches(key)) && (copy === null || !copy(key));
    const keys = wantType !== null && wantType !== 'string' ? [] : matches === null && copy === null ? page.keys : page.keys.filter(wanted);
    const before = s.out.bytesEncoded;
    s.out.array(2);
    s.out.bulk(String(cursor));
    s.out.array(keys.length);
    for (const key of keys) s.out.bulk(key);
    s.replied(before);
  });
}

/** DBSIZE: the job's keys on this node, copies held for other nodes left out (its pages counted one after another). */
export function dbsize(s: RespContext): void {
  const lost = keysLostIn(s.host.jobs.get(s.job!));
  if (lost !== null) return s.error(respFinalErrorText('UNAVAILABLE', lost));
  let count = 0;
  const copy = copiesHeldFor(s.host.jobs.get(s.job!), s.host.options.id);
  const next = (after: string): void =>
    s.wait(s.host.engine.list(s.job!, '', after, MAX_SCAN_COUNT), (page: ListPage) => {
      if (copy === null) count += page.keys.length;
      else for (const key of page.keys) if (!copy(key)) count++;
      if (page.more && page.keys.length > 0) return next(page.keys.at(-1)!);
      const before = s.out.bytesEncoded;
      s.out.integer(count);
      s.replied(before);
    });
  next('');
}

/** The part of a glob before its first special character: the LIST prefix that narrows a MATCH scan. */
export function literalPrefix(pattern: string): string {
  const special = pattern.search(/[*?[\\]/);
  return special === -1 ? pattern : pattern.slice(0, special);
}

/** Redis's glob (stringmatchlen): `*`, `?`, `[abc]`, `[^a-z]`, `\x` — as a RegExp over the whole key. */
export function globMatcher(pattern: string): (key: string) => boolean {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') source += '[\\s\\S]*';
    else if (c === '?') source += '[\\s\\S]';
    else if (c === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i]!);
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close === -1) {
        source += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negate = body.startsWith('^');
      if (negate) body = body.slice(1);
      source += `[${negate ? '^' : ''}${body.replace(/[\]\\]/g, '\\$&')}]`;
      i = close;
    } else source += escapeRegExp(c);
  }
  const re = new RegExp(`${source}$`, 'u');
  return (key) => re.test(key);
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
