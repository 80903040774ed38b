// One RESP connection of a storage node (the RESP front door): Redis clients of one job, authenticated as a
// Redis 6 ACL user (`AUTH <jobId> <token>`, `HELLO 3 AUTH <jobId> <token>`). Commands are answered in order: a
// command left to an async engine (the disk tiers) holds the ones after it until it settles, as Redis answers a
// pipeline. The transport, limits and counts are client-connection.ts's, shared with the frame protocol.
import type net from 'node:net';
import {
  errorCodeOf,
  MAX_KEY_BYTES,
  type RespCommand,
  RespParser,
  RespWriter,
  Status,
  type StatusCode,
  statusOf,
  type TokenScope,
} from '../../proto/index.ts';
import { ClientConnection, isPromise, type SessionHost } from '../client-connection.ts';
import type { MaybePromise } from '../engine.ts';
import { overQuotaMessage } from '../job-limits.ts';
import type { AnnouncedJob } from '../job-table.ts';
import { OpKind, TRAFFIC_IN } from '../metrics.ts';
import { PRE_AUTH_MAX_FRAMES } from '../server-options.ts';
import { COMMANDS } from './resp-commands.ts';
import type { BlockedRead, CommandSpec, RespContext } from './resp-context.ts';
import { answerParked, SUBSCRIBED_COMMANDS } from './resp-coordination.ts';
import { oneLine, respErrorText, respFinalErrorText, type SatchelCode } from './resp-errors.ts';
import { foreignJob, lostKeys, lostOwner, unannouncedOwner } from './resp-foreign.ts';
import { routeSlot } from './resp-routing.ts';

/** Before AUTH an argument carries at most a job id, a token or a client name. */
const PRE_AUTH_MAX_ARG = 4096;
/**
 * Arguments in one command before AUTH (Redis: 10; HELLO 3 AUTH <job> <token> SETNAME <name> has 7). Without it a
 * stranger's `*1048576` and a million `$0` (6 MB) held ~110 MB of the node's heap until the AUTH deadline.
 */
const PRE_AUTH_MAX_ARGS = 10;
/** Arguments in one command once authenticated (Redis's 1024 × 1024). */
const MAX_ARGS = 1024 * 1024;
/**
 * An argument over the node's value limit, up to Redis's own limit on one (proto-max-bulk-len, 512 MB), is read
 * past and the command answered TOO_LARGE, as a native PUT over the limit is; past it the stream ends with Redis's
 * protocol error. Before, anything over the value limit closed the connection, and redis-cli died of SIGPIPE.
 */
const MAX_SKIPPED_BULK_BYTES = 512 * 1024 * 1024;
/** Redis's limit on one inline command (PROTO_INLINE_MAX_SIZE). */
const MAX_INLINE_BYTES = 64 * 1024;
/** The `[CODE]` every Satchel error ends with (resp-errors.ts `respErrorText`). */
const SATCHEL_CODE_AT_END = / \[[A-Z_]+\]$/;
/** Redis commands about key lifetimes, answered with why Satchel has none rather than as unknown. */
const EXPIRY_COMMANDS = new Set([
  'EXPIRE',
  'PEXPIRE',
  'EXPIREAT',
  'PEXPIREAT',
  'EXPIRETIME',
  'PEXPIRETIME',
  'TTL',
  'PTTL',
  'PERSIST',
  'SETEX',
  'PSETEX',
  'GETEX',
]);

let lastClientId = 0;

export class RespSession extends ClientConnection implements RespContext {
  protected readonly authName = 'AUTH';
  private readonly parser: RespParser;
  readonly out: RespWriter;
  /** CLIENT ID: unique in this process. */
  readonly clientId = ++lastClientId;
  /** CLIENT SETNAME / HELLO SETNAME. */
  clientName = '';
  /** CLIENT SETINFO lib-name and lib-ver. */
  libName = '';
  libVersion = '';
  /** When the token expires (ms since 1970); Infinity: never. */
  private expiresAt = Infinity;
  /** The token had expired when the commands being answered were read (`drain`). */
  private expired = false;
  private scope: TokenScope | null = null;
  /** The job this connection counts against (its connections per node), once AUTH admitted it. */
  private admitted: string | null = null;
  /** Commands received before AUTH (at most PRE_AUTH_MAX_FRAMES are answered). */
  private preAuthCommands = 0;
  /** A command waits for an async engine: the ones after it stay in the parser until it is answered. */
  private waiting = false;
  /** ASKING was the previous command: the next one may read a slot this node holds in an older generation. */
  asking = false;
  /** The command being answered came after ASKING: a miss is not sent on with ASK again. */
  askingServed = false;
  keysAscii = false;
  /** READONLY: reads may go to replicas (accepted; every read is served by the slot's owner anyway). */
  readOnly = false;
  /** SCAN cursors: cursor number → the last key returned (RESP cursors are numbers; keys are the position). */
  readonly cursors = new Map<number, string>();
  nextCursor = 1;
  /** WAITFOR: the read this connection is blocked on (resp-coordination.ts). */
  blocked: BlockedRead | null = null;
  /** PSUBSCRIBE: pattern by the id of its parked watch. */
  readonly subscriptions = new Map<number, string>();
  private lastParkedId = 0;
  /** The last command's name argument and what it named (`execute`). */
  private lastName: Buffer | null = null;
  private lastSpec: CommandSpec | undefined = undefined;

  constructor(server: SessionHost, socket: net.Socket) {
    super(server, socket);
    this.out = new RespWriter(socket);
    this.parser = new RespParser({ maxBulkBytes: PRE_AUTH_MAX_ARG, maxArgs: PRE_AUTH_MAX_ARGS, maxInlineBytes: MAX_INLINE_BYTES });
  }

  get host(): SessionHost {
    return this.server;
  }

  get job(): string | null {
    return this.jobId;
  }

  protected received(chunk: Buffer): void {
    this.parser.push(chunk);
    this.drain();
  }

  protected pendingOutput(): number {
    return this.out.pendingBytes;
  }

  protected flushOutput(): void {
    this.out.flush();
  }

  /** Answers every whole command the parser holds, in order, until one waits for an engine. */
  private drain(): void {
    // One clock read per batch of commands for the token's expiry, not one per command.
    if (this.expiresAt !== Infinity) this.expired = Date.now() >= this.expiresAt;
    while (!this.waiting && !this.closing && !this.socket.destroyed) {
      const next = this.parser.next();
      if (next === null) return;
      if ('error' in next) {
        // As Redis: the error, then the connection ends (the stream cannot be resynchronised).
        this.server.options.logger.debug(
          { remote: this.socket.remoteAddress, reason: next.error },
          'closing RESP connection: protocol error',
        );
        this.out.error(`ERR ${oneLine(next.error)}`);
        this.closing = true;
        this.flush();
        return;
      }
      if ('oversized' in next) {
        // Read past (RespParser maxSkippedBulkBytes): refused as a native PUT over the limit is; the connection goes on.
        this.out.error(
          respErrorText(
            'TOO_LARGE',
            `an argument of ${next.oversized} bytes exceeds the node's limit of ${this.server.maxValueBytes} bytes for a value`,
          ),
        );
        this.flush();
        continue;
      }
      this.execute(next);
    }
  }

  private execute(command: RespCommand): void {
    const args = command.args;
    if (args.length === 0) return;
    // The parser hands the same buffer for a name the connection repeats (RespParser.name): known by identity.
    const first = args[0]!;
    let spec: CommandSpec | undefined;
    if (first === this.lastName) spec = this.lastSpec;
    else {
      spec = commandOf(first);
      // Not a view of a read chunk, which it would keep alive.
      if (command.owned(0)) {
        this.lastName = first;
        this.lastSpec = spec;
      }
    }
    const name = spec?.name ?? first.toString('latin1').toUpperCase();
    const authed = this.jobId !== null;
    if (!authed && ++this.preAuthCommands > PRE_AUTH_MAX_FRAMES) {
      this.endAfterAnswers('pre_auth_output', `more than ${PRE_AUTH_MAX_FRAMES} RESP commands before AUTH`);
      return;
    }
    this.begin(spec?.opKind ?? OpKind.other);
    const asking = this.asking;
    this.asking = false;
    this.askingServed = asking;
    if (spec === undefined) {
      // Redis's own text (clients and people search for it); `error` adds the Satchel code.
      this.error(
        EXPIRY_COMMANDS.has(name)
          ? `ERR Satchel keys do not expire: they live as long as their job, so '${name.toLowerCase()}' is not served`
          : `ERR unknown command '${oneLine(name.slice(0, 128))}', with args beginning with: ${describeArgs(args)}`,
      );
    } else if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) {
      this.error(`ERR wrong number of arguments for '${name.toLowerCase()}' command`);
    } else if (!authed && !spec.beforeAuth) {
      this.error('NOAUTH Authentication required. [UNAUTHORIZED]');
    } else if (this.subscriptions.size > 0 && this.out.version === 2 && !SUBSCRIBED_COMMANDS.has(name)) {
      this.error(
        `ERR Can't execute '${name.toLowerCase()}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
      );
    } else {
      let job: AnnouncedJob | null = null;
      if (authed && (spec.keys !== undefined || spec.needsJob === true)) {
        const gated = this.gate(spec, args);
        if (isPromise(gated)) return this.afterLookup(gated, command, asking);
        job = gated;
        if (job === null) return this.handled();
        if (spec.keys !== undefined && routeSlot(this, job, args, spec, asking) === null) return this.handled();
        if (job.foreign === true && spec.keys !== undefined) {
          // The looked-up placement names this node for the slot, and the controller never announced the job to this
          // process: a restart that lost a single-copy job's keys, which the placement marks (final), else an
          // announcement still on its way (retried): resp-foreign.ts `lostOwner`, `unannouncedOwner`.
          const self = this.server.options.id;
          if (lostOwner(job, self)) this.error(respFinalErrorText('UNAVAILABLE', lostKeys(self, this.jobId!)), statusOf('UNAVAILABLE'));
          else this.fail(0, 0, 'UNAVAILABLE', unannouncedOwner(self, this.jobId!, job.replicated));
          return this.handled();
        }
      }
      // Commands without the job's checks (AUTH, PING, CLIENT…) never read `job`.
      spec.run(this, args, command, job as AnnouncedJob);
      if (name === 'ASKING') this.asking = true;
    }
    this.handled();
  }

  /**
   * The checks every keyed command of a job passes, as the frame protocol's (session.ts): the token's expiry, a
   * deregistered job, a job this process does not serve, the lease of a replicated job, the quota for writes.
   * The job, or null when an error was answered.
   */
  private gate(spec: CommandSpec, args: Buffer[]): AnnouncedJob | null | Promise<unknown> {
    const write = spec.write === true;
    if (this.expired) {
      this.fail(0, 0, 'UNAUTHORIZED', 'token expired: AUTH again with a fresh one (the job handle’s redisUrl)');
      return null;
    }
    const jobId = this.jobId!;
    const jobs = this.server.jobs;
    if (jobs.dropped.has(jobId)) {
      this.fail(0, 0, 'NO_SUCH_JOB', `job ${jobId} was deregistered`);
      return null;
    }
    const job = jobs.get(jobId);
    // Where the job is now, for a client that came here with an old redisUrl (resp-foreign.ts).
    if (job === undefined)
      return foreignJob(
        this,
        spec,
        jobId,
        `node ${this.server.options.id} does not hold job ${jobId}: not placed on it, or the node restarted since`,
      );
    if (job.moved) return foreignJob(this, spec, jobId, `job ${jobId} moved off node ${this.server.options.id}`);
    this.traffic = job.traffic;
    let bytes = 0;
    for (const arg of args) bytes += arg.length;
    job.traffic[TRAFFIC_IN]! += bytes;
    if (job.replicated && this.server.leaseLapsed) {
      this.fail(0, 0, 'UNAVAILABLE', `node ${this.server.options.id} has not heard from the controller within its lease`);
      return null;
    }
    if (write && this.server.limits.isOverQuota(jobId)) {
      this.fail(0, 0, 'FULL', overQuotaMessage(jobId));
      return null;
    }
    return job;
  }

  /** Runs `command` again once the lookup of its job's placement settled; later commands wait behind it. */
  private afterLookup(lookup: Promise<unknown>, command: RespCommand, asking: boolean): void {
    this.handled();
    this.waiting = true;
    void lookup.then(() => {
      this.waiting = false;
      if (this.socket.destroyed || this.closing) return;
      this.asking = asking;
      this.execute(command);
      this.drain();
      this.scheduleFlush();
    });
  }

  /**
   * AUTH / HELLO AUTH: the username is the job id (null: AUTH with a password alone, the token naming its job),
   * the password its token. An error text, or null when admitted.
   */
  authenticate(username: string | null, password: string): string | null {
    const subject = this.server.tokens.verify(password);
    if (subject === null || subject.admin || subject.scope === 'viewer' || (username !== null && subject.jobId !== username))
      return 'WRONGPASS invalid username-password pair or user is disabled.';
    if (this.server.jobs.dropped.has(subject.jobId)) return respErrorText('NO_SUCH_JOB', `job ${subject.jobId} was deregistered`);
    if (this.admitted !== subject.jobId) {
      if (!this.server.limits.admit(subject.jobId))
        return respErrorText(
          'FULL',
          `job ${subject.jobId} has ${this.server.limits.maxConnectionsPerJob} connections to this node, its limit`,
        );
      if (this.admitted !== null) this.server.limits.release(this.admitted);
      this.admitted = subject.jobId;
    }
    this.scope = subject.scope;
    this.expiresAt = subject.expiresAt;
    this.expired = subject.expiresAt <= Date.now();
    if (this.jobId === null) {
      this.authenticated();
      this.parser.limit({
        maxBulkBytes: this.server.maxValueBytes + MAX_KEY_BYTES,
        maxSkippedBulkBytes: MAX_SKIPPED_BULK_BYTES,
        maxArgs: MAX_ARGS,
      });
    }
    this.jobId = subject.jobId;
    return null;
  }

  get tokenScope(): TokenScope | null {
    return this.scope;
  }

  override released(): void {
    if (this.admitted !== null) this.server.limits.release(this.admitted);
    this.admitted = null;
    super.released();
  }

  /**
   * An error reply for the command being answered (recorded in the metrics as its status). An `ERR` reply gets
   * its Satchel code in brackets at the end if it has none (README.md "Errors": every reply carries one); other
   * prefixes (MOVED, ASK, NOAUTH …) are left as they are, for clients that parse them.
   */
  error(text: string, status: StatusCode = Status.BAD_REQUEST): void {
    const before = this.out.bytesEncoded;
    const line = oneLine(text).trimEnd();
    this.out.error(line.startsWith('ERR ') && !SATCHEL_CODE_AT_END.test(line) ? `${line} [${errorCodeOf(status)}]` : line);
    this.answered(status, this.out.bytesEncoded - before);
  }

  /** Records the reply just encoded by a command (bytes since `before`), with its status. */
  replied(before: number, status: StatusCode = Status.OK): void {
    this.answered(status, this.out.bytesEncoded - before);
  }

  protected fail(_id: number, _epoch: number, code: SatchelCode, message: string): void {
    this.error(respErrorText(code, message), statusOf(code));
  }

  /** A Satchel refusal as its Redis error (resp-errors.ts). */
  refuse(code: SatchelCode, message: string): void {
    this.fail(0, 0, code, message);
  }

  /**
   * Runs `then` now for a synchronous engine result; for a promise, holds the commands after this one until it
   * settles (replies stay in order), then goes on with them.
   */
  wait<T>(result: MaybePromise<T>, then: (value: T) => void): void {
    if (!isPromise(result)) return then(result);
    this.waiting = true;
    this.settle(result, 0, 0, (value) => {
      this.waiting = false;
      then(value);
      this.drain();
    });
    // An engine failure answers through `fail` (settle), then the pipeline goes on.
    result.catch(() => {
      if (!this.waiting) return;
      this.waiting = false;
      setImmediate(() => this.drain());
    });
  }

  parkedId(): number {
    return ++this.lastParkedId;
  }

  hold(): void {
    this.waiting = true;
  }

  resume(): void {
    this.waiting = false;
    // Not now: coordination.ts may be in the middle of waking others (a PUT's `stored`).
    setImmediate(() => {
      if (this.socket.destroyed) return;
      this.drain();
      this.scheduleFlush();
    });
  }

  sentUnasked(before: number): void {
    const bytes = this.out.bytesEncoded - before;
    if (bytes > 0) this.pushed(bytes);
  }

  /** A parked WAITFOR's answer or a subscription's event (coordination.ts), as resp-coordination.ts encodes it. */
  push(status: StatusCode, flags: number, id: number, epoch: number, arg: number, key: string, body: Uint8Array | null): void {
    if (this.socket.destroyed || this.closing) return;
    answerParked(this, status, flags, id, epoch, arg, key, body);
  }

  /** QUIT: +OK, then the connection ends. */
  quit(): void {
    this.closing = true;
  }
}

/**
 * The table's commands by name length, each name's bytes in upper case: `commandOf` finds a command from its
 * argument's bytes. Built at the first command (every command is in the table by then).
 */
let byLength: { bytes: Buffer; spec: CommandSpec }[][] | null = null;

/**
 * The command a name argument names, in any case, or undefined. Compares bytes, building no string: turning
 * each name into a string and upper-casing it took 2 % of a storage node's CPU under `redis-benchmark -P 16`
 * (`satchel bench resp`, 2026-12-04).
 */
function commandOf(arg: Buffer): CommandSpec | undefined {
  if (byLength === null) {
    byLength = [];
    for (const spec of COMMANDS.values()) (byLength[spec.name.length] ??= []).push({ bytes: Buffer.from(spec.name, 'latin1'), spec });
  }
  const candidates = byLength[arg.length];
  if (candidates === undefined) return undefined;
  next: for (const { bytes, spec } of candidates) {
    for (let i = 0; i < bytes.length; i++) {
      const b = arg[i]!;
      if ((b >= 0x61 && b <= 0x7a ? b - 0x20 : b) !== bytes[i]) continue next;
    }
    return spec;
  }
  return undefined;
}

/** Redis's "with args beginning with:" text: the first arguments quoted, cut short. */
function describeArgs(args: Buffer[]): string {
  return args
    .slice(1, 4)
    .map((a) => `'${oneLine(a.toString('utf8', 0, Math.min(a.length, 64)))}' `)
    .join('');
}
