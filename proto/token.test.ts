import { randomBytes } from 'node:crypto';
import test from 'ava';
import {
  ADMIN_SUBJECT,
  authorize,
  decodeTicket,
  encodeTicket,
  isJobId,
  SatchelError,
  sameSecret,
  signDriverToken,
  signToken,
  type Ticket,
  TokenVerifier,
  tokenExpiry,
  VIEWER_SUBJECT,
  verifyDriverToken,
  verifyToken,
} from './index.ts';

const secret = randomBytes(32);

test('a signed job token verifies to its job, not as admin', (t) => {
  const token = signToken(secret, 'sort-10g-1a2b3c4d');
  t.regex(token, /^v1\.sort-10g-1a2b3c4d\./);
  t.deepEqual(verifyToken(secret, token), { jobId: 'sort-10g-1a2b3c4d', admin: false, scope: 'internal', expiresAt: Infinity });
});

test('the admin token verifies as admin', (t) => {
  const token = signToken(secret, ADMIN_SUBJECT);
  t.deepEqual(verifyToken(secret, token), { jobId: ADMIN_SUBJECT, admin: true, scope: 'admin', expiresAt: Infinity });
});

test('a token signed with another secret is refused', (t) => {
  t.is(verifyToken(randomBytes(32), signToken(secret, 'job-a')), null);
  t.is(verifyToken(randomBytes(32), signToken(secret, ADMIN_SUBJECT)), null);
});

test('a tampered token is refused', (t) => {
  const token = signToken(secret, 'job-a');
  const [v, subject, mac] = token.split('.') as [string, string, string];
  // Another job's id with this job's MAC.
  t.is(verifyToken(secret, `${v}.job-b.${mac}`), null);
  // Claiming admin with a job's MAC.
  t.is(verifyToken(secret, `${v}.${ADMIN_SUBJECT}.${mac}`), null);
  // One character of the MAC changed.
  const flipped = (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1);
  t.is(verifyToken(secret, `${v}.${subject}.${flipped}`), null);
  // Truncated, extended, wrong version, wrong shape.
  t.is(verifyToken(secret, `${v}.${subject}.${mac.slice(1)}`), null);
  t.is(verifyToken(secret, `${v}.${subject}.${mac}A`), null);
  t.is(verifyToken(secret, `v2.${subject}.${mac}`), null);
  t.is(verifyToken(secret, `${token}.extra`), null);
  t.is(verifyToken(secret, ''), null);
  t.is(verifyToken(secret, 'garbage'), null);
});

test('signToken refuses a subject that is not a job id', (t) => {
  for (const bad of ['', 'UPPER', '-leading-dash', 'has.dot', 'a'.repeat(64), 'white space', '@other']) {
    const error = t.throws(() => signToken(secret, bad));
    t.true(error instanceof SatchelError, bad);
    t.is((error as SatchelError).code, 'BAD_REQUEST');
  }
  t.true(isJobId('a'));
  t.true(isJobId('a'.repeat(63)));
  t.false(isJobId('a'.repeat(64)));
});

const ticket: Ticket = {
  v: 1,
  job: 'sort-10g-1a2b3c4d',
  token: signToken(secret, 'sort-10g-1a2b3c4d'),
  metadata: ['127.0.0.1:7072', '127.0.0.1:7073'],
  controller: '127.0.0.1:7070',
};

test('ticket encode → decode round trip', (t) => {
  const text = encodeTicket(ticket);
  t.true(text.startsWith('st1_'));
  t.regex(text, /^st1_[A-Za-z0-9_-]+$/, 'safe to pass in a URL, an env var or a command line');
  t.deepEqual(decodeTicket(text), ticket);
});

test('decodeTicket drops unknown fields', (t) => {
  const text = `st1_${Buffer.from(JSON.stringify({ ...ticket, extra: 'x' })).toString('base64url')}`;
  t.deepEqual(decodeTicket(text), ticket);
});

const b64 = (value: unknown) => `st1_${Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')}`;

const BAD_TICKETS: [string, unknown][] = [
  ['empty', ''],
  ['no prefix', Buffer.from(JSON.stringify(ticket)).toString('base64url')],
  ['wrong prefix', `st2_${Buffer.from(JSON.stringify(ticket)).toString('base64url')}`],
  ['not JSON', b64('{not json')],
  ['JSON null', b64('null')],
  ['JSON number', b64('42')],
  ['unknown version', b64({ ...ticket, v: 2 })],
  ['missing job', b64({ ...ticket, job: undefined })],
  ['token not a string', b64({ ...ticket, token: 5 })],
  ['missing controller', b64({ ...ticket, controller: undefined })],
  ['no metadata', b64({ ...ticket, metadata: [] })],
  ['metadata not an array', b64({ ...ticket, metadata: '127.0.0.1:1' })],
  ['metadata with a non-string', b64({ ...ticket, metadata: [1] })],
  ['not a string at all', 12345],
  ['undefined', undefined],
];

for (const [name, text] of BAD_TICKETS) {
  test(`bad ticket (${name}) → SatchelError BAD_REQUEST`, (t) => {
    const error = t.throws(() => decodeTicket(text as string));
    t.true(error instanceof SatchelError);
    t.is((error as SatchelError).code, 'BAD_REQUEST');
    t.regex(error!.message, /ticket/);
  });
}

test('expiring tokens: valid until their second, refused after; the expiry is signed; v1 tokens never expire', (t) => {
  const secret = Buffer.alloc(32, 7);
  const now = Date.UTC(2026, 10, 23, 12, 0, 0);
  const token = signToken(secret, 'job-x', now + 60_000);
  t.regex(token, /^v2\.job-x\.[0-9a-z]+\.[A-Za-z0-9_-]{32}$/);
  t.deepEqual(verifyToken(secret, token, now), { jobId: 'job-x', admin: false, scope: 'data', expiresAt: now + 60_000 });
  t.is(tokenExpiry(token), now + 60_000);
  t.is(verifyToken(secret, token, now + 60_000), null, 'expired at its second');
  // Moving the expiry later breaks the MAC.
  const parts = token.split('.');
  const later = [parts[0], parts[1], (parseInt(parts[2]!, 36) + 3600).toString(36), parts[3]].join('.');
  t.is(verifyToken(secret, later, now), null);
  t.is(verifyToken(secret, `v2.job-x.zzzzzzzzzzz.${parts[3]}`, now), null, 'an expiry field past its length');
  t.is(verifyToken(Buffer.alloc(32, 8), token, now), null, 'another secret');
  const forever = signToken(secret, 'job-x');
  t.is(verifyToken(secret, forever, now + 1e12)?.expiresAt, Infinity);
  t.is(tokenExpiry(forever), Infinity);
  t.throws(() => signToken(secret, 'job-x', Number.NaN));
});

test('a ticket carries the cluster CA when it runs with TLS; a malformed tls field is refused', (t) => {
  const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const withTls: Ticket = { ...ticket, tls: { ca } };
  t.deepEqual(decodeTicket(encodeTicket(withTls)), withTls);
  // Unknown fields inside tls are dropped, like the ticket's own.
  t.deepEqual(decodeTicket(b64({ ...ticket, tls: { ca, extra: 1 } })), withTls);
  for (const tls of [null, 'x', {}, { ca: 5 }, { ca: 'not a pem' }, { ca: `-----BEGIN CERTIFICATE-----${'A'.repeat(70_000)}` }]) {
    const error = t.throws(() => decodeTicket(b64({ ...ticket, tls })), undefined, JSON.stringify(tls).slice(0, 40));
    t.true(error instanceof SatchelError);
    t.is((error as SatchelError).code, 'BAD_REQUEST');
    t.regex(error!.message, /ticket.*tls/);
  }
});

test('scopes: the viewer token reads only; driver tokens verify only as driver tokens; keys compare in constant time', (t) => {
  const viewer = signToken(secret, VIEWER_SUBJECT);
  t.is(verifyToken(secret, viewer)?.scope, 'viewer');
  t.false(verifyToken(secret, viewer)!.admin);
  t.throws(() => signToken(secret, VIEWER_SUBJECT, Date.now() + 1000), { code: 'BAD_REQUEST' } as never, 'only job tokens expire');
  const driver = signDriverToken(secret, 'job-x');
  t.regex(driver, /^d1\.job-x\./);
  t.is(verifyDriverToken(secret, driver), 'job-x');
  t.is(verifyToken(secret, driver), null, 'no node or metadata server takes a driver token');
  t.is(verifyDriverToken(secret, signToken(secret, 'job-x')), null, 'nor is a job token a driver token');
  t.is(verifyDriverToken(Buffer.alloc(32, 1), driver), null, 'another secret');
  t.is(verifyDriverToken(secret, driver.slice(0, -1) + (driver.endsWith('A') ? 'B' : 'A')), null, 'tampered');
  t.true(sameSecret('abc', 'abc'));
  t.false(sameSecret('abc', 'abd'));
  t.false(sameSecret('abc', 'abcd'));
});

test('authorize: each token against a call about one job or about the cluster, as the controller and metadata servers ask', (t) => {
  const job = signToken(secret, 'job-a');
  const data = signToken(secret, 'job-a', Date.now() + 60_000);
  const tokens: Record<string, string> = {
    admin: signToken(secret, ADMIN_SUBJECT),
    viewer: signToken(secret, VIEWER_SUBJECT),
    'internal job-a': job,
    'data job-a': data,
    'data job-b': signToken(secret, 'job-b', Date.now() + 60_000),
    driver: signDriverToken(secret, 'job-a'),
    'another secret': signToken(randomBytes(32), ADMIN_SUBJECT),
    garbage: 'garbage',
    'not a string': 5 as unknown as string,
  };
  const jobCall = ['admin', 'data', 'internal'] as const;
  const cases: [string, string, string | null, readonly ('admin' | 'viewer' | 'data' | 'internal')[], string | null][] = [
    ["the admin token opens a job's call", 'admin', 'job-a', jobCall, null],
    ["the job's data token opens its call", 'data job-a', 'job-a', jobCall, null],
    ["the job's internal token opens its call", 'internal job-a', 'job-a', jobCall, null],
    ["another job's token does not", 'data job-b', 'job-a', jobCall, 'token is not valid for this job'],
    ["the viewer token opens no job's call", 'viewer', 'job-a', jobCall, 'token is not valid for this job'],
    ['a driver token is no token here', 'driver', 'job-a', jobCall, 'invalid token'],
    ['a token of another secret', 'another secret', 'job-a', jobCall, 'invalid token'],
    ['garbage', 'garbage', null, ['admin'], 'invalid token'],
    ['not a string', 'not a string', null, ['admin'], 'invalid token'],
    ['the admin token opens an admin call', 'admin', null, ['admin'], null],
    ["a job's token opens no admin call", 'data job-a', null, ['admin'], 'this needs the admin token'],
    ['nor does the viewer token', 'viewer', null, ['admin'], 'this needs the admin token'],
    ['the viewer token opens a read of the cluster', 'viewer', null, ['admin', 'viewer'], null],
    ["a job's token opens no read of the cluster", 'internal job-a', null, ['admin', 'viewer'], 'this needs the admin or viewer token'],
  ];
  for (const [name, which, jobId, scopes, refusal] of cases) {
    const token = tokens[which]!;
    if (refusal === null) {
      t.is(authorize(secret, token, jobId, scopes).scope, verifyToken(secret, token)!.scope, name);
      continue;
    }
    const error = t.throws(() => authorize(secret, token, jobId, scopes), undefined, name);
    t.true(error instanceof SatchelError && error.code === 'UNAUTHORIZED', name);
    t.is(error!.message, refusal, name);
  }
});

test('a TokenVerifier answers as verifyToken, remembers what passed, and still refuses a remembered token once expired', (t) => {
  const verifier = new TokenVerifier(secret);
  const now = Date.now();
  const expiring = signToken(secret, 'job-a', now + 60_000);
  const forever = signToken(secret, 'job-b');
  for (const token of [expiring, forever, signToken(randomBytes(32), 'job-a'), 'v1.job-a.garbage', '']) {
    t.deepEqual(verifier.verify(token, now), verifyToken(secret, token, now), token);
    t.deepEqual(verifier.verify(token, now), verifyToken(secret, token, now), `${token}, asked again`);
  }
  // The same object the second time: the HMAC was not computed again.
  t.is(verifier.verify(forever, now), verifier.verify(forever, now));
  const expiresAt = verifier.verify(expiring, now)!.expiresAt;
  t.truthy(verifier.verify(expiring, expiresAt - 1));
  t.is(verifier.verify(expiring, expiresAt), null);
  t.is(verifier.verify(expiring, expiresAt + 1000), null);
});

test('a TokenVerifier keeps at most 4,096 tokens, forgetting the oldest first', (t) => {
  const verifier = new TokenVerifier(secret);
  const tokens = Array.from({ length: 4097 }, (_, i) => signToken(secret, `job-${i}`));
  for (const token of tokens) t.truthy(verifier.verify(token));
  const remembered = (verifier as unknown as { verified: Map<string, unknown> }).verified;
  t.is(remembered.size, 4096);
  t.false(remembered.has(tokens[0]!));
  t.true(remembered.has(tokens[4096]!));
});
