import test from 'ava';
import { encodeKeyList, Flag, Op, type Reply, SatchelError, Status } from '../proto/index.ts';
import { forEachKey, type Request, readVersioned, writeCopy } from './key-copier.ts';

const node = { id: 'n1', address: '127.0.0.1:1' };

function reply(fields: Partial<Reply>): Reply {
  return { status: Status.OK, flags: 0, arg: 0, epoch: 0, body: Buffer.alloc(0), ...fields } as Reply;
}

/** A node holding `keys`, listed `page` at a time (the cursor is the last key of the page before). */
function lister(keys: string[], page: number): { request: Request; lists: string[] } {
  const lists: string[] = [];
  const request: Request = async (_node, op, flags, _key, value, arg) => {
    if (op !== Op.LIST || flags !== Flag.INTERNAL_KEYS || !(arg! > 0)) throw new Error(`unexpected request ${op} ${flags} ${arg}`);
    const after = Buffer.from(value ?? []).toString('utf8');
    lists.push(after);
    const rest = keys.filter((k) => k > after);
    const body = encodeKeyList(rest.slice(0, page));
    return reply({ body: Buffer.from(body), flags: rest.length > page ? Flag.MORE : 0 });
  };
  return { request, lists };
}

test('every key of every page, the cursor moving on, at most `inFlight` at once', async (t) => {
  const keys = Array.from({ length: 23 }, (_, i) => `k${String(i).padStart(2, '0')}`);
  const { request, lists } = lister(keys, 10);
  const seen: string[] = [];
  let running = 0;
  let most = 0;
  await forEachKey(
    request,
    node,
    async (key) => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 1));
      seen.push(key);
      running--;
    },
    4,
  );
  t.deepEqual([...seen].sort(), keys);
  t.deepEqual(lists, ['', 'k09', 'k19']);
  t.is(most, 4);
});

test('one at a time when asked, in order', async (t) => {
  const keys = ['a', 'b', 'c', 'd'];
  const { request } = lister(keys, 3);
  const seen: string[] = [];
  await forEachKey(request, node, async (key) => void seen.push(key), 1);
  t.deepEqual(seen, keys);
});

test('a failing key fails the walk: no key after it starts, no page after it is listed', async (t) => {
  const keys = Array.from({ length: 30 }, (_, i) => `k${String(i).padStart(2, '0')}`);
  const { request, lists } = lister(keys, 10);
  const started: string[] = [];
  const error = await t.throwsAsync(
    forEachKey(
      request,
      node,
      async (key) => {
        started.push(key);
        if (key === 'k03') throw new SatchelError('UNAVAILABLE', 'gone');
      },
      2,
    ),
  );
  t.is((error as SatchelError).code, 'UNAVAILABLE');
  t.deepEqual(lists, [''], 'the second page was never asked for');
  t.true(started.length <= 5, `started ${started.join(',')}`);
});

test("readVersioned: null for a key not held, a counter's increments asked for; writeCopy carries the version and the manifest and increments flags", async (t) => {
  const calls: unknown[][] = [];
  const request: Request = async (_node, op, flags, key, value, arg, epoch) => {
    calls.push([op, flags, key, value === null ? null : Buffer.from(value).toString(), arg, epoch]);
    if (op === Op.GET && key === 'missing') return reply({ status: Status.NOT_FOUND });
    return reply({ body: Buffer.from('v'), flags: Flag.MANIFEST | Flag.INCREMENTS, epoch: 7, arg: 42 });
  };
  t.is(await readVersioned(request, node, 'missing'), null);
  const value = (await readVersioned(request, node, 'k'))!;
  await writeCopy(request, node, 'k', value);
  t.deepEqual(calls, [
    [Op.GET, Flag.VERSION | Flag.INCREMENTS, 'missing', null, undefined, undefined],
    [Op.GET, Flag.VERSION | Flag.INCREMENTS, 'k', null, undefined, undefined],
    [Op.PUT, Flag.COPY | Flag.MANIFEST | Flag.INCREMENTS, 'k', 'v', 42, 7],
  ]);
});
