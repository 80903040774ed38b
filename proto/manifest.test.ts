import test from 'ava';
import {
  blockKey,
  decodeManifest,
  ERROR_CODES,
  encodeManifest,
  errorCodeOf,
  isErrorCode,
  type Manifest,
  SatchelError,
  Status,
  statusOf,
} from './index.ts';

test('manifest encode → decode round trip', (t) => {
  const cases: Manifest[] = [
    { size: 5 * 1024 * 1024, blockSize: 1024 * 1024, blockCount: 5, version: 'AbC-_9xy' },
    { size: 0, blockSize: 1, blockCount: 0, version: '' },
    { size: 2 ** 40 + 3, blockSize: 0xffffffff, blockCount: 0xffffffff, version: 'é🙂' },
  ];
  for (const m of cases) t.deepEqual(decodeManifest(encodeManifest(m)), m);
});

test('decodeManifest reads a manifest inside a larger buffer (a view of a read chunk)', (t) => {
  const m: Manifest = { size: 3_000_000, blockSize: 1 << 20, blockCount: 3, version: 'v-1' };
  const encoded = encodeManifest(m);
  const big = Buffer.alloc(encoded.length + 50, 0xee);
  encoded.copy(big, 17);
  t.deepEqual(decodeManifest(big.subarray(17, 17 + encoded.length)), m);
  // A plain Uint8Array view works too.
  t.deepEqual(decodeManifest(new Uint8Array(big.buffer, big.byteOffset + 17, encoded.length)), m);
});

test('a corrupt manifest → SatchelError BAD_REQUEST', (t) => {
  const good = encodeManifest({ size: 10, blockSize: 4, blockCount: 3, version: 'x' });
  const wrongVersion = Buffer.from(good);
  wrongVersion[0] = 2;
  for (const bad of [Buffer.alloc(0), good.subarray(0, 19), wrongVersion]) {
    const error = t.throws(() => decodeManifest(bad));
    t.true(error instanceof SatchelError);
    t.is((error as SatchelError).code, 'BAD_REQUEST');
  }
});

test('block keys contain NUL (never a user key) and differ per version and index', (t) => {
  const a = blockKey('map/part', 'v1', 0);
  t.true(a.includes('\u0000'));
  t.true(a.startsWith('map/part\u0000'));
  t.not(a, blockKey('map/part', 'v1', 1));
  t.not(a, blockKey('map/part', 'v2', 0));
});

test('SatchelError carries a code, a name, a message and a cause', (t) => {
  const cause = new Error('root');
  const error = new SatchelError('FULL', 'node full', { cause });
  t.true(error instanceof SatchelError);
  t.true(error instanceof Error);
  t.is(error.code, 'FULL');
  t.is(error.name, 'SatchelError');
  t.is(error.message, 'node full');
  t.is(error.cause, cause);
});

test('instanceof SatchelError works across a copy of the package (the Symbol.for brand)', (t) => {
  // What a second copy of errors.ts would produce: a different class with the same global brand.
  const brand = Symbol.for('satchel.error');
  class CopiedSatchelError extends Error {
    readonly code = 'TIMEOUT';
    get [brand](): true {
      return true;
    }
  }
  const copy = new CopiedSatchelError('from the other copy');
  t.true(copy instanceof SatchelError);
  t.true({ [brand]: true, code: 'FULL', message: 'x' } instanceof SatchelError);
  // Not everything is one.
  t.false(new Error('plain') instanceof SatchelError);
  t.false({ code: 'FULL' } instanceof SatchelError);
  t.false({ [brand]: 'yes' } instanceof SatchelError);
  t.false((null as unknown) instanceof SatchelError);
  t.false(('FULL' as unknown) instanceof SatchelError);
  t.false({ [Symbol('satchel.error')]: true } instanceof SatchelError, 'a local symbol of the same name is not the brand');
});

test('every wire status maps to an error code and back', (t) => {
  for (const code of ERROR_CODES) {
    if (code === 'CLOSED') continue; // client-side only: never on the wire
    t.is(errorCodeOf(statusOf(code)), code, code);
  }
  t.is(statusOf('FULL'), Status.FULL);
  t.is(errorCodeOf(Status.TOO_LARGE), 'TOO_LARGE');
  // An unknown status from a newer node is still a typed error.
  t.is(errorCodeOf(250), 'BAD_REQUEST');
  t.true(isErrorCode('NO_SUCH_JOB'));
  t.false(isErrorCode('NOPE'));
});
