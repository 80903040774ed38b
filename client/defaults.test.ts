import test from 'ava';
import { DEFAULT_TIMEOUT_MS, DEFAULT_WAIT_MS, ERROR_CODES, SatchelError } from '../proto/index.ts';
import { CLIENT_DEFAULTS, isTransient, METADATA_CATCH_UP, REPLACEMENT_POLL, WATCH_RETRY } from './defaults.ts';
import { batchWindow, resolveJobOptions, waitTimeout } from './options.ts';

test("options left out take the one set of defaults; the timeout is proto's, as the servers'", (t) => {
  t.is(CLIENT_DEFAULTS.timeoutMs, DEFAULT_TIMEOUT_MS);
  t.is(CLIENT_DEFAULTS.waitTimeoutMs, DEFAULT_WAIT_MS);
  t.deepEqual(resolveJobOptions(undefined), { timeoutMs: DEFAULT_TIMEOUT_MS, blockParallelism: 8 });
  t.deepEqual(resolveJobOptions({ timeoutMs: 5 }), { timeoutMs: 5, blockParallelism: 8 });
  t.deepEqual(resolveJobOptions({ blockParallelism: 2 }), { timeoutMs: DEFAULT_TIMEOUT_MS, blockParallelism: 2 });
  t.is(batchWindow(undefined), 1024);
  t.is(waitTimeout({}), DEFAULT_WAIT_MS);
  t.throws(() => resolveJobOptions({ timeoutMs: 0 }), { instanceOf: SatchelError, message: /timeoutMs/ });
});

test('a watch retries every failure but those that end it (job gone, token refused, handle closed), backing off to 2 s', (t) => {
  const ends = ERROR_CODES.filter((code) => !WATCH_RETRY.retries(new SatchelError(code, 'x')));
  t.deepEqual([...ends].sort(), ['CLOSED', 'NO_SUCH_JOB', 'UNAUTHORIZED']);
  t.is(
    WATCH_RETRY.delay(1, () => 0),
    50,
  );
  t.is(
    WATCH_RETRY.delay(10, () => 0.999_999),
    2_000 * (0.5 + 0.999_999 / 2),
  );
});

test('polls for a placement: after STALE from 5 ms, while a copy is replaced never slower than every 200 ms', (t) => {
  t.is(
    METADATA_CATCH_UP.delay(1, () => 0.999_999),
    5 * (0.5 + 0.999_999 / 2),
  );
  t.true(METADATA_CATCH_UP.delay(20) < 200);
  for (let polls = 1; polls < 50; polls++) t.true(REPLACEMENT_POLL.delay(polls) < 200);
  t.true(isTransient(new SatchelError('TIMEOUT', 'x')) && isTransient(new SatchelError('UNAVAILABLE', 'x')));
  t.false(isTransient(new SatchelError('STALE', 'x')) || isTransient(new Error('x')));
});
