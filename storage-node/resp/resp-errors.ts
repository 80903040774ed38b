/**
 * Satchel's error codes as Redis error replies. A Redis client decides what to do from the reply's first word
 * (redis-py and ioredis map MOVED, ASK, TRYAGAIN, CLUSTERDOWN, NOAUTH, WRONGPASS, OOM… to their own errors and
 * retries), so each code gets the prefix a Redis server would use for the same situation, and the Satchel code
 * follows the message in brackets for people and logs. The table is the documentation's too (resp/README.md).
 */
import type { SatchelError } from '../../proto/index.ts';

export type SatchelCode = SatchelError['code'];

/** The Redis prefix of each Satchel code, and why that one. */
export const RESP_ERROR_PREFIX: Record<SatchelCode, string> = {
  // The connection's credentials do not open this (a bad token is WRONGPASS at AUTH; an expired one after it).
  UNAUTHORIZED: 'NOAUTH',
  // The job was deregistered: its data is gone for good, so nothing a client retries can help.
  NO_SUCH_JOB: 'ERR',
  // No room on the node, or the job's quota reached: Redis's answer past maxmemory.
  FULL: 'OOM',
  TOO_LARGE: 'ERR',
  // The node cannot serve the job right now (not yet announced, lease lapsed, engine busy): cluster clients wait
  // and retry TRYAGAIN.
  TIMEOUT: 'TRYAGAIN',
  UNAVAILABLE: 'TRYAGAIN',
  BAD_REQUEST: 'ERR',
  // A placement moved on: answered MOVED with the new owner where the node knows it; this is the fallback.
  STALE: 'TRYAGAIN',
  CLOSED: 'ERR',
};

/** The error reply's text (without `-` and CRLF): `PREFIX message [CODE]`, on one line. */
export function respErrorText(code: SatchelCode, message: string): string {
  return `${RESP_ERROR_PREFIX[code]} ${oneLine(message)} [${code}]`;
}

/**
 * A refusal no retry gets past, of a code whose prefix says retry (UNAVAILABLE, TIMEOUT, STALE: TRYAGAIN), when the
 * node knows its answer is final: `ERR message [CODE]`, so a cluster client gives up at once rather than retry in
 * vain (a single-copy job's keys gone with a restarted node: resp-foreign.ts `lostOwner`). Never MOVED, ASK,
 * TRYAGAIN or CLUSTERDOWN, which clients retry.
 */
export function respFinalErrorText(code: SatchelCode, message: string): string {
  return `ERR ${oneLine(message)} [${code}]`;
}

/** Error replies are one line: CR and LF become spaces. */
export function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}
