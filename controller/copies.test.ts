/**
 * Copies made while a job keeps working (migration.ts, replication.ts) never undo its writes or deletes: each
 * race is forced, not hoped for — the test's host holds a copy between reading a key and writing it, runs the
 * racing operation, then lets the copy go. Real storage servers (DRAM engines), announced as the controller does.
 */

import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import {
  ADMIN_SUBJECT,
  AnnounceFlag,
  Flag,
  holdersLost,
  keySlot,
  NodeConnection,
  Op,
  pickNodes,
  type Reply,
  type RequestFrame,
  Status,
  signToken,
  type WirePlacement,
  type WirePlacementNode,
} from '../proto/index.ts';
import { DramEngine, StorageServer } from '../storage-node/index.ts';
import { withLostMarks } from './members.ts';
import { type MigrationHost, migrateJob } from './migration.ts';
import { repairCopies, rereplicateJob, withoutSpentRemnants, withoutSubsumed } from './replication.ts';

const secret = randomBytes(32);
const logger = pino({ level: 'silent' });
const JOB = 'race-job';

interface Node extends WirePlacementNode {
  server: StorageServer;
}

async function startNodes(t: ExecutionContext, count: number): Promise<Node[]> {
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) {
    const server = new StorageServer({ id: `n${i}`, engine: new DramEngine(64 * 1024 * 1024), secret, logger, announcedJobsOnly: true });
    const address = await server.listen(0, '127.0.0.1');
    t.teardown(() => server.close());
    nodes.push({ id: `n${i}`, address, weight: 1, server });
  }
  return nodes;
}

function connection(t: ExecutionContext, address: string, token: string): NodeConnection {
  const c = new NodeConnection(address, token, { timeoutMs: 5_000 });
  t.teardown(() => c.destroy());
  return c;
}

/** The job's connections, and a host whose publish announces as the controller does (new members, then all). */
function harness(t: ExecutionContext, nodes: Node[], replicas: number) {
  const token = signToken(secret, JOB);
  const admin = new Map(nodes.map((n) => [n.address, connection(t, n.address, signToken(secret, ADMIN_SUBJECT))]));
  const data = new Map(nodes.map((n) => [n.address, connection(t, n.address, token)]));
  const flags = replicas > 1 ? AnnounceFlag.REPLICATED | AnnounceFlag.COPYING : AnnounceFlag.COPYING;
  const announce = async (placement: WirePlacement) => {
    // Not a remnant's nodes (replication.ts): its live ones are in the other generations, the lost one is gone.
    const ids = new Set(placement.generations.filter((g) => g.remnant !== true).flatMap((g) => g.nodes.map((n) => n.id)));
    for (const node of nodes) {
      if (ids.has(node.id))
        t.is((await admin.get(node.address)!.request({ op: Op.ANNOUNCE, flags, arg: placement.epoch, key: JOB })).status, Status.OK);
    }
  };
  /** Held before writing a copy of `key` to a node: the test's racing operation runs then. */
  const beforeCopy = new Map<string, () => Promise<void>>();
  const host: MigrationHost = {
    publish: announce,
    connect: (address) => {
      const real = data.get(address)!;
      return {
        request: async (frame: RequestFrame): Promise<Reply> => {
          if (frame.op === Op.PUT && ((frame.flags ?? 0) & Flag.COPY) !== 0) {
            const race = beforeCopy.get(frame.key!);
            beforeCopy.delete(frame.key!);
            await race?.();
          }
          return real.request(frame);
        },
      } as unknown as NodeConnection;
    },
  };
  return { data, announce, host, beforeCopy };
}

test('migration: a DELETE landing between a copy’s read and its write is not undone; a PUT is not overwritten', async (t) => {
  const nodes = await startNodes(t, 2);
  const [drained, target] = nodes as [Node, Node];
  const { data, announce, host, beforeCopy } = harness(t, nodes, 1);
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 1,
    generations: [{ nodes: [drained] }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 1,
  };
  await announce(placement);
  const source = data.get(drained.address)!;
  for (const key of ['deleted', 'overwritten', 'kept'])
    t.is((await source.request({ op: Op.PUT, epoch: 1, key, value: Buffer.from(`old ${key}`) })).status, Status.OK);
  // While the copy of a key is held, the job's functions (on the placement being published: epoch 2, the new
  // node newest) delete one key and overwrite another, as the client does: at every generation's owner.
  const onBoth = async (op: number, key: string, value: Buffer | null) => {
    for (const node of [target, drained]) t.is((await data.get(node.address)!.request({ op, epoch: 2, key, value })).status, Status.OK);
  };
  beforeCopy.set('deleted', () => onBoth(Op.DELETE, 'deleted', null));
  beforeCopy.set('overwritten', () => onBoth(Op.PUT, 'overwritten', Buffer.from('new')));
  const { result } = await migrateJob(host, placement, drained, [target]);
  t.is(result.keys, 3);
  const after = data.get(target.address)!;
  t.is((await after.request({ op: Op.GET, epoch: 3, key: 'deleted' })).status, Status.NOT_FOUND, 'the delete stands');
  t.is((await after.request({ op: Op.GET, epoch: 3, key: 'overwritten' })).body.toString(), 'new', 'the overwrite stands');
  t.is((await after.request({ op: Op.GET, epoch: 3, key: 'kept' })).body.toString(), 'old kept');
});

test('restoration: a DELETE racing the copy of a replicated key is not undone', async (t) => {
  const nodes = await startNodes(t, 3);
  const { data, announce, host, beforeCopy } = harness(t, nodes, 2);
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 1,
    generations: [{ nodes }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 2,
  };
  await announce(placement);
  // Keys whose two copies are on n0 and n1: when n0 is lost, n2 is to get a copy from n1.
  const keys = Array.from({ length: 400 }, (_, i) => `k${i}`).filter((key) => {
    const ids = pickNodes(nodes, keySlot(key), 2)
      .map((i) => nodes[i]!.id)
      .sort();
    return ids[0] === 'n0' && ids[1] === 'n1';
  });
  t.true(keys.length >= 4);
  for (const key of keys) {
    for (const node of nodes.slice(0, 2))
      t.is(
        (await data.get(node.address)!.request({ op: Op.PUT, flags: Flag.REPLICA, epoch: 1, arg: 1, key, value: Buffer.from('v') })).status,
        Status.OK,
      );
  }
  const [deleted, ...kept] = keys as [string, ...string[]];
  // Deleted at its new copies (n1 orders it, n2 takes it as a replica) while the copy to n2 is held.
  beforeCopy.set(deleted, async () => {
    const del = await data.get(nodes[1]!.address)!.request({ op: Op.DELETE, epoch: 2, key: deleted });
    t.is(del.status, Status.OK);
    t.is(
      (await data.get(nodes[2]!.address)!.request({ op: Op.DELETE, flags: Flag.REPLICA, epoch: 2, arg: del.arg, key: deleted })).status,
      Status.OK,
    );
  });
  const { result } = await rereplicateJob(host, placement, nodes[0]!, []);
  t.true(result.copies >= kept.length);
  t.is(
    (await data.get(nodes[2]!.address)!.request({ op: Op.GET, epoch: 2, key: deleted })).status,
    Status.NOT_FOUND,
    'the delete stands on the new copy',
  );
  t.is((await data.get(nodes[1]!.address)!.request({ op: Op.GET, epoch: 2, key: deleted })).status, Status.NOT_FOUND);
  for (const key of kept) t.is((await data.get(nodes[2]!.address)!.request({ op: Op.GET, epoch: 2, key })).body.toString(), 'v', key);
});

test('migration of a replicated job: every key the drained node held ends on each of its holders in the new generation', async (t) => {
  const nodes = await startNodes(t, 4);
  const [drained, a, b, c] = nodes as [Node, Node, Node, Node];
  const { data, announce, host } = harness(t, nodes, 2);
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 1,
    generations: [{ nodes: [drained, a, b] }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 2,
  };
  await announce(placement);
  const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
  const holdersIn = (generation: Node[], key: string) => pickNodes(generation, keySlot(key), 2).map((i) => generation[i]!);
  for (const key of keys) {
    const [primary, replica] = holdersIn([drained, a, b], key) as [Node, Node];
    const put = await data.get(primary.address)!.request({ op: Op.PUT, epoch: 1, key, value: Buffer.from(`v ${key}`) });
    t.is(
      (
        await data
          .get(replica.address)!
          .request({ op: Op.PUT, flags: Flag.REPLICA, epoch: 1, arg: put.arg, key, value: Buffer.from(`v ${key}`) })
      ).status,
      Status.OK,
    );
  }
  const { placement: after } = await migrateJob(host, placement, drained, [a, b, c]);
  t.deepEqual(
    after.generations.map((g) => g.nodes.map((n) => n.id)),
    [
      ['n1', 'n2', 'n3'],
      ['n1', 'n2'],
    ],
  );
  // Keys the drained node did not hold stay readable where they were (the older generation [n1, n2]).
  const moved = keys.filter((key) => holdersIn([drained, a, b], key).includes(drained));
  t.true(moved.length > 50);
  const missing: string[] = [];
  for (const key of moved) {
    for (const holder of holdersIn([a, b, c], key)) {
      const got = await data.get(holder.address)!.request({ op: Op.GET, epoch: 3, key });
      if (got.status !== Status.OK || got.body.toString() !== `v ${key}`) missing.push(`${key} on ${holder.id}`);
    }
  }
  t.deepEqual(missing, [], 'both copies of every moved key in the newest generation');
});

test('restoration: a node declared lost that still answers gives the keys only it holds', async (t) => {
  const nodes = await startNodes(t, 3);
  const [lost, b, c] = nodes as [Node, Node, Node];
  const { data, announce, host } = harness(t, nodes, 2);
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 1,
    generations: [{ nodes }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 2,
  };
  await announce(placement);
  // Keys only the soon-lost node holds (their other holder's copy was still to be made when it was declared
  // lost: a controller restart kept it from reporting in time, while another node's loss was being restored).
  const keys = Array.from({ length: 60 }, (_, i) => `only${i}`);
  for (const key of keys)
    t.is(
      (await data.get(lost.address)!.request({ op: Op.PUT, flags: Flag.REPLICA, epoch: 1, arg: 1, key, value: Buffer.from(key) })).status,
      Status.OK,
    );
  const { placement: after } = await rereplicateJob(host, placement, lost, []);
  t.deepEqual(
    after.generations.map((g) => g.nodes.map((n) => n.id)),
    [['n1', 'n2']],
  );
  for (const key of keys) {
    for (const holder of [b, c])
      t.is((await data.get(holder.address)!.request({ op: Op.GET, epoch: 2, key })).body.toString(), key, `${key} on ${holder.id}`);
  }
});

test('migration of a one-copy job with a lost member: older copies of the lost keys are removed from the new generation first', async (t) => {
  const nodes = await startNodes(t, 4);
  const [older, lost, drained, spare] = nodes as [Node, Node, Node, Node];
  const { data, announce, host } = harness(t, nodes, 1);
  // The lost member's process is gone (restarted and drained since): nothing is announced to it.
  const publish = (p: WirePlacement) =>
    announce({ ...p, generations: p.generations.map((g) => ({ nodes: g.nodes.filter((n) => n.id !== lost.id) })) });
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 2,
    generations: [{ nodes: [lost, drained] }, { nodes: [older] }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 1,
  };
  await publish(placement);
  await lost.server.close();
  const newest = [older, spare];
  const ownerIn = (gen: Node[], key: string) => gen[pickNodes(gen, keySlot(key), 1)[0]!]!.id;
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
  // Keys whose newest holder was the lost member, and which the new generation places on `older`, which still
  // has the value they had before (the lost member held a newer one, gone with it).
  const shadowed = keys.filter((k) => ownerIn([lost, drained], k) === lost.id && ownerIn(newest, k) === older.id).slice(0, 20);
  const moved = keys.filter((k) => ownerIn([lost, drained], k) === drained.id).slice(0, 20);
  t.true(shadowed.length > 5 && moved.length > 5);
  for (const key of shadowed)
    t.is((await data.get(older.address)!.request({ op: Op.PUT, epoch: 2, key, value: Buffer.from('before the loss') })).status, Status.OK);
  for (const key of moved)
    t.is((await data.get(drained.address)!.request({ op: Op.PUT, epoch: 2, key, value: Buffer.from(key) })).status, Status.OK);

  await migrateJob({ ...host, publish, isLost: (id) => id === lost.id }, placement, drained, newest);
  for (const key of shadowed) {
    const reply = await data.get(older.address)!.request({ op: Op.GET, epoch: 4, key });
    t.is(reply.status, Status.NOT_FOUND, `${key}: no older copy answers for the lost one`);
    t.is(reply.flags & Flag.DELETED, 0, `${key}: no tombstone: readers go on to the lost member and get UNAVAILABLE`);
  }
  for (const key of moved)
    t.is(
      (
        await data.get(ownerIn(newest, key) === older.id ? older.address : spare.address)!.request({ op: Op.GET, epoch: 4, key })
      ).body.toString(),
      key,
    );
});

test('migration of a replicated job: a key a newer generation holds goes forward in that version, so it keeps its copies', async (t) => {
  const nodes = await startNodes(t, 5);
  const [a, b, c, d, drained] = nodes as [Node, Node, Node, Node, Node];
  const { data, announce, host } = harness(t, nodes, 2);
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 3,
    generations: [{ nodes: [c, d] }, { nodes: [c, drained] }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 2,
  };
  await announce(placement);
  // Written while the older generation was the newest, then again in the next one (a newer version).
  const copy = async (node: Node, epoch: number, value: string) =>
    t.is(
      (await data.get(node.address)!.request({ op: Op.PUT, flags: Flag.COPY, epoch, arg: 1, key: 'k', value: Buffer.from(value) })).status,
      Status.OK,
    );
  await copy(c, 1, 'first');
  await copy(drained, 1, 'first');
  await copy(c, 2, 'second');
  await copy(d, 2, 'second');
  await migrateJob(host, placement, drained, [a, b]);
  // Skipping it (the newer generation has it) left it on that generation's nodes only: one of them, once the
  // placement drops the emptied ones, and a restart of it lost the key.
  for (const node of [a, b])
    t.is((await data.get(node.address)!.request({ op: Op.GET, epoch: 5, key: 'k' })).body.toString(), 'second', node.id);
});

test('restoration: keys of an older generation left with fewer nodes than copies get their copies in the newest', async (t) => {
  const nodes = await startNodes(t, 4);
  const [a, b, c, lost] = nodes as [Node, Node, Node, Node];
  const { data, announce, host } = harness(t, nodes, 2);
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 2,
    generations: [{ nodes: [a, b] }, { nodes: [c, lost] }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 2,
  };
  await announce(placement);
  // Written before the job moved on to [a, b], never since: its copies are on the older generation's two nodes.
  for (const node of [c, lost])
    t.is(
      (await data.get(node.address)!.request({ op: Op.PUT, flags: Flag.COPY, epoch: 1, arg: 1, key: 'k', value: Buffer.from('older') }))
        .status,
      Status.OK,
    );
  await lost.server.close(); // gone (a lost node still answering gives its keys itself)
  const { placement: after } = await rereplicateJob(host, placement, lost, []);
  t.deepEqual(
    after.generations.map((g) => g.nodes.map((n) => n.id)),
    [['n0', 'n1'], ['n2']],
  );
  for (const node of [a, b])
    t.is((await data.get(node.address)!.request({ op: Op.GET, epoch: 3, key: 'k' })).body.toString(), 'older', `${node.id}: a second copy`);
});

test('migration: a new holder’s leftover copy of a drained key from an earlier placement never answers meanwhile', async (t) => {
  const nodes = await startNodes(t, 3);
  const [x, drained, spare] = nodes as [Node, Node, Node];
  const { data, announce, host, beforeCopy } = harness(t, nodes, 1);
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 3,
    generations: [{ nodes: [x, drained] }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 1,
  };
  await announce(placement);
  const newest = [x, spare];
  const ownerIn = (gen: Node[], key: string) => gen[pickNodes(gen, keySlot(key), 1)[0]!]!.id;
  // Keys the drained node holds now, which the new generation places on x, where an older value was left.
  const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
    .filter((k) => ownerIn([x, drained], k) === drained.id && ownerIn(newest, k) === x.id)
    .slice(0, 10);
  t.true(keys.length > 3);
  const seen: string[] = [];
  for (const key of keys) {
    t.is(
      (await data.get(x.address)!.request({ op: Op.PUT, flags: Flag.COPY, epoch: 1, arg: 1, key, value: Buffer.from('left over') })).status,
      Status.OK,
    );
    t.is((await data.get(drained.address)!.request({ op: Op.PUT, epoch: 3, key, value: Buffer.from('current') })).status, Status.OK);
    // What a reader of the new generation gets from x before the drained node's copy lands there.
    beforeCopy.set(key, async () => {
      const reply = await data.get(x.address)!.request({ op: Op.GET, epoch: 4, key });
      seen.push(reply.status === Status.OK ? reply.body.toString() : 'not found');
    });
  }
  await migrateJob(host, placement, drained, newest);
  t.deepEqual(
    seen,
    keys.map(() => 'not found'),
    'readers go on to the drained node until the copy lands',
  );
  for (const key of keys) t.is((await data.get(x.address)!.request({ op: Op.GET, epoch: 5, key })).body.toString(), 'current');
});

/** A key whose `count` holders among `ids` are exactly `wanted`. */
function keyHeldBy(ids: string[], wanted: string[], count = 2): string {
  const weighted = ids.map((id) => ({ id, weight: 1 }));
  for (let i = 0; ; i++) {
    const key = `key${i}`;
    const holders = pickNodes(weighted, keySlot(key), count).map((index) => ids[index]!);
    if (wanted.every((id) => holders.includes(id)) && holders.length === wanted.length) return key;
  }
}

test('restoration: both holders of some keys lost at once: the remnant keeps them as holders, for good once both are marked lost', async (t) => {
  const nodes = await startNodes(t, 4);
  const [x, y, z, spare] = nodes as [Node, Node, Node, Node];
  const { data, announce, host } = harness(t, nodes, 2);
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 1,
    generations: [{ nodes: [x, y, z] }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 2,
  };
  await announce(placement);
  const gone = keyHeldBy(['n0', 'n1', 'n2'], ['n0', 'n1']);
  const kept = keyHeldBy(['n0', 'n1', 'n2'], ['n0', 'n2']);
  for (const [key, holders] of [
    [gone, [x, y]],
    [kept, [x, z]],
  ] as const)
    for (const node of holders)
      t.is(
        (await data.get(node.address)!.request({ op: Op.PUT, flags: Flag.REPLICA, epoch: 1, arg: 1, key, value: Buffer.from(key) })).status,
        Status.OK,
      );
  // x and y die at the same moment (kill -9 of both).
  await x.server.close();
  await y.server.close();
  const live = new Set([z.id, spare.id]);
  const published: WirePlacement[] = [];
  const publish = async (p: WirePlacement) => {
    published.push(p);
    await announce({ ...p, generations: [{ nodes: p.generations.flatMap((g) => g.nodes).filter((n) => live.has(n.id)) }] });
  };

  // x's loss: the copies cannot be made (y, which holds the rest, does not answer); the remnant stays published.
  await t.throwsAsync(rereplicateJob({ ...host, publish }, placement, x, [{ id: spare.id, address: spare.address, weight: 1 }]));
  const during = published.at(-1)!;
  t.deepEqual(
    during.generations.map((g) => [g.remnant === true, g.nodes.map((n) => n.id)]),
    [
      [false, ['n1', 'n2', 'n3']],
      [false, ['n1', 'n2']],
      [true, ['n0', 'n1', 'n2']],
    ],
  );

  // y's loss, once x restarted (marked lost in the remnant): the survivors answer, so it completes; the remnant
  // is left as it was (y not stripped from it), and with y marked too, `gone` has no live holder there.
  const { placement: after } = await rereplicateJob({ ...host, publish }, withLostMarks(during, ['n0']), y, []);
  const marked = withLostMarks(after, ['n0', 'n1']);
  t.deepEqual(
    marked.generations.map((g) => [g.remnant === true, g.nodes.map((n) => `${n.id}${n.lost ? '*' : ''}`)]),
    [
      [false, ['n2', 'n3']],
      [false, ['n2']],
      [true, ['n0*', 'n1*', 'n2']],
    ],
  );
  const repair = await repairCopies(host, marked);
  t.is(repair.skipped, 0, 'the nodes marked lost are not tried');
  t.deepEqual([...repair.listed!].sort(), ['n2', 'n3']);
  t.is(withoutSpentRemnants(marked, repair.listed!), marked, 'a remnant with keys that lost every holder stays');
  const remnant = marked.generations.at(-1)!.nodes;
  t.true(holdersLost(remnant, keySlot(gone), 2), `${gone}: every holder lost`);
  t.false(holdersLost(remnant, keySlot(kept), 2), `${kept}: a live holder`);
  for (const node of [z, spare])
    t.is(
      (await data.get(node.address)!.request({ op: Op.GET, epoch: after.epoch, key: kept })).body.toString(),
      kept,
      `${kept} on ${node.id}`,
    );
});

test('repair: a remnant’s live holders give their keys to the newest generation; the remnant is then spent', async (t) => {
  const nodes = await startNodes(t, 4);
  const [x, y, a, b] = nodes as [Node, Node, Node, Node];
  const { data, announce, host } = harness(t, nodes, 2);
  await x.server.close();
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 3,
    generations: [{ nodes: [a, b] }, { nodes: [{ ...x, lost: true }, y], remnant: true }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 2,
  };
  await announce({ ...placement, generations: [{ nodes: [y, a, b] }] });
  t.is(
    (await data.get(y.address)!.request({ op: Op.PUT, flags: Flag.COPY, epoch: 1, arg: 1, key: 'k', value: Buffer.from('v') })).status,
    Status.OK,
  );
  const result = await repairCopies(host, placement);
  t.is(result.skipped, 0, 'the node marked lost is not tried');
  for (const node of [a, b]) t.is((await data.get(node.address)!.request({ op: Op.GET, epoch: 3, key: 'k' })).body.toString(), 'v');
  t.deepEqual(
    withoutSpentRemnants(placement, result.listed!).generations.map((g) => g.nodes.map((n) => n.id)),
    [['n2', 'n3']],
  );
  // Not marked (it died, and never came back to be seen restarted): tried, unreachable, and not held against the
  // repair, which it must not keep pending forever; y answered for every key the remnant holds.
  const unmarked: WirePlacement = { ...placement, generations: [placement.generations[0]!, { nodes: [x, y], remnant: true }] };
  const again = await repairCopies(host, unmarked);
  t.is(again.skipped, 0);
  t.deepEqual([...again.listed!].sort(), ['n1', 'n2', 'n3']);
  t.is(withoutSpentRemnants(unmarked, again.listed!).generations.length, 1);
  // A remnant whose every node is gone stays: its keys are in no other generation.
  t.is(withoutSpentRemnants(unmarked, new Set(['n2', 'n3'])), unmarked);
});

test('repair: a remnant’s older copy is not brought forward over a newer one (or a delete) an older live generation holds', async (t) => {
  const nodes = await startNodes(t, 5);
  const [x, y, a, b, c] = nodes as [Node, Node, Node, Node, Node];
  const { data, announce, host } = harness(t, nodes, 2);
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 5,
    generations: [{ nodes: [a, b] }, { nodes: [c, y] }, { nodes: [x, y], remnant: true }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 2,
  };
  await announce({ ...placement, generations: [{ nodes }] });
  const put = async (node: Node, key: string, value: string, epoch: number) =>
    t.is(
      (await data.get(node.address)!.request({ op: Op.PUT, flags: Flag.COPY, epoch, arg: 1, key, value: Buffer.from(value) })).status,
      Status.OK,
    );
  // `counter`: 7 in the remnant (epoch 2), 12 in the older live generation (epoch 4: incremented since).
  await put(x, 'counter', '7', 2);
  await put(c, 'counter', '12', 4);
  // `gone`: in the remnant, deleted since in the older live generation (its tombstone at epoch 5).
  await put(x, 'gone', 'old', 2);
  await put(c, 'gone', 'old', 2);
  t.is((await data.get(c.address)!.request({ op: Op.DELETE, flags: Flag.REPLICA, epoch: 5, arg: 9, key: 'gone' })).status, Status.OK);
  // `only`: in the remnant alone.
  await put(x, 'only', 'v', 2);

  const result = await repairCopies(host, placement);
  t.is(result.skipped, 0);
  for (const node of [a, b]) {
    const get = (key: string) => data.get(node.address)!.request({ op: Op.GET, epoch: 5, key });
    t.is((await get('counter')).status, Status.NOT_FOUND, `${node.id}: the remnant's 7 not brought over the 12 readers see`);
    t.is((await get('gone')).status, Status.NOT_FOUND, `${node.id}: a deleted key not brought back`);
    t.is((await get('only')).body.toString(), 'v', `${node.id}: what only the remnant holds goes forward`);
  }
  // A holder of the older live generation out of reach: nothing can be known of its versions, so nothing goes
  // forward, and the repair is to be tried again.
  await put(x, 'later', 'v', 2);
  await y.server.close();
  const again = await repairCopies(host, placement);
  t.true((again.skipped ?? 0) > 0);
  for (const node of [a, b])
    t.is((await data.get(node.address)!.request({ op: Op.GET, epoch: 5, key: 'later' })).status, Status.NOT_FOUND, node.id);
});

test('restoration: a generation with fewer nodes than copies loses its keys with its node, unless that node still gives them: the remnant stays, or goes', async (t) => {
  for (const answers of [false, true]) {
    const nodes = await startNodes(t, 2);
    const [a, b] = nodes as [Node, Node];
    const { data, announce, host } = harness(t, nodes, 2);
    // Two copies wanted, one node left after an earlier loss with none to take its place: b alone holds the keys.
    const placement: WirePlacement = {
      jobId: JOB,
      epoch: 1,
      generations: [{ nodes: [b] }],
      blockSize: 1 << 20,
      maxValueBytes: 1 << 30,
      replicas: 2,
    };
    await announce(placement);
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    for (const key of keys)
      t.is((await data.get(b.address)!.request({ op: Op.PUT, epoch: 1, key, value: Buffer.from(key) })).status, Status.OK);
    // b dies (kill -9) or only stopped reporting (it still answers); a takes its place.
    if (!answers) await b.server.close();
    const { placement: after } = await rereplicateJob(host, placement, b, [{ id: a.id, address: a.address, weight: 1 }]);
    const shape = after.generations.map((g) => [g.remnant === true, g.nodes.map((n) => n.id)]);
    if (!answers) {
      t.deepEqual(
        shape,
        [
          [false, ['n0']],
          [true, ['n1']],
        ],
        'the keys b alone held are kept as lost, not dropped',
      );
      continue;
    }
    t.deepEqual(shape, [[false, ['n0']]], 'b gave its keys: no remnant');
    for (const key of keys) t.is((await data.get(a.address)!.request({ op: Op.GET, epoch: after.epoch, key })).body.toString(), key);
  }
});

test("withoutSubsumed: a top-up's older generation goes only when the newest, no larger than the copies, names all its nodes", (t) => {
  const node = (id: string, weight = 1) => ({ id, address: `127.0.0.1:${id.length}`, weight });
  const placement = (replicas: number, ...generations: { nodes: ReturnType<typeof node>[]; remnant?: boolean }[]): WirePlacement => ({
    jobId: 'j',
    epoch: 3,
    generations,
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas,
  });
  const shape = (p: WirePlacement) => p.generations.map((g) => g.nodes.map((n) => n.id));
  t.deepEqual(shape(withoutSubsumed(placement(2, { nodes: [node('b'), node('a')] }, { nodes: [node('b')] }))), [['b', 'a']]);
  t.deepEqual(
    shape(
      withoutSubsumed(
        placement(3, { nodes: [node('b'), node('c'), node('a')] }, { nodes: [node('b'), node('c')] }, { nodes: [node('x')] }),
      ),
    ),
    [['b', 'c', 'a'], ['x']],
  );
  // More nodes than copies: some slots' holders changed, so the older generation may hold keys the newest does not name there.
  const wide = placement(2, { nodes: [node('b'), node('c'), node('a')] }, { nodes: [node('b'), node('c')] });
  t.is(withoutSubsumed(wide), wide);
  const other = placement(2, { nodes: [node('b'), node('a')] }, { nodes: [node('c')] });
  t.is(withoutSubsumed(other), other);
  const remnant = placement(2, { nodes: [node('b'), node('a')] }, { nodes: [node('b')], remnant: true });
  t.is(withoutSubsumed(remnant), remnant);
  const weightless = placement(2, { nodes: [node('b'), node('a', 0)] }, { nodes: [node('b')] });
  t.is(withoutSubsumed(weightless), weightless);
});

test('repair: a holder that has the key at the same version or newer is not sent it again; one with an older version or none is', async (t) => {
  const nodes = await startNodes(t, 3);
  const [a, b, c] = nodes as [Node, Node, Node];
  const { data, announce, host } = harness(t, nodes, 3);
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 2,
    generations: [{ nodes: [a, b, c] }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 3,
  };
  await announce(placement);
  const copy = (node: Node, key: string, seq: number, value: string) =>
    data.get(node.address)!.request({ op: Op.PUT, flags: Flag.COPY, epoch: 2, arg: seq, key, value: Buffer.from(value) });
  for (const node of nodes) await copy(node, 'same', 1, 'everywhere');
  await copy(a, 'behind', 2, 'new');
  await copy(b, 'behind', 2, 'new');
  await copy(c, 'behind', 1, 'old');
  await copy(a, 'one', 1, 'only on a');
  const result = await repairCopies(host, placement);
  // 'behind' to c once (from a; b finds c up to date after), 'one' to b and c. Before, every holder sent every
  // key to every other: 12 copies here.
  t.is(result.copies, 3);
  t.is(result.bytes, 'new'.length + 2 * 'only on a'.length);
  for (const [node, key, want] of [
    [c, 'behind', 'new'],
    [b, 'one', 'only on a'],
    [c, 'one', 'only on a'],
    [c, 'same', 'everywhere'],
  ] as const)
    t.is((await data.get(node.address)!.request({ op: Op.GET, epoch: 2, key })).body.toString(), want);
});

test("migration: a counter's recent increments go with its copy, so a retry of one at the new node is answered, not added again", async (t) => {
  const nodes = await startNodes(t, 2);
  const [drained, target] = nodes as [Node, Node];
  const { data, announce, host } = harness(t, nodes, 1);
  const placement: WirePlacement = {
    jobId: JOB,
    epoch: 1,
    generations: [{ nodes: [drained] }],
    blockSize: 1 << 20,
    maxValueBytes: 1 << 30,
    replicas: 1,
  };
  await announce(placement);
  // INCR's body: the amount, then the increment's token (as client/coordination.ts sends it).
  const incr = async (node: Node, epoch: number, token: number) => {
    const amount = Buffer.alloc(16);
    amount.writeBigInt64BE(1n);
    amount.writeUInt32BE(token, 12);
    const reply = await data.get(node.address)!.request({ op: Op.INCR, epoch, key: 'count', value: amount });
    t.is(reply.status, Status.OK);
    return Number(reply.body.readBigInt64BE(0));
  };
  t.is(await incr(drained, 1, 1), 1);
  // Applied, its answer lost (the node frozen, the connection cut): the client retries it wherever the job is next.
  t.is(await incr(drained, 1, 2), 2);
  const { placement: after } = await migrateJob(host, placement, drained, [target]);
  t.is(await incr(target, after.epoch, 2), 2, 'the retry is answered with what it made');
  t.is(await incr(target, after.epoch, 1), 1);
  t.is(await incr(target, after.epoch, 3), 3, 'a new increment adds');
  t.is((await data.get(target.address)!.request({ op: Op.GET, epoch: after.epoch, key: 'count' })).body.toString(), '3');
});
