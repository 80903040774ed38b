/**
 * Reads of a replicated job whose placement keeps remnants (control.proto Generation.remnant): the generations as
 * they were when a node was lost, kept while its copies are restored, and for good when every copy of some keys
 * died. A key none of whose holders there is alive reads as UNAVAILABLE, never as absent; a live holder answers
 * for the rest. Fake nodes and a fake control plane (fake-node.suite.ts).
 */
import test from 'ava';
import { blockKey, keySlot, Op, pickNodes, type WirePlacement } from '../proto/index.ts';
import { rejection } from '../test/helpers/assert.ts';
import { requestsOf, startFakeCluster } from './fake-node.suite.ts';
import { keyLostError } from './lost-keys.ts';

/** `placement` with its generations from `remnantFrom` on made remnants, and `lost` ids marked lost there. */
function withRemnants(placement: WirePlacement, remnantFrom: number, lost: string[]): WirePlacement {
  return {
    ...placement,
    generations: placement.generations.map((g, i) =>
      i < remnantFrom ? g : { remnant: true, nodes: g.nodes.map((n) => (lost.includes(n.id) ? { ...n, lost: true } : n)) },
    ),
  };
}

/** A key whose two holders among `ids` (replicas 2, rendezvous over those nodes) are exactly `wanted`. */
function keyHeldBy(ids: string[], wanted: string[]): string {
  const nodes = ids.map((id) => ({ id, weight: 1 }));
  for (let i = 0; ; i++) {
    const key = `k${i}`;
    const holders = pickNodes(nodes, keySlot(key), 2).map((index) => ids[index]!);
    if (holders.length === wanted.length && wanted.every((id) => holders.includes(id))) return key;
  }
}

test('every holder of a key in a remnant marked lost: the read fails with UNAVAILABLE at once, not null', async (t) => {
  const { nodes, control, placement, attach } = await startFakeCluster(t, { nodes: 5, replicas: 2 });
  const [n0, n1, n2] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
  // The job was on n0, n1, n2; n0 and n1 died together; it now writes to n3, n4 and keeps the old generation.
  const gone = keyHeldBy(['n0', 'n1', 'n2'], ['n0', 'n1']);
  const survived = keyHeldBy(['n0', 'n1', 'n2'], ['n0', 'n2']);
  for (const node of nodes) node.store.epoch = 2;
  n2.store.seed(survived, 'kept');
  control.placement = withRemnants(
    placement(
      2,
      [
        [3, 4],
        [0, 1, 2],
      ],
      2,
    ),
    1,
    ['n0', 'n1'],
  );
  const job = await attach({ timeoutMs: 5_000 });
  await job.put('fresh', 'new'); // at epoch 1: STALE from n0..n2, then the new placement
  t.is(job.epoch, 2);

  const started = Date.now();
  const error = await rejection(t, job.get(gone));
  t.is(error.code, 'UNAVAILABLE');
  t.regex(error.message, /every copy of key .* was lost/);
  t.true(Date.now() - started < 2_000, 'no wait for a new placement: nothing brings the key back');
  t.is(requestsOf(n0, Op.GET).length + requestsOf(n1, Op.GET).length, 0, 'lost nodes are not asked');
  t.is((await rejection(t, job.stat(gone))).code, 'UNAVAILABLE');

  t.is((await job.get(survived))?.toString(), 'kept', 'a live holder in the remnant answers');
  t.is(await job.get(keyHeldBy(['n0', 'n1', 'n2'], ['n1', 'n2'])), null, "a live holder's NOT_FOUND is absent");
  t.is((await job.get('fresh'))?.toString(), 'new');

  // A delete since is newer than anything the lost copies held: the key reads as absent again.
  await job.delete(gone);
  t.is(await job.get(gone), null);

  // A listing would miss the keys only n0 and n1 held.
  const listing = (async () => {
    for await (const _key of job.list('')) {
      // nothing
    }
  })();
  t.is((await rejection(t, listing)).code, 'UNAVAILABLE');
});

test('a remnant whose lost node is not marked (cut off, not restarted): a live holder answers, the dead one costs nothing', async (t) => {
  const { nodes, control, placement, attach } = await startFakeCluster(t, { nodes: 4, replicas: 2 });
  const [n0, n1] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  const key = keyHeldBy(['n0', 'n1'], ['n0', 'n1']);
  for (const node of nodes) node.store.epoch = 2;
  // n0 stopped answering; its copies are being restored: n1 is in the new generations and the remnant.
  n0.store.script(Op.GET, 'hang', { times: 100 });
  n1.store.seed(key, 'v');
  control.placement = withRemnants(
    placement(
      2,
      [
        [1, 2, 3],
        [0, 1],
      ],
      2,
    ),
    1,
    [],
  );
  const job = await attach({ timeoutMs: 3_000 });
  t.is((await job.get(key))?.toString(), 'v');
  const started = Date.now();
  t.is(await job.get(keyHeldBy(['n0', 'n1'], ['n0', 'n1']).concat('-absent')), null);
  t.true(Date.now() - started < 1_500, 'an absent key is not held up by the frozen node');
  // Listing covers the new generations only: n1 holds every remnant key n0 did.
  const listed: string[] = [];
  for await (const k of job.list('')) listed.push(k);
  t.deepEqual(listed, [key]);
});

test('keyLostError names a lost block by the key of its value, not its internal key', (t) => {
  const placement = { jobId: 'j', epoch: 2, generations: [], blockSize: 1, maxValueBytes: 1, replicas: 2 };
  const holders = [
    { id: 'x', address: 'x:1', weight: 1, lost: true },
    { id: 'y', address: 'y:1', weight: 1, lost: true },
  ];
  t.regex(
    keyLostError(placement, blockKey('big', 'v1', 3), holders).message,
    /^every copy of a block of the value of key "big" of job j was lost/,
  );
  t.regex(keyLostError(placement, 'small', holders).message, /^every copy of key "small" of job j was lost: its holders \(x, y\)/);
});
