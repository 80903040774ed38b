import test from 'ava';
import { Backoff, retry } from './backoff.ts';
import { SatchelError } from './errors.ts';

test('delays double from the base up to the cap, each scaled into [half, whole)', (t) => {
  const backoff = new Backoff({ baseMs: 100, capMs: 1_000 });
  const rows: [failures: number, ceiling: number][] = [
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
    [5, 1_000],
    [60, 1_000],
  ];
  for (const [failures, ceiling] of rows) {
    t.is(
      backoff.delay(failures, () => 0),
      ceiling / 2,
      `floor after ${failures}`,
    );
    t.is(
      backoff.delay(failures, () => 0.999_999),
      ceiling * (0.5 + 0.999_999 / 2),
      `top after ${failures}`,
    );
  }
});

test('retries only the codes it names, transient ones by default', (t) => {
  const transient = new Backoff();
  t.true(transient.retries(new SatchelError('UNAVAILABLE', 'x')));
  t.true(transient.retries(new SatchelError('TIMEOUT', 'x')));
  t.false(transient.retries(new SatchelError('UNAUTHORIZED', 'x')));
  t.false(transient.retries(new Error('plain')));
  t.true(new Backoff({ retryOn: ['FULL'] }).retries(new SatchelError('FULL', 'x')));
});

test('retry: a transient failure is tried again, a permanent one thrown at once, the last after the attempts', async (t) => {
  let calls = 0;
  const seen: number[] = [];
  t.is(
    await retry(
      async (n) => {
        calls++;
        if (n < 3) throw new SatchelError('UNAVAILABLE', 'down');
        return 'ok';
      },
      { attempts: 5, baseMs: 1, onRetry: (_e, n) => seen.push(n) },
    ),
    'ok',
  );
  t.is(calls, 3);
  t.deepEqual(seen, [1, 2]);

  calls = 0;
  await t.throwsAsync(
    retry(
      async () => {
        calls++;
        throw new SatchelError('UNAUTHORIZED', 'no');
      },
      { attempts: 5, baseMs: 1 },
    ),
    { code: 'UNAUTHORIZED' } as never,
  );
  t.is(calls, 1);

  calls = 0;
  await t.throwsAsync(
    retry(
      async (n) => {
        calls++;
        throw new SatchelError('TIMEOUT', `try ${n}`);
      },
      { attempts: 3, baseMs: 1 },
    ),
    { message: 'try 3' },
  );
  t.is(calls, 3);
});
