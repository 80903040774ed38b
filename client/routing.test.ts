/**
 * The client's answers to a node that says no, exactly, against fake nodes and a fake control plane
 * (fake-node.suite.ts): STALE (refresh, then the request again where the key now goes), FULL (grow, then the
 * request again on the new generation), NOT_FOUND (absent only when every generation says so), a node that
 * never answers (TIMEOUT) or drops the connection (UNAVAILABLE), and the copies of a replicated job.
 */
import test from 'ava';
import { Flag, keySlot, Op, pickNodes, Status } from '../proto/index.ts';
import { rejection } from '../test/helpers/assert.ts';
import { requestsOf, startFakeCluster } from './fake-node.suite.ts';

const TOKEN = 'v1.fake-job.fake';

test('STALE: the client asks the metadata server where the job is now and sends the request there', async (t) => {
  const {
    nodes: [n0, n1],
    control,
    placement,
    attach,
  } = await startFakeCluster(t, { nodes: 2, generations: [[0]] });
  const job = await attach({ timeoutMs: 2_000 });
  // The job moved from n0 to n1 at epoch 2, and n0 was told: it refuses requests routed by epoch 1.
  n0!.store.epoch = 2;
  control.placement = placement(2, [[1]]);
  await job.put('k', 'v');
  // The common path hands the STALE to `call`, which sends the PUT once more before it refreshes on its STALE.
  t.deepEqual(
    requestsOf(n0!, Op.PUT).map((r) => r.epoch),
    [1, 1],
    'PUTs at the old node, answered STALE',
  );
  t.deepEqual(
    requestsOf(n1!, Op.PUT).map((r) => [r.key, r.epoch, r.value.toString()]),
    [['k', 2, 'v']],
  );
  t.is(control.callsOf('GetPlacement').length, 1);
  t.deepEqual(control.callsOf('GetPlacement')[0], { jobId: 'fake-job', token: TOKEN });
  t.is(job.epoch, 2);
  t.is(n0!.store.entries.size, 0);
});

test('STALE on every try: the call fails UNAVAILABLE (transient), never with a code the client does not document', async (t) => {
  const {
    nodes: [n0],
    attach,
  } = await startFakeCluster(t, { nodes: 1, generations: [[0]] });
  const job = await attach({ timeoutMs: 2_000 });
  n0!.store.script(Op.PUT, { status: Status.STALE, arg: 1, epoch: 1 }, { times: 100 });
  const error = await rejection(t, job.put('k', 'v'));
  t.is(error.code, 'UNAVAILABLE');
  t.regex(error.message, /placement kept changing/);
});

test('list on a placement the job moved on from (STALE at LIST): the client looks it up again and lists the new one', async (t) => {
  const {
    nodes: [n0, n1],
    control,
    placement,
    attach,
  } = await startFakeCluster(t, { nodes: 2, generations: [[0]] });
  const job = await attach({ timeoutMs: 2_000 });
  n0!.store.epoch = 2;
  n1!.store.epoch = 2;
  for (const key of ['a', 'b', 'c']) n1!.store.seed(key, key);
  control.placement = placement(2, [[1]]);
  const keys: string[] = [];
  for await (const key of job.list('')) keys.push(key);
  t.deepEqual(keys, ['a', 'b', 'c']);
  t.is(job.epoch, 2);
  t.deepEqual(
    requestsOf(n0!, Op.LIST).map((r) => r.epoch),
    [1],
  );
});

test("STALE while the metadata server still has the old placement: the client asks again until it has the node's epoch", async (t) => {
  const {
    nodes: [n0, n1],
    control,
    placement,
    attach,
  } = await startFakeCluster(t, { nodes: 2, generations: [[0]] });
  const job = await attach({ timeoutMs: 2_000 });
  n0!.store.epoch = 2;
  control.placement = placement(2, [[1]]);
  // The controller tells the nodes first: the metadata server answers with epoch 1 twice more.
  control.behind.push(placement(1, [[0]]), placement(1, [[0]]));
  t.is(await job.get('k'), null);
  t.is(control.callsOf('GetPlacement').length, 3);
  t.deepEqual(
    requestsOf(n0!, Op.GET).map((r) => r.epoch),
    [1, 1],
    'the old node is not asked again after the first refresh',
  );
  t.deepEqual(
    requestsOf(n1!, Op.GET).map((r) => r.epoch),
    [2],
  );
});

test('FULL: the client asks the controller to grow the job past the full node, then writes to the new generation', async (t) => {
  const {
    nodes: [n0, n1],
    control,
    placement,
    attach,
  } = await startFakeCluster(t, { nodes: 2, generations: [[0]] });
  n0!.store.script(Op.PUT, { status: Status.FULL, body: Buffer.from('node full') }, { times: Infinity });
  control.onGrow = () => placement(2, [[1], [0]]);
  const job = await attach({ timeoutMs: 2_000 });
  await job.put('k', 'v');
  // The common path hands a FULL to `call`, which sends the PUT once more and grows on its FULL.
  t.deepEqual(
    requestsOf(n0!, Op.PUT).map((r) => r.epoch),
    [1, 1],
  );
  t.deepEqual(control.callsOf('GrowJob'), [{ jobId: 'fake-job', token: TOKEN, fullNodeId: 'n0', epoch: 1 }]);
  t.deepEqual(
    requestsOf(n1!, Op.PUT).map((r) => [r.key, r.epoch]),
    [['k', 2]],
  );
  t.is(job.epoch, 2);
  t.is(control.callsOf('GetPlacement').length, 0, 'GrowJob answers with the placement');
  // Reads find it in the newest generation; the older one is asked only for what the newest lacks.
  t.is((await job.get('k'))?.toString(), 'v');
  t.is(requestsOf(n0!, Op.GET).length, 0);
});

test('replicas: FULL from the copy, not the primary: the client asks to grow past that node', async (t) => {
  const { nodes, placement, control, attach } = await startFakeCluster(t, { nodes: 3, generations: [[0, 1]], replicas: 2 });
  const wire = placement(1, [[0, 1]], 2).generations[0]!.nodes;
  const [primaryAt, copyAt] = pickNodes(wire, keySlot('k'), 2);
  const copy = nodes[copyAt!];
  copy!.store.script(Op.PUT, { status: Status.FULL, body: Buffer.from('node full') }, { key: 'k', times: Infinity });
  // The new generation leaves the full copy out.
  control.onGrow = () =>
    placement(
      2,
      [
        [primaryAt!, 2],
        [0, 1],
      ],
      2,
    );
  const job = await attach({ timeoutMs: 2_000 });
  await job.put('k', 'v');
  t.deepEqual(
    control.callsOf('GrowJob').map((c) => c.fullNodeId),
    [copy!.id],
  );
});

test('FULL from calls in flight together: one GrowJob for all of them', async (t) => {
  const {
    nodes: [n0, n1],
    control,
    placement,
    attach,
  } = await startFakeCluster(t, { nodes: 2, generations: [[0]] });
  n0!.store.script(Op.PUT, { status: Status.FULL }, { times: Infinity });
  const keys = ['a', 'b', 'c', 'd'];
  control.onGrow = async () => {
    await n0!.received(keys.length * 2); // every call has met its second FULL before the controller answers
    return placement(2, [[1], [0]]);
  };
  const job = await attach({ timeoutMs: 2_000 });
  await Promise.all(keys.map((key) => job.put(key, key)));
  t.is(control.callsOf('GrowJob').length, 1);
  t.deepEqual(
    requestsOf(n1!, Op.PUT)
      .map((r) => r.key)
      .sort(),
    keys,
  );
});

test('FULL when the cluster has no room either: the caller gets FULL, after one GrowJob', async (t) => {
  const {
    nodes: [n0, n1],
    control,
    attach,
  } = await startFakeCluster(t, { nodes: 2, generations: [[0]] });
  n0!.store.script(Op.PUT, { status: Status.FULL }, { times: Infinity });
  control.onGrow = () => 'FULL';
  const job = await attach({ timeoutMs: 2_000 });
  t.is((await rejection(t, job.put('k', 'v'))).code, 'FULL');
  t.is(control.callsOf('GrowJob').length, 1);
  t.is(requestsOf(n1!, Op.PUT).length, 0);
  t.is(job.epoch, 1);
});

test('NOT_FOUND: a key is absent only when every generation says so; an older one answers for a key the newest lacks', async (t) => {
  const {
    nodes: [n0, n1],
    control,
    attach,
  } = await startFakeCluster(t, { nodes: 2, generations: [[1], [0]] });
  n0!.store.seed('old', 'written before the job grew');
  const job = await attach({ timeoutMs: 2_000 });
  t.is((await job.get('old'))?.toString(), 'written before the job grew');
  t.deepEqual(await job.stat('old'), { key: 'old', size: 27, blocks: 1 });
  t.is(await job.get('nowhere'), null);
  t.is(await job.stat('nowhere'), null);
  // Newest generation first, then the older one, for each call. GET's common path hands the NOT_FOUND to `call`,
  // which asks the newest generation once more before the older ones.
  const asked = (key: string) =>
    [n1!, n0!].map((node) => node.requests.filter((r) => r.key === key && r.code !== Op.HELLO).map((r) => r.code));
  t.deepEqual(asked('old'), [
    [Op.GET, Op.GET, Op.STAT],
    [Op.GET, Op.STAT],
  ]);
  t.deepEqual(asked('nowhere'), [
    [Op.GET, Op.GET, Op.STAT],
    [Op.GET, Op.STAT],
  ]);
  t.is(control.calls.length, 0);
});

test('NOT_FOUND from the only generation: null at once, one request', async (t) => {
  const {
    nodes: [n0],
    control,
    attach,
  } = await startFakeCluster(t, { nodes: 1 });
  const job = await attach({ timeoutMs: 2_000 });
  t.is(await job.get('k'), null);
  t.is(requestsOf(n0!, Op.GET).length, 1);
  t.is(control.calls.length, 0);
});

test("NOT_FOUND with a tombstone: an older generation's copy counts only when it is newer than the delete", async (t) => {
  const {
    nodes: [n0, n1],
    attach,
  } = await startFakeCluster(t, { nodes: 2, generations: [[1], [0]] });
  // Deleted in the newest generation at version (2, 5); the older generation still has copies.
  n1!.store.seedDeleted('deleted', 2, 5);
  n0!.store.seed('deleted', 'before the delete', { epoch: 2, seq: 4 });
  n1!.store.seedDeleted('rewritten', 2, 5);
  n0!.store.seed('rewritten', 'after the delete', { epoch: 2, seq: 6 });
  const job = await attach({ timeoutMs: 2_000 });
  t.is(await job.get('deleted'), null);
  t.is((await job.get('rewritten'))?.toString(), 'after the delete');
  const reads = (key: string) =>
    requestsOf(n0!, Op.GET)
      .filter((r) => r.key === key)
      .map((r) => r.flags);
  t.deepEqual(reads('deleted'), [Flag.VERSION], 'only its version asked, never its value');
  t.deepEqual(reads('rewritten'), [Flag.VERSION, 0]);
});

test('a node that never answers: TIMEOUT after timeoutMs, no placement lookup, and the connection carries on', async (t) => {
  const {
    nodes: [n0],
    control,
    attach,
  } = await startFakeCluster(t, { nodes: 1 });
  n0!.store.script(Op.GET, 'hang', { key: 'slow' });
  n0!.store.script(Op.DELETE, 'hang', { key: 'slow' });
  const job = await attach({ timeoutMs: 500 });
  await job.put('k', 'v'); // connected: what follows times only the request
  for (const call of [() => job.get('slow'), () => job.delete('slow')]) {
    const started = Date.now();
    const error = await rejection(t, call());
    const took = Date.now() - started;
    t.is(error.code, 'TIMEOUT');
    // The whole timeoutMs: a single copy's request is not cut to a share of it (client/deadline.ts).
    t.true(took >= 500 && took < 5_000, `${took} ms`);
  }
  t.is(control.calls.length, 0, 'a single copy that times out is not a node to replace');
  t.is((await job.get('k'))?.toString(), 'v');
  t.is(n0!.sockets.size, 1, 'on the same connection');
});

test('replicas: both holders frozen, get, put, incr and waitFor each end TIMEOUT within timeoutMs, retries and waits for a new placement included', async (t) => {
  const {
    nodes: [n0, n1],
    attach,
  } = await startFakeCluster(t, { nodes: 2, replicas: 2 });
  for (const node of [n0!, n1!]) {
    for (const op of [Op.GET, Op.PUT, Op.INCR, Op.WAIT]) node.store.script(op, 'hang', { key: 'frozen', times: Infinity });
  }
  const job = await attach({ timeoutMs: 1_000 });
  await job.put('k', 'v'); // connected to both: what follows times only the calls
  const calls = [
    () => job.get('frozen'),
    () => job.put('frozen', 'x'),
    () => job.incr('frozen', 1),
    () => job.waitFor('frozen', { timeoutMs: 1_000 }),
  ];
  for (const call of calls) {
    const started = Date.now();
    const error = await rejection(t, call());
    const took = Date.now() - started;
    t.is(error.code, 'TIMEOUT');
    // Before, a get asked one holder, then the other, then waited for a new placement: at least 3 s here.
    // (It may end a little early: a wait for a new placement that would overrun the call's time is not started.)
    t.true(took >= 500 && took < 2_000, `${took} ms`);
  }
  t.is((await job.get('k'))?.toString(), 'v');
});

test('a node that drops the connection: UNAVAILABLE after one placement lookup; the next placement is used when there is one', async (t) => {
  const {
    nodes: [n0, n1],
    control,
    placement,
    attach,
  } = await startFakeCluster(t, { nodes: 2, generations: [[0]] });
  n0!.store.script(Op.GET, 'close', { times: 2 });
  const job = await attach({ timeoutMs: 2_000 });
  t.is((await rejection(t, job.get('k'))).code, 'UNAVAILABLE');
  t.is(control.callsOf('GetPlacement').length, 1);
  // Drained meanwhile: the lookup after the next loss finds the job on n1.
  control.placement = placement(2, [[1]]);
  n1!.store.seed('k', 'moved');
  t.is((await job.get('k'))?.toString(), 'moved');
  t.is(control.callsOf('GetPlacement').length, 2);
  t.is(job.epoch, 2);
});

test('a node that refuses the job: after one lookup, UNAVAILABLE saying the keys are gone when the placement marks the node lost', async (t) => {
  const {
    nodes: [n0],
    control,
    placement,
    attach,
  } = await startFakeCluster(t, { nodes: 1 });
  const refusal = { status: Status.UNAVAILABLE, body: Buffer.from('node n0 does not hold job fake-job') };
  n0!.store.script(Op.GET, refusal, { times: 4 });
  const job = await attach({ timeoutMs: 2_000 });
  // Not marked (an announcement on its way): the node's own refusal.
  const notYet = await rejection(t, job.get('k'));
  t.is(notYet.code, 'UNAVAILABLE');
  t.regex(notYet.message, /does not hold job fake-job/);
  // The node restarted and the job keeps one copy: the controller marks it lost at the same epoch.
  const marked = placement(1, [[0]]);
  marked.generations[0]!.nodes[0]!.lost = true;
  control.placement = marked;
  const lookups = control.callsOf('GetPlacement').length;
  const gone = await rejection(t, job.get('k'));
  t.is(gone.code, 'UNAVAILABLE', 'the code the node answered');
  t.is(gone.message, 'node n0 restarted since job fake-job was placed on it: the keys it held are gone, and the job keeps one copy');
  t.is(control.callsOf('GetPlacement').length, lookups + 1, 'one lookup, as for any refusal');
});

test('replicas: a write goes to the primary, then to the copy under the version the primary chose; a read falls back to the copy', async (t) => {
  const { nodes, placement, attach } = await startFakeCluster(t, { nodes: 2, replicas: 2 });
  const wire = placement(1, [[0, 1]], 2).generations[0]!.nodes;
  const [primary, copy] = pickNodes(wire, keySlot('k'), 2).map((i) => nodes[i]!);
  // Long enough for a loaded machine: a copy that times out on the put would be waited for as a lost node.
  const job = await attach({ timeoutMs: 1_000 });
  await job.put('k', 'v');
  const [ordered] = requestsOf(primary!, Op.PUT);
  const [replicated] = requestsOf(copy!, Op.PUT);
  t.is(ordered!.flags, 0);
  t.is(replicated!.flags, Flag.REPLICA);
  t.is(replicated!.arg, primary!.store.entries.get('k')!.seq, "the primary's version");
  const version = (node: typeof primary) => {
    const { epoch, seq, value } = node!.store.entries.get('k')!;
    return [epoch, seq, value.toString()];
  };
  t.deepEqual(version(copy), version(primary), 'the same value under the same version on both');
  // The primary stops answering: the read times out there and is answered by the copy.
  primary!.store.script(Op.GET, 'hang');
  t.is((await job.get('k'))?.toString(), 'v');
  t.is(requestsOf(copy!, Op.GET).length, 1);
  await job.delete('k');
  t.deepEqual(primary!.store.tombstones.get('k'), copy!.store.tombstones.get('k'), 'one delete, one version, on both');
});

test('replicas: a block given up on at a slow copy and read from the other is never overwritten by the late answer', async (t) => {
  // Blocks large enough to come in several reads: only those are read straight into the value's buffer.
  const blockSize = 256 * 1024;
  const { nodes, attach } = await startFakeCluster(t, { nodes: 2, replicas: 2, blockSize });
  // Times with room for a loaded machine (CI runs the unit tests side by side): at 1 s, the put and the reads
  // missed the call's time on the fresh clone's run of 2026-12-08.
  const job = await attach({ timeoutMs: 4_000 });
  const value = Buffer.alloc(8 * blockSize);
  for (let i = 0; i < value.length; i++) value[i] = i % 251;
  await job.put('big', value);
  // Node n0 answers every read 2.5 s late, with a block's length of other bytes: half the call's time (2 s) has
  // passed by then, and the block was read from n1 into the value's buffer.
  nodes[0]!.store.script(Op.GET, { status: Status.OK, body: Buffer.alloc(blockSize, 0xee), delayMs: 2_500 }, { times: Infinity });
  const got = await job.get('big');
  t.true(got?.equals(value), 'read from the other copy');
  await new Promise((resolve) => setTimeout(resolve, 2_800));
  t.true(got?.equals(value), 'the late answers landed elsewhere');
});

test('replicas: a large value whose manifest PUT is tried again (its copy answered STALE) keeps its blocks and reads back', async (t) => {
  const { nodes, placement, control, attach } = await startFakeCluster(t, { nodes: 2, replicas: 2, blockSize: 1024 });
  const wire = placement(1, [[0, 1]], 2).generations[0]!.nodes;
  const [primary, copy] = pickNodes(wire, keySlot('big'), 2).map((i) => nodes[i]!);
  // The primary stores the manifest; its copy has moved on to epoch 2: the client refreshes and writes it again,
  // and the primary answers that the manifest replaced one — its own first try.
  copy!.store.script(Op.PUT, { status: Status.STALE, arg: 2, epoch: 2 }, { key: 'big' });
  control.placement = placement(2, [[0, 1]], 2);
  const job = await attach({ timeoutMs: 2_000 });
  const value = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
  await job.put('big', value);
  t.is(requestsOf(primary!, Op.PUT).filter((r) => r.key === 'big').length, 2, 'the manifest written twice on the primary');
  t.deepEqual(
    nodes.flatMap((node) => requestsOf(node, Op.DELETE)).map((r) => r.key),
    [],
    'no block of the value just written is freed',
  );
  t.true((await job.get('big'))?.equals(value));
  // A later value in its place frees the blocks of this one.
  await job.put('big', Buffer.alloc(2500, 7));
  t.true(nodes.flatMap((node) => requestsOf(node, Op.DELETE)).length > 0, 'the replaced value’s blocks freed');
  t.true((await job.get('big'))?.equals(Buffer.alloc(2500, 7)));
});

test('putMany: a refused entry fails the batch naming its key, after the others are stored', async (t) => {
  const {
    nodes: [n0],
    attach,
  } = await startFakeCluster(t, { nodes: 1 });
  n0!.store.script(Op.PUT, { status: Status.TOO_LARGE, body: Buffer.from('over the limit') }, { key: 'b' });
  const job = await attach({ timeoutMs: 2_000 });
  const error = await rejection(
    t,
    job.putMany(
      [
        ['a', '1'],
        ['b', '2'],
        ['c', '3'],
      ],
      { window: 2 },
    ),
  );
  t.is(error.code, 'TOO_LARGE');
  t.is(error.message, '"b": over the limit');
  t.deepEqual([...n0!.store.entries.keys()].sort(), ['a', 'c']);
});
