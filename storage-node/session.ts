// A connection's requests (connection.ts is its transport and limits): HELLO and what its token opens, the checks
// every request of a job passes (expiry, deregistration, placement epoch, lease), the data operations (PUT, GET,
// STAT, DELETE, LIST, INCR), the coordination ones parked in coordination.ts (WAIT, WATCH, CANCEL), and the
// controller's admin operations (DROP_JOB, LIMIT_JOB, ANNOUNCE).
import { isUtf8 } from 'node:buffer';
import {
  COPY_THRESHOLD,
  type CopiedIncrement,
  DEFAULT_WAIT_MS,
  DROP_MOVED,
  DropFlag,
  decodeAnnounceBody,
  encodeKeyList,
  Flag,
  type FrameView,
  HEADER_SIZE,
  MAX_KEY_BYTES,
  MAX_WAIT_MS,
  Op,
  Status,
  splitIncrements,
  type TokenScope,
  withIncrements,
} from '../proto/index.ts';
import { Connection, isPromise } from './connection.ts';
import { counterValue } from './counter-value.ts';
import type { DeleteOutcome, ListPage, PutOutcome, StorageEngine, StoredEntry } from './engine.ts';
import { overQuotaMessage } from './job-limits.ts';
import { TRAFFIC_IN } from './metrics.ts';
import type { Increment } from './recent-increments.ts';

const MAX_LIST_PAGE = 1000;
const DEFAULT_LIST_PAGE = 100;

/** One client connection: HELLO first, then any number of pipelined requests. */
export class Session extends Connection {
  /** The job this connection counts against (its limit of connections), once its HELLO was admitted. */
  private admitted: string | null = null;
  /** When the HELLO's token expires (ms since 1970; Infinity: never): from then on every request is refused. */
  private expiresAt = Infinity;
  /** What the HELLO's token opens (proto/token.ts); null before a HELLO succeeded. */
  private scope: TokenScope | null = null;

  /** The connection closed: it no longer counts against its job's connections. */
  override released(): void {
    if (this.admitted !== null) this.server.limits.release(this.admitted);
    this.admitted = null;
    super.released();
  }

  protected override handle(f: FrameView): void {
    this.server.counters.ops++;
    // `f` is reused for the next frame: an async engine's callbacks must use these copies, not `f`.
    const op = f.code;
    const id = f.id;
    const epoch = f.epoch;
    const key = f.keyLength === 0 ? '' : f.buf.toString('utf8', f.bodyStart, f.bodyStart + f.keyLength);
    if (op === Op.HELLO) return this.hello(id, key);
    if (op === Op.PING) return this.respond(Status.OK, 0, id, 0, 0, null);
    if (this.jobId === null && !this.admin) {
      this.fail(id, epoch, 'UNAUTHORIZED', 'HELLO with a token must come first');
      this.closing = true;
      return;
    }
    // Keys are UTF-8. Other bytes would decode to U+FFFD, 3 bytes each when the key goes back out (LIST, WATCH
    // events): longer than a frame's key may be, and different byte strings would land on one key.
    if (f.keyLength > 0 && key.includes('\ufffd') && !isUtf8(f.buf.subarray(f.bodyStart, f.bodyStart + f.keyLength))) {
      return this.fail(id, epoch, 'BAD_REQUEST', 'key is not valid UTF-8');
    }
    if (this.admin) return this.adminOp(f, key);
    // A job's token opens that job's data and nothing else (checked before the epoch: no STALE to learn from).
    if (op === Op.DROP_JOB || op === Op.ANNOUNCE || op === Op.LIMIT_JOB)
      return this.fail(id, epoch, 'UNAUTHORIZED', 'admin operations need the admin token');
    // Internal keys and copies are the controller's (its tokens are internal scope). A copy's version is taken as
    // it comes; a data token may write one only as the client does (PUT and INCR, `dataTokenCopies`).
    if ((f.flags & (Flag.COPY | Flag.INTERNAL_KEYS | Flag.KEPT)) !== 0 && this.scope !== 'internal') {
      const clientCopy =
        (f.flags & (Flag.INTERNAL_KEYS | Flag.KEPT)) === 0 &&
        (op === Op.PUT || op === Op.INCR) &&
        this.server.options.dataTokenCopies !== false;
      if (!clientCopy)
        return this.fail(
          id,
          epoch,
          'UNAUTHORIZED',
          `${(f.flags & Flag.INTERNAL_KEYS) !== 0 ? 'internal keys' : 'copies'} need the controller's token, not a job's data token`,
        );
    }
    // One clock read per request, only for tokens that expire (the controller's do).
    if (this.expiresAt !== Infinity && Date.now() >= this.expiresAt) return this.fail(id, epoch, 'UNAUTHORIZED', 'token expired');
    const jobId = this.jobId!;
    const jobs = this.server.jobs;
    if (jobs.dropped.has(jobId)) return this.fail(id, epoch, 'NO_SUCH_JOB', `job ${jobId} was deregistered`);
    // Ending a parked request is about this connection, not the placement: no epoch check.
    if (op === Op.CANCEL) return this.respond(Status.OK, 0, id, epoch, this.server.coordination.cancel(this, f.arg) ? 1 : 0, null);
    const job = jobs.get(jobId);
    // Never NOT_FOUND for a job this process was not given: it may have held the key before a restart.
    if (job === undefined)
      return this.fail(
        id,
        epoch,
        'UNAVAILABLE',
        `node ${this.server.options.id} does not hold job ${jobId}: not placed on it, or the node restarted since`,
      );
    // The job's own counts (JobUsage ops, bytes, service time), on the job state just looked up: no allocation.
    // The frame's bytes now; `respond` adds the answer and its service time.
    this.traffic = job.traffic;
    job.traffic[TRAFFIC_IN]! += HEADER_SIZE + f.bodyLength;
    // A copy's epoch is its version's, not a placement (Flag.COPY): the controller orders its own changes.
    if (job.moved || (epoch < job.epoch && (f.flags & Flag.COPY) === 0))
      return this.respond(Status.STALE, 0, id, job.epoch, job.epoch, null);
    // Only the controller raises a job's epoch. A frame ahead of the announced one would store its write at that
    // epoch, and every write of the job at its real epoch would then be STALE on the key: refused, and the
    // client asks again (the controller announces an epoch to every node before any client learns of it). A
    // copy's version is never above the epoch the controller announced. The controller's own reads are served:
    // a restoration reads the keys of a node declared lost (never told the new epoch) at the new placement's.
    if (
      epoch > job.epoch &&
      this.server.options.announcedJobsOnly === true &&
      !(this.scope === 'internal' && (op === Op.GET || op === Op.STAT || op === Op.LIST))
    ) {
      return this.fail(
        id,
        epoch,
        'UNAVAILABLE',
        `node ${this.server.options.id} has not been told of placement epoch ${epoch} yet (job ${jobId} is at ${job.epoch} here)`,
      );
    }
    // Copies (COPY, VERSION, INTERNAL_KEYS: the controller's restorations and migrations, a counter's replicas)
    // carry versions and land only over older ones: safe without the lease, and they must not wait for it.
    if (job.replicated && this.server.leaseLapsed && (f.flags & (Flag.COPY | Flag.VERSION | Flag.INTERNAL_KEYS)) === 0) {
      return this.fail(
        id,
        epoch,
        'UNAVAILABLE',
        `node ${this.server.options.id} has not heard from the controller within its lease: its copies may be out of date`,
      );
    }
    const engine = this.server.engine;
    const coordination = this.server.coordination;
    switch (op) {
      case Op.PUT: {
        if (this.server.limits.isOverQuota(jobId)) return this.overQuota(id, epoch, jobId);
        if (f.keyLength === 0) return this.fail(id, epoch, 'BAD_REQUEST', 'empty key');
        let start = f.bodyStart + f.keyLength;
        const end = f.bodyStart + f.bodyLength;
        let increments: CopiedIncrement[] | null = null;
        if ((f.flags & Flag.INCREMENTS) !== 0) {
          // A copy of a counter with its recent increments ahead of the value (increment-list.ts).
          const split = (f.flags & (Flag.COPY | Flag.KEPT)) === Flag.COPY ? splitIncrements(f.buf, start, end) : null;
          if (split === null)
            return this.fail(id, epoch, 'BAD_REQUEST', 'INCREMENTS is a flag of PUT COPY, and its increments must fit the body');
          increments = split.increments;
          start = split.valueStart;
        }
        // The decoder's limit leaves room for the key, so a value just over the maximum gets this far.
        if (end - start > this.server.maxValueBytes) {
          return this.fail(
            id,
            epoch,
            'TOO_LARGE',
            `value of ${end - start} bytes exceeds the node's limit of ${this.server.maxValueBytes}`,
          );
        }
        this.server.metrics.bytesIn(end - start);
        const copy = (f.flags & Flag.COPY) !== 0;
        let value: Buffer;
        let flags = f.flags & Flag.MANIFEST;
        if ((f.flags & Flag.KEPT) !== 0) {
          // The entry set aside at this version (engine.ts "Kept copies") in place of the value sent again.
          if (!copy) return this.fail(id, epoch, 'BAD_REQUEST', 'KEPT is a flag of PUT COPY');
          const kept = engine.takeKept === undefined ? null : engine.takeKept(jobId, key, epoch, f.arg);
          if (kept === null || kept === undefined) return this.respond(Status.NOT_FOUND, 0, id, epoch, kept === null ? 0 : 1, null);
          value = kept.value;
          flags = kept.flags & Flag.MANIFEST;
        } else if (f.owned) value = f.buf.subarray(start, end);
        else {
          // Own the bytes: keep an assembled body as it is, copy a view of a shared read chunk: into the buffer of
          // a small value replaced earlier (ValuePool.takeSmall), else allocUnsafeSlow — neither zero-filled
          // (Buffer.copyBytesFrom zero-fills first: 1.3 s of the node's 16 s CPU in a 256×256 sort) nor cut from
          // Node's shared 8 KiB pool, which one small stored value would keep alive whole.
          value = this.server.pool.takeSmall(end - start) ?? Buffer.allocUnsafeSlow(end - start);
          f.buf.copy(value, 0, start, end);
        }
        // A replica or copy carries its version's seq (≥ 1); 0 asks this node to order the write.
        const seq = (f.flags & (Flag.REPLICA | Flag.COPY)) === 0 ? 0 : f.arg;
        if (seq === 0 && (f.flags & (Flag.REPLICA | Flag.COPY)) !== 0)
          return this.fail(id, epoch, 'BAD_REQUEST', 'a replica or copy carries its version (seq ≥ 1) in arg');
        const result = engine.put(jobId, key, value, flags, epoch, seq);
        // A body an async engine is still writing counts against the node's budget (`maxInflightBodyBytes`).
        if (isPromise(result)) this.server.bodyInFlight(result, value.length);
        return this.settle(result, id, epoch, (outcome: PutOutcome) => {
          if (!outcome.ok) return this.refused(id, epoch, jobId, outcome.reason, outcome.message);
          // Also when the copy was not stored: what the key holds is newer, and counts them as well.
          if (increments !== null) this.server.increments.recordCopied(jobId, key, increments);
          if (outcome.skipped === true) {
            this.server.pool.release(value);
            return this.respond(Status.OK, 0, id, epoch, 0, null);
          }
          // Before the replaced value goes back to the pool. A migration copy wakes waiters but is no change for
          // watches: the key was there before, on another node.
          if (coordination.active > 0) coordination.stored(jobId, key, value, flags, epoch, !copy);
          this.replaced(id, epoch, outcome.replaced, seq === 0 ? outcome.seq : 1, 0);
        });
      }
      case Op.GET: {
        const versioned = (f.flags & Flag.VERSION) !== 0;
        return this.settle(engine.get(jobId, key), id, epoch, (entry: StoredEntry | undefined) => {
          if (entry === undefined) return this.notFound(engine, jobId, key, id, epoch);
          this.server.metrics.bytesOut(entry.value.length);
          // A copy asks for the value's version (Flag.VERSION) in place of its size.
          const answerEpoch = versioned ? entry.epoch : epoch;
          const arg = versioned ? entry.seq : entry.value.length;
          if (versioned && (f.flags & Flag.INCREMENTS) !== 0 && entry.value.length <= COPY_THRESHOLD) {
            // A copier's read of a counter: its recent increments travel ahead of it (increment-list.ts).
            const increments = this.server.increments.forKey(jobId, key);
            if (increments.length > 0)
              return this.respond(Status.OK, entry.flags | Flag.INCREMENTS, id, answerEpoch, arg, withIncrements(increments, entry.value));
          }
          if (entry.value.length <= COPY_THRESHOLD) return this.respond(Status.OK, entry.flags, id, answerEpoch, arg, entry.value);
          // The writer sends it by reference: lent until the socket is done with it.
          entry.lent = (entry.lent ?? 0) + 1;
          this.respond(Status.OK, entry.flags, id, answerEpoch, arg, entry.value, () => this.server.sentByReference(entry));
        });
      }
      case Op.STAT: {
        const versioned = (f.flags & Flag.VERSION) !== 0;
        return this.settle(engine.get(jobId, key), id, epoch, (entry: StoredEntry | undefined) => {
          if (entry === undefined) return this.notFound(engine, jobId, key, id, epoch);
          const manifest = (entry.flags & Flag.MANIFEST) !== 0;
          if (manifest && entry.value.length > COPY_THRESHOLD) entry.pinned = true; // sent by reference
          // A migration asks for the version (Flag.VERSION) in place of the size, as GET.
          this.respond(
            Status.OK,
            entry.flags,
            id,
            versioned ? entry.epoch : epoch,
            versioned ? entry.seq : entry.value.length,
            manifest ? entry.value : null,
          );
        });
      }
      case Op.DELETE: {
        const seq = (f.flags & Flag.REPLICA) === 0 ? 0 : f.arg;
        if (seq === 0 && (f.flags & Flag.REPLICA) !== 0)
          return this.fail(id, epoch, 'BAD_REQUEST', 'a replica carries its version (seq ≥ 1) in arg');
        // Flag.COPY: the controller removing a copy no reader may see (migration.ts), which leaves no tombstone.
        const tombstone = jobs.keepsTombstones(job) && (f.flags & Flag.COPY) === 0;
        return this.settle(engine.delete(jobId, key, epoch, seq, tombstone), id, epoch, (outcome: DeleteOutcome) => {
          if (!outcome.ok) return this.refused(id, epoch, jobId, outcome.reason, outcome.message);
          if (outcome.skipped === true) return this.respond(Status.OK, 0, id, epoch, 0, null);
          const old = outcome.old;
          if (old !== undefined && coordination.active > 0) coordination.deleted(jobId, key, epoch);
          this.replaced(id, epoch, old, seq === 0 ? outcome.seq : 1, old === undefined ? 0 : Flag.EXISTED);
        });
      }
      case Op.WAIT: {
        if (f.keyLength === 0) return this.fail(id, epoch, 'BAD_REQUEST', 'empty key');
        const refusal = coordination.admit(this, id, jobId);
        if (refusal !== null) return this.fail(id, epoch, 'FULL', refusal);
        // Parked first, then looked up: a PUT that lands while a disk engine reads still wakes it.
        coordination.wait(this, id, jobId, key, epoch, f.arg === 0 ? DEFAULT_WAIT_MS : Math.min(f.arg, MAX_WAIT_MS));
        const lookup = engine.get(jobId, key);
        // An engine failure is the WAIT's answer (settle sends it): the parked waiter must not answer again.
        if (isPromise(lookup)) lookup.catch(() => coordination.abandon(this, id));
        return this.settle(lookup, id, epoch, (entry: StoredEntry | undefined) => {
          if (entry === undefined) return;
          if (entry.value.length > COPY_THRESHOLD) entry.pinned = true; // the writer sends it by reference
          this.server.metrics.bytesOut(entry.value.length);
          coordination.settleWait(this, id, entry.value, entry.flags);
        });
      }
      case Op.WATCH: {
        const refusal = coordination.admit(this, id, jobId);
        if (refusal !== null) return this.fail(id, epoch, 'FULL', refusal);
        return coordination.watch(this, id, jobId, key, epoch);
      }
      case Op.INCR:
        return this.incr(f, jobId, key);
      case Op.LIST: {
        const limit = f.arg === 0 ? DEFAULT_LIST_PAGE : Math.min(f.arg, MAX_LIST_PAGE);
        const after = f.buf.toString('utf8', f.bodyStart + f.keyLength, f.bodyStart + f.bodyLength);
        return this.settle(engine.list(jobId, key, after, limit, (f.flags & Flag.INTERNAL_KEYS) !== 0), id, epoch, (page: ListPage) => {
          this.respond(Status.OK, page.more ? Flag.MORE : 0, id, epoch, page.keys.length, encodeKeyList(page.keys));
        });
      }
      default:
        return this.fail(id, epoch, 'BAD_REQUEST', `unsupported operation 0x${op.toString(16)}`);
    }
  }

  /** GET/STAT of a key this node does not hold: NOT_FOUND, with the version of its delete when it remembers one. */
  private notFound(engine: StorageEngine, jobId: string, key: string, id: number, epoch: number): void {
    const deleted = engine.deletedAt(jobId, key);
    if (deleted === undefined) this.respond(Status.NOT_FOUND, 0, id, epoch, 0, null);
    else this.respond(Status.NOT_FOUND, Flag.DELETED, id, deleted.epoch, deleted.seq, null);
  }

  /**
   * INCR: the value is the amount, a signed 64-bit integer, then optionally the increment's 8-byte token (the
   * same on every retry of it: recent-increments.ts); the key holds the total as decimal text (so GET reads it as
   * a string and PUT of "42" sets it), created at 0. Totals stay within ±(2^53 − 1). With Flag.REPLICA the value
   * is the total the primary made, then its token, and arg the version's seq: stored as a replica of a write.
   */
  private incr(f: FrameView, jobId: string, key: string): void {
    const { id, epoch } = f;
    if (this.server.limits.isOverQuota(jobId)) return this.overQuota(id, epoch, jobId);
    if (f.keyLength === 0) return this.fail(id, epoch, 'BAD_REQUEST', 'empty key');
    const length = f.bodyLength - f.keyLength;
    if (length !== 8 && length !== 16)
      return this.fail(id, epoch, 'BAD_REQUEST', 'INCR carries the amount as an 8-byte integer, and may carry an 8-byte token after it');
    const at = f.bodyStart + f.keyLength;
    const by = Number(f.buf.readBigInt64BE(at));
    if (!Number.isSafeInteger(by)) return this.fail(id, epoch, 'BAD_REQUEST', 'INCR amount beyond ±(2^53 − 1)');
    const token = length === 16 ? f.buf.toString('hex', at + 8, at + 16) : null;
    const increments = this.server.increments;
    if ((f.flags & Flag.REPLICA) !== 0) {
      if (token === null || f.arg === 0)
        return this.fail(
          id,
          epoch,
          'BAD_REQUEST',
          "an INCR replica carries the primary's total, its token and its version (seq ≥ 1 in arg)",
        );
      const value = Buffer.from(String(by));
      return this.settle(this.server.engine.put(jobId, key, value, 0, epoch, f.arg), id, epoch, (outcome: PutOutcome) => {
        if (!outcome.ok) return this.refused(id, epoch, jobId, outcome.reason, outcome.message);
        increments.record(jobId, token, { key, total: by, epoch, seq: f.arg });
        if (outcome.skipped !== true && this.server.coordination.active > 0)
          this.server.coordination.stored(jobId, key, value, 0, epoch, true);
        this.respond(Status.OK, 0, id, epoch, outcome.skipped === true ? 0 : 1, null);
      });
    }
    const answer = (made: Increment) => {
      const body = Buffer.allocUnsafe(8);
      body.writeBigInt64BE(BigInt(made.total));
      // The version, so a replicated job's client can hand the new total to the other copies: a retry's answer
      // carries the first attempt's (a copy may have brought it from an earlier epoch), never a newer one.
      this.respond(Status.OK, 0, id, made.epoch, made.seq, body);
    };
    const seen = token === null ? undefined : increments.get(jobId, token);
    if (seen !== undefined) {
      // A retry: what the increment made, not another increment.
      return this.settle<Increment | null>(seen, id, epoch, (made) => {
        if (made === null) return this.fail(id, epoch, 'UNAVAILABLE', 'the first attempt of this increment failed: try again');
        if (made.key !== key) return this.fail(id, epoch, 'BAD_REQUEST', 'an INCR token names one increment of one key');
        answer(made);
      });
    }
    const done = token === null ? null : increments.begin(jobId, token, key);
    const existing = (f.flags & Flag.EXISTING) !== 0;
    let total = 0;
    let stored: Buffer | null = null;
    let missing = false;
    const compute = (old: StoredEntry | undefined): Buffer | { refuse: string } => {
      if (old === undefined && existing) {
        missing = true;
        return { refuse: `${key} is not on this node` };
      }
      const current = old === undefined ? 0 : counterValue(old);
      if (current === null) return { refuse: `${key} holds a value that is not a counter` };
      total = current + by;
      if (!Number.isSafeInteger(total)) return { refuse: `counter ${key} would pass ±(2^53 − 1)` };
      return (stored = Buffer.from(String(total)));
    };
    const result = this.server.engine.update(jobId, key, compute, epoch);
    if (done !== null && isPromise(result)) result.catch(() => done(null));
    this.settle(result, id, epoch, (outcome: PutOutcome) => {
      if (!outcome.ok) {
        done?.(null);
        // With the delete it remembers (Flag.DELETED, as GET): older generations' copies are older than it, and the
        // client starts the counter here rather than bring one forward.
        if (missing) return this.notFound(this.server.engine, jobId, key, id, epoch);
        return this.refused(id, epoch, jobId, outcome.reason, outcome.message);
      }
      const coordination = this.server.coordination;
      if (coordination.active > 0 && stored !== null) coordination.stored(jobId, key, stored, 0, epoch, true);
      const made = { key, total, epoch, seq: outcome.seq };
      done?.(made);
      answer(made);
    });
  }

  /** PUT and INCR of a job the controller found over its byte quota (LIMIT_JOB). */
  private overQuota(id: number, epoch: number, jobId: string): void {
    this.fail(id, epoch, 'FULL', overQuotaMessage(jobId));
  }

  /**
   * An engine refused a write: STALE (the key holds a write of a later placement than the request's: the client
   * refreshes) with the node's epoch for the job, or the refusal's own code.
   */
  private refused(id: number, epoch: number, jobId: string, reason: 'FULL' | 'BAD_REQUEST' | 'STALE', message: string): void {
    // FULL here is the engine's: no room on the node (a job over its quota is refused before the engine).
    if (reason === 'FULL') this.server.fullRefused(jobId);
    if (reason !== 'STALE') return this.fail(id, epoch, reason, message);
    const known = Math.max(epoch, this.server.jobs.get(jobId)?.epoch ?? 0);
    this.respond(Status.STALE, 0, id, known, known, Buffer.from(message));
  }

  /**
   * PUT/DELETE answer (arg: the write's seq, or 1 for a replica or copy stored): when the entry replaced was a
   * block manifest, hand it back so the client frees its blocks.
   */
  private replaced(id: number, epoch: number, old: StoredEntry | undefined, arg: number, flags: number): void {
    if (old !== undefined && (old.flags & Flag.MANIFEST) !== 0) {
      this.respond(Status.OK, flags | Flag.REPLACED_MANIFEST, id, epoch, arg, old.value);
    } else {
      if (old !== undefined) this.server.retire(old);
      this.respond(Status.OK, flags, id, epoch, arg, null);
    }
  }

  private hello(id: number, token: string): void {
    const subject = this.server.tokens.verify(token);
    if (subject === null) {
      this.fail(id, 0, 'UNAUTHORIZED', 'invalid token');
      this.closing = true;
      return;
    }
    // The console's read-only token opens nothing on a node.
    if (subject.scope === 'viewer') {
      this.fail(id, 0, 'UNAUTHORIZED', 'a viewer token opens the console only');
      this.closing = true;
      return;
    }
    if (!subject.admin && this.server.jobs.dropped.has(subject.jobId)) {
      this.fail(id, 0, 'NO_SUCH_JOB', `job ${subject.jobId} was deregistered`);
      this.closing = true;
      return;
    }
    if (!subject.admin && this.admitted === null) {
      if (!this.server.limits.admit(subject.jobId)) {
        this.fail(id, 0, 'FULL', `job ${subject.jobId} has ${this.server.limits.maxConnectionsPerJob} connections to this node, its limit`);
        this.closing = true;
        return;
      }
      this.admitted = subject.jobId;
    }
    this.admin = subject.admin;
    this.scope = subject.scope;
    this.expiresAt = subject.expiresAt;
    this.authenticated();
    this.decoder.limit(this.server.maxValueBytes + MAX_KEY_BYTES);
    this.jobId = subject.admin ? null : subject.jobId;
    const epoch = subject.admin ? 0 : (this.server.jobs.get(subject.jobId)?.epoch ?? 0);
    this.respond(Status.OK, 0, id, epoch, this.server.maxValueBytes, Buffer.from(this.server.options.id));
  }

  private adminOp(f: FrameView, jobId: string): void {
    switch (f.code) {
      case Op.DROP_JOB: {
        // Copies: `f` is reused for the next frame before an async engine's drop settles.
        const { id } = f;
        const moved = f.arg === DROP_MOVED;
        const keep = moved && (f.flags & DropFlag.KEEP) !== 0;
        // The value, when there is one: when the last token of the job expires (ms since 1970, i64).
        const until = f.bodyLength - f.keyLength === 8 ? Number(f.buf.readBigInt64BE(f.bodyStart + f.keyLength)) : Infinity;
        return this.settle(this.server.dropJob(jobId, moved, until, keep), id, 0, (freed: number) => {
          this.server.options.logger.info({ job: jobId, freed, moved, keep }, 'job dropped');
          this.respond(Status.OK, 0, id, 0, Math.min(freed, 0xffffffff), null);
        });
      }
      case Op.LIMIT_JOB:
        this.server.limits.setOverQuota(jobId, f.arg === 1);
        return this.respond(Status.OK, 0, f.id, 0, f.arg, null);
      case Op.ANNOUNCE: {
        // The value, when there is one: the incarnation the controller means. Another one (this node restarted
        // since the controller heard from it) holds none of the job's data and must not serve it.
        // Then, optionally, the job's placement for the RESP front door (proto/announce.ts).
        const { bootId, placement } = decodeAnnounceBody(f.buf.toString('utf8', f.bodyStart + f.keyLength, f.bodyStart + f.bodyLength));
        if (bootId !== null && bootId !== this.server.options.bootId) {
          return this.fail(
            f.id,
            0,
            'UNAVAILABLE',
            `announcement for incarnation ${bootId}; this is ${this.server.options.bootId ?? 'none'}`,
          );
        }
        if (this.server.jobs.announce(jobId, f.arg, f.flags, placement) && this.server.coordination.active > 0)
          this.server.coordination.epochChanged(jobId, f.arg);
        return this.respond(Status.OK, 0, f.id, this.server.jobs.get(jobId)?.epoch ?? 0, 0, null);
      }
      default:
        return this.fail(f.id, 0, 'BAD_REQUEST', 'an admin connection carries admin operations only');
    }
  }
}
