import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SatchelError } from './errors.ts';

/**
 * Tokens, each an HMAC-SHA256 under the cluster secret, so storage nodes and metadata servers (which hold the
 * secret) check them with no call to anyone. What each opens is its scope:
 * - `v2.<jobId>.<expiry>.<mac>` (`data`): a job's data and nothing else, until its expiry (seconds since 1970,
 *   base 36). What tickets carry and functions present.
 * - `v1.<jobId>.<mac>` (`internal`): never expires; only holders of the secret make them (the controller for its
 *   copies, tests and tools). Opens what the controller's own work needs besides data: internal keys, copies.
 * - `v1.@admin.<mac>` (`admin`): what the controller uses to reach nodes (announcing, dropping a job's data).
 * - `v1.@viewer.<mac>` (`viewer`): read-only console access; no node or metadata server accepts it.
 * - `d1.<jobId>.<mac>` (driver tokens, `verifyDriverToken`): renew, grow and deregister one job, at the
 *   controller only; nodes and metadata servers refuse them, so a driver's credential never opens data and a
 *   function's never ends the job.
 */
export const ADMIN_SUBJECT = '@admin';
export const VIEWER_SUBJECT = '@viewer';

export type TokenScope = 'admin' | 'viewer' | 'internal' | 'data';
const JOB_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface TokenSubject {
  /** The job the token opens; the subject (`@admin`, `@viewer`) for the others. */
  jobId: string;
  admin: boolean;
  scope: TokenScope;
  /** When the token stops opening anything (ms since 1970); Infinity for one that never expires. */
  expiresAt: number;
}

function mac(secret: Uint8Array, subject: string, expiry?: string, driver = false): string {
  const signed = driver
    ? `satchel-token:d1:${subject}`
    : expiry === undefined
      ? `satchel-token:v1:${subject}`
      : `satchel-token:v2:${subject}:${expiry}`;
  return createHmac('sha256', secret).update(signed).digest('base64url').slice(0, 32);
}

export function isJobId(value: string): boolean {
  return JOB_ID.test(value);
}

/** A token for `subject`; with `expiresAt` (ms since 1970, rounded up to the second) one that expires then. */
export function signToken(secret: Uint8Array, subject: string, expiresAt?: number): string {
  if (subject !== ADMIN_SUBJECT && subject !== VIEWER_SUBJECT && !isJobId(subject))
    throw new SatchelError('BAD_REQUEST', `bad job id ${JSON.stringify(subject)}`);
  if (expiresAt === undefined) return `v1.${subject}.${mac(secret, subject)}`;
  if (!isJobId(subject)) throw new SatchelError('BAD_REQUEST', 'only job tokens expire');
  if (!Number.isFinite(expiresAt) || expiresAt <= 0) throw new SatchelError('BAD_REQUEST', 'a token expiry must be a time after 1970');
  const expiry = Math.ceil(expiresAt / 1000).toString(36);
  return `v2.${subject}.${expiry}.${mac(secret, subject, expiry)}`;
}

/**
 * The subject a token speaks for, or null when it is malformed, not signed with this secret, or expired at
 * `now`.
 */
export function verifyToken(secret: Uint8Array, token: string, now = Date.now()): TokenSubject | null {
  if (typeof token !== 'string' || token.length > 256) return null;
  const parts = token.split('.');
  const v2 = parts.length === 4 && parts[0] === 'v2';
  if (!v2 && !(parts.length === 3 && parts[0] === 'v1')) return null;
  const subject = parts[1]!;
  const special = subject === ADMIN_SUBJECT || subject === VIEWER_SUBJECT;
  if (!(special ? !v2 : isJobId(subject))) return null;
  let expiresAt = Infinity;
  if (v2) {
    if (!/^[0-9a-z]{1,10}$/.test(parts[2]!)) return null;
    expiresAt = parseInt(parts[2]!, 36) * 1000;
  }
  const given = Buffer.from(parts[v2 ? 3 : 2]!);
  const expected = Buffer.from(mac(secret, subject, v2 ? parts[2] : undefined));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  if (now >= expiresAt) return null;
  const scope: TokenScope = subject === ADMIN_SUBJECT ? 'admin' : subject === VIEWER_SUBJECT ? 'viewer' : v2 ? 'data' : 'internal';
  return { jobId: subject, admin: scope === 'admin', scope, expiresAt };
}

/** Tokens a verifier remembers (`TokenVerifier`): ~100 bytes each. */
const VERIFIED_KEPT = 4096;

/**
 * Checks tokens against one secret and remembers the ones that passed: a storage node is handed the same job
 * token by every invocation of every function of the job, and a new HMAC per connection was ~6 % of a node's
 * CPU answering one GET per connection (perf/RESULTS.md, 2026-12-07 evening). Expiry is checked at every use;
 * the oldest remembered token is forgotten first. Only tokens that verified are kept, so a stranger cannot fill it.
 */
export class TokenVerifier {
  private readonly verified = new Map<string, TokenSubject>();

  constructor(private readonly secret: Uint8Array) {}

  verify(token: string, now = Date.now()): TokenSubject | null {
    const known = this.verified.get(token);
    if (known !== undefined) {
      if (now < known.expiresAt) return known;
      this.verified.delete(token);
      return null;
    }
    const subject = verifyToken(this.secret, token, now);
    if (subject === null) return null;
    if (this.verified.size >= VERIFIED_KEPT) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, subject);
    return subject;
  }
}

/** Scopes that speak for the whole cluster rather than one job. */
const CLUSTER_SCOPES: ReadonlySet<TokenScope> = new Set(['admin', 'viewer']);

/**
 * A control-plane call's token check, the one both the controller and the metadata servers make: the token's
 * subject when its scope is one of `scopes` and, for a job's scopes (`data`, `internal`), it is a token of
 * `jobId`; otherwise UNAUTHORIZED. `jobId` null: a call about the cluster, which no job's token opens.
 */
export function authorize(secret: Uint8Array, token: string, jobId: string | null, scopes: readonly TokenScope[]): TokenSubject {
  const subject = typeof token === 'string' ? verifyToken(secret, token) : null;
  if (subject === null) throw new SatchelError('UNAUTHORIZED', 'invalid token');
  if (scopes.includes(subject.scope) && (CLUSTER_SCOPES.has(subject.scope) || (jobId !== null && subject.jobId === jobId))) return subject;
  if (jobId !== null) throw new SatchelError('UNAUTHORIZED', 'token is not valid for this job');
  throw new SatchelError('UNAUTHORIZED', `this needs the ${scopes.filter((s) => CLUSTER_SCOPES.has(s)).join(' or ') || 'admin'} token`);
}

/** The driver token of `jobId`: renews, grows and deregisters it at the controller, and opens nothing else. */
export function signDriverToken(secret: Uint8Array, jobId: string): string {
  if (!isJobId(jobId)) throw new SatchelError('BAD_REQUEST', `bad job id ${JSON.stringify(jobId)}`);
  return `d1.${jobId}.${mac(secret, jobId, undefined, true)}`;
}

/** The job a driver token is for, or null when it is not one signed with this secret. */
export function verifyDriverToken(secret: Uint8Array, token: string): string | null {
  if (typeof token !== 'string' || token.length > 256) return null;
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== 'd1' || !isJobId(parts[1]!)) return null;
  const given = Buffer.from(parts[2]!);
  const expected = Buffer.from(mac(secret, parts[1]!, undefined, true));
  return given.length === expected.length && timingSafeEqual(given, expected) ? parts[1]! : null;
}

/** Whether `given` is `expected`, in time that does not depend on where they differ (tokens, keys). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** When a token says it expires (ms since 1970), without checking it; Infinity for one that never does. */
export function tokenExpiry(token: string): number {
  const parts = token.split('.');
  return parts.length === 4 && parts[0] === 'v2' && /^[0-9a-z]{1,10}$/.test(parts[2]!) ? parseInt(parts[2]!, 36) * 1000 : Infinity;
}

/** What a function needs to reach its job: handed out by registerJob, passed to Satchel.attach. */
export interface Ticket {
  v: 1;
  job: string;
  token: string;
  /** Metadata servers (host:port) that serve the job's placement. */
  metadata: string[];
  /** The controller (host:port), for deregistration and lease renewal. */
  controller: string;
  /**
   * The job's placement when the ticket was made, so a function can start without asking a metadata server
   * (a first gRPC call costs a new process milliseconds). A stale one is corrected by the first STALE answer.
   */
  placement?: TicketPlacement;
  /**
   * Present when the cluster runs with TLS: the CA (PEM) the nodes', metadata servers' and controller's
   * certificates are signed by. A function connects over TLS and checks every server against it.
   */
  tls?: { ca: string };
}

/** The largest CA a ticket may carry (PEM text): a bundle of a few certificates. */
const MAX_TICKET_CA_CHARS = 64 * 1024;

/** The placement as a ticket carries it (the control plane's WirePlacement, repeated here: proto/ stays flat). */
export interface TicketPlacement {
  jobId: string;
  epoch: number;
  generations: { nodes: { id: string; address: string; weight: number }[] }[];
  blockSize: number;
  maxValueBytes: number;
  replicas?: number;
}

export function encodeTicket(ticket: Ticket): string {
  return `st1_${Buffer.from(JSON.stringify(ticket)).toString('base64url')}`;
}

export function decodeTicket(text: string): Ticket {
  const bad = (why: string) => new SatchelError('BAD_REQUEST', `not a Satchel ticket: ${why}`);
  if (typeof text !== 'string' || !text.startsWith('st1_')) throw bad('missing st1_ prefix');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text.slice(4), 'base64url').toString('utf8'));
  } catch (cause) {
    throw new SatchelError('BAD_REQUEST', 'not a Satchel ticket: undecodable', { cause });
  }
  const t = parsed as Partial<Ticket> | null;
  if (t === null || typeof t !== 'object' || t.v !== 1) throw bad('unknown version');
  if (typeof t.job !== 'string' || typeof t.token !== 'string' || typeof t.controller !== 'string') throw bad('missing fields');
  if (!Array.isArray(t.metadata) || t.metadata.length === 0 || !t.metadata.every((m) => typeof m === 'string')) {
    throw bad('no metadata address');
  }
  // A job token names its job: a ticket pairing one job with another's token is refused here, before any
  // call (the nodes would scope the connection to the token's job, not the ticket's).
  if (t.token.split('.')[1] !== t.job) {
    throw new SatchelError('UNAUTHORIZED', `the ticket's token is not a token of job ${t.job}`);
  }
  const ticket: Ticket = { v: 1, job: t.job, token: t.token, metadata: t.metadata, controller: t.controller };
  if (t.placement !== undefined) {
    if (!isTicketPlacement(t.placement, t.job)) throw bad('malformed placement');
    ticket.placement = t.placement;
  }
  if (t.tls !== undefined) {
    const ca = (t.tls as { ca?: unknown } | null)?.ca;
    if (typeof ca !== 'string' || !ca.includes('-----BEGIN CERTIFICATE-----') || ca.length > MAX_TICKET_CA_CHARS) {
      throw bad('malformed tls: expected { ca: a PEM certificate }');
    }
    ticket.tls = { ca };
  }
  return ticket;
}

function isTicketPlacement(p: unknown, job: string): p is TicketPlacement {
  const v = p as TicketPlacement | null;
  const finite = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  return (
    typeof v === 'object' &&
    v !== null &&
    v.jobId === job &&
    finite(v.epoch) &&
    finite(v.blockSize) &&
    v.blockSize > 0 &&
    finite(v.maxValueBytes) &&
    (v.replicas === undefined || (Number.isInteger(v.replicas) && v.replicas >= 0 && v.replicas <= 3)) &&
    Array.isArray(v.generations) &&
    v.generations.every(
      (g) =>
        Array.isArray(g?.nodes) && g.nodes.every((n) => typeof n?.id === 'string' && typeof n.address === 'string' && finite(n.weight)),
    )
  );
}
