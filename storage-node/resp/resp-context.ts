/**
 * What a RESP command sees of its connection (resp-session.ts implements it) and what a command is (the table in
 * resp-commands.ts): types only, so the commands and the session do not import each other.
 */
import type net from 'node:net';
import type { RespCommand, RespWriter } from '../../proto/index.ts';
import type { SessionHost } from '../client-connection.ts';
import type { ParkedOwner } from '../coordination.ts';
import type { MaybePromise } from '../engine.ts';
import type { AnnouncedJob } from '../job-table.ts';
import type { SatchelCode } from './resp-errors.ts';

/** A WAITFOR parked in coordination.ts while the connection's later commands wait behind it. */
export interface BlockedRead {
  /** Its id in coordination.ts (per connection). */
  readonly id: number;
  readonly key: string;
  readonly slot: number;
  /** When it answers nil (ms since 1970). */
  readonly deadline: number;
}

/** A connection as coordination.ts answers it (`push`): a woken WAITFOR, a keyspace event. */
export interface RespContext extends ParkedOwner {
  readonly host: SessionHost;
  readonly out: RespWriter;
  readonly socket: net.Socket;
  /** The authenticated job; null before AUTH. */
  readonly job: string | null;
  readonly clientId: number;
  clientName: string;
  libName: string;
  libVersion: string;
  /** SCAN cursors: cursor number → the last key returned. */
  readonly cursors: Map<number, string>;
  nextCursor: number;
  /** The WAITFOR this connection is blocked on. */
  blocked: BlockedRead | null;
  /** PSUBSCRIBE patterns, by the id of the watch each is parked under in coordination.ts. */
  readonly subscriptions: Map<number, string>;
  /** A fresh id for a request parked in coordination.ts. */
  parkedId(): number;
  /** Holds the commands after this one (a blocking read), until `resume`. */
  hold(): void;
  /** Answers the commands held since `hold`, from the next turn of the event loop. */
  resume(): void;
  /** Records what was encoded since `before` (`out.bytesEncoded`) as sent unasked: an event, a woken read. */
  sentUnasked(before: number): void;
  /** The command being answered came after ASKING. */
  readonly askingServed: boolean;
  /** Every key of the command being answered is ASCII (routing checked it): its text is its latin1 decoding. */
  keysAscii: boolean;
  /** An error reply (the whole text, prefix first). */
  error(text: string): void;
  /** Records the reply encoded since `before` (`out.bytesEncoded`) with its status. */
  replied(before: number, status?: number): void;
  /** A Satchel refusal as its Redis error. */
  refuse(code: SatchelCode, message: string): void;
  /** Runs `then` with an engine's result, holding later commands while it is a promise. */
  wait<T>(result: MaybePromise<T>, then: (value: T) => void): void;
  /** AUTH: an error text, or null when admitted. */
  authenticate(username: string | null, password: string): string | null;
  /** Ends the connection after this reply. */
  quit(): void;
}

export interface CommandSpec {
  name: string;
  /** Redis's arity: the argument count with the name, or at least −arity when negative. */
  arity: number;
  /** COMMAND's flags. */
  flags: string[];
  /** Where the keys are (COMMAND's first, last — negative from the end — and step); unset: no keys. */
  keys?: { first: number; last: number; step: number };
  /** Writes: refused on a job over its quota (resp-session.ts `gate`); a replicated job's go to its copies too. */
  write?: boolean;
  /** Answered before AUTH. */
  beforeAuth?: boolean;
  /** Needs the job's checks (expiry, deregistration, the node serving it) though it names no key. */
  needsJob?: boolean;
  /** Answered for a job this node does not serve, from its looked-up placement (resp-foreign.ts): CLUSTER, INFO. */
  answersForeign?: true;
  /** The node's metrics count it as this op. */
  opKind: number;
  summary: string;
  group: string;
  run(s: RespContext, args: Buffer[], command: RespCommand, job: AnnouncedJob): void;
}
