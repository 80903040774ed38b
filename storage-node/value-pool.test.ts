import test from 'ava';
import { POOLED_MIN, ValuePool } from './value-pool.ts';

test('small sizes come from Node, large ones in whole 64 KiB units, exactly the size asked', (t) => {
  const pool = new ValuePool();
  const small = pool.allocate(1000);
  t.is(small.length, 1000);
  const large = pool.allocate(100_000);
  t.is(large.length, 100_000);
  t.is(large.buffer.byteLength, 2 * POOLED_MIN, 'rounded up to whole units underneath');
});

test('a released buffer is reused for the next allocation of its class, once', (t) => {
  const pool = new ValuePool();
  const first = pool.allocate(200_000);
  pool.release(first);
  t.is(pool.pooledBytes, first.buffer.byteLength);
  t.not(pool.allocate(190_000).buffer, first.buffer, 'another class (3 units, not 4) does not get it');
  const second = pool.allocate(250_000); // 4 units, as 200,000 bytes
  t.is(second.buffer, first.buffer);
  t.is(pool.pooledBytes, 0);
  t.not(pool.allocate(250_000).buffer, first.buffer, 'handed out only once');
});

test('buffers the pool did not make, and releases past the cap, are left to the GC', (t) => {
  const pool = new ValuePool(POOLED_MIN * 2);
  pool.release(Buffer.alloc(100)); // from Node's shared pool
  pool.release(Buffer.allocUnsafeSlow(POOLED_MIN + 1)); // not whole units
  t.is(pool.pooledBytes, 0);
  const three = [pool.allocate(POOLED_MIN), pool.allocate(POOLED_MIN), pool.allocate(POOLED_MIN)];
  for (const buffer of three) pool.release(buffer);
  t.is(pool.pooledBytes, POOLED_MIN * 2, 'capped');
});

test('trim lets go of what sat unused since the last trim, and keeps what was drawn on', (t) => {
  const pool = new ValuePool(POOLED_MIN * 16);
  const four = [1, 2, 3, 4].map(() => pool.allocate(POOLED_MIN));
  for (const buffer of four) pool.release(buffer);
  t.is(pool.pooledBytes, POOLED_MIN * 4);
  t.is(pool.trim(), 0, 'the first period starts empty: nothing sat unused through it');
  // This period: one buffer drawn and not returned; three sat unused the whole time.
  pool.allocate(POOLED_MIN);
  t.is(pool.trim(), POOLED_MIN * 3);
  t.is(pool.pooledBytes, 0);
  // Drawn on and returned within the period: the low water was 0, so nothing is let go of.
  const again = pool.allocate(POOLED_MIN);
  pool.release(again);
  pool.release(pool.allocate(POOLED_MIN * 2));
  t.is(pool.trim(), 0);
  t.is(pool.pooledBytes, POOLED_MIN * 3);
  t.is(pool.trim(), POOLED_MIN * 3, 'unused through the next period');
  t.is(pool.pooledBytes, 0);
  t.not(pool.allocate(POOLED_MIN).buffer, again.buffer, 'a let-go buffer is not handed out again');
});

test('small values: a buffer wholly one value of at most 16 KiB is kept by exact size and handed out once', (t) => {
  const pool = new ValuePool();
  const value = Buffer.allocUnsafeSlow(1024);
  t.true(pool.keepSmall(value));
  t.is(pool.takeSmall(1000), undefined, 'another size does not get it');
  t.is(pool.takeSmall(1024), value);
  t.is(pool.takeSmall(1024), undefined, 'handed out only once');
  t.false(pool.keepSmall(Buffer.allocUnsafe(100)), "a slice of Node's shared pool: other values share its memory");
  t.false(pool.keepSmall(Buffer.allocUnsafeSlow(2048).subarray(0, 1024)), 'part of a larger buffer');
  t.false(pool.keepSmall(Buffer.allocUnsafeSlow(16 * 1024 + 1)), 'over COPY_THRESHOLD: may be lent to a socket');
  t.false(pool.keepSmall(Buffer.allocUnsafeSlow(0)));
  let kept = 0;
  while (pool.keepSmall(Buffer.allocUnsafeSlow(16 * 1024))) kept++;
  t.is(kept, 64, 'at most 1 MiB kept');
});
