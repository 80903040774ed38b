import test from 'ava';
import { randomBytes } from 'node:crypto';
import { ADMIN_SUBJECT, SatchelError, decodeTicket, encodeTicket, isJobId, signToken, verifyToken, type Ticket } from './index.ts';

const secret = randomBytes(32);

test('a signed job token verifies to its job, not as admin', (t) => {
  const token = signToken(secret, 'sort-10g-1a2b3c4d');
  t.regex(token, /^v1\.sort-10g-1a2b3c4d\./);
  t.deepEqual(verifyToken(secret, token), { jobId: 'sort-10g-1a2b3c4d', admin: false });
});

test('the admin token verifies as admin', (t) => {
  const token = signToken(secret, ADMIN_SUBJECT);
  t.deepEqual(verifyToken(secret, token), { jobId: ADMIN_SUBJECT, admin: true });
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
