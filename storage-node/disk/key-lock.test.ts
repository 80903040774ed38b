import { setImmediate as turn } from 'node:timers/promises';
import test from 'ava';
import { KeyLocks } from './key-lock.ts';

/** Takes `key`'s lock now, logs `name` once it holds it, holds it for `turns` event-loop turns. */
async function write(locks: KeyLocks, log: string[], key: string, name: string, turns: number): Promise<void> {
  const release = locks.lock(key);
  try {
    if (release.previous !== undefined) await release.previous;
    log.push(`${name}+`);
    for (let i = 0; i < turns; i++) await turn();
    log.push(`${name}-`);
  } finally {
    release();
  }
}

const orders: { name: string; writes: [key: string, name: string, turns: number][]; expected: string[] }[] = [
  {
    name: 'one key: in the order queued, one at a time, however long each holds it',
    writes: [
      ['k', 'a', 3],
      ['k', 'b', 0],
      ['k', 'c', 1],
    ],
    expected: ['a+', 'a-', 'b+', 'b-', 'c+', 'c-'],
  },
  {
    name: 'different keys: at once',
    writes: [
      ['k', 'a', 2],
      ['j', 'b', 0],
      ['i', 'c', 1],
    ],
    expected: ['a+', 'b+', 'b-', 'c+', 'c-', 'a-'],
  },
  {
    name: 'two keys interleaved: each key in its own order',
    writes: [
      ['k', 'a', 2],
      ['j', 'b', 3],
      ['k', 'c', 0],
      ['j', 'd', 0],
    ],
    expected: ['a+', 'b+', 'a-', 'c+', 'c-', 'b-', 'd+', 'd-'],
  },
];
for (const c of orders) {
  test(`key locks: ${c.name}`, async (t) => {
    const locks = new KeyLocks();
    const log: string[] = [];
    await Promise.all(c.writes.map(([key, name, turns]) => write(locks, log, key, name, turns)));
    t.deepEqual(log, c.expected);
    t.is(locks.size, 0, 'nothing left queued');
  });
}

test('key locks: a GET finds the write queued before it and waits for it, not for one queued after', async (t) => {
  const locks = new KeyLocks();
  t.is(locks.pending('k'), undefined);
  const log: string[] = [];
  const first = write(locks, log, 'k', 'put', 2);
  const pending = locks.pending('k');
  t.not(pending, undefined);
  const read = pending!.then(() => log.push('get'));
  const second = write(locks, log, 'k', 'delete', 2);
  await Promise.all([first, read, second]);
  t.deepEqual(log, ['put+', 'put-', 'get', 'delete+', 'delete-']);
});

test('key locks: a place abandoned before it was reached (a refused write) lets the next in only after the one ahead', async (t) => {
  const locks = new KeyLocks();
  const log: string[] = [];
  const first = write(locks, log, 'k', 'a', 2);
  const refused = locks.lock('k');
  const third = write(locks, log, 'k', 'c', 0);
  locks.abandon(refused); // while `a` still holds the lock
  await Promise.all([first, third]);
  t.deepEqual(log, ['a+', 'a-', 'c+', 'c-']);
  t.is(locks.size, 0);
});
