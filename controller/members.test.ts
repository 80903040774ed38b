import test from 'ava';
import {
  isLostMember,
  isMember,
  mayPlaceOn,
  membersOf,
  names,
  nodesOf,
  reconcileNode,
  withLostMarks,
  withRejoined,
  withRestartedMember,
} from './members.ts';
import { JobMap, type JobRecord } from './registry.ts';

function job(id: string, generations: string[][], extra: Partial<JobRecord> = {}): JobRecord {
  return {
    id,
    name: id,
    hints: {},
    tier: 'dram',
    reason: '',
    reservation: 1,
    createdAt: 0,
    leaseExpiresAt: Infinity,
    placement: {
      jobId: id,
      epoch: 3,
      generations: generations.map((g) => ({ nodes: g.map((n) => ({ id: n, address: `${n}:1`, weight: 1 })) })),
      blockSize: 1,
      maxValueBytes: 1,
      replicas: 1,
    },
    ...extra,
  };
}

test('names and isMember agree with nodesOf and membersOf, lost members left out', (t) => {
  const j = job('j', [['a', 'b'], ['c']], { lostNodes: ['b'] });
  for (const node of ['a', 'b', 'c', 'd']) {
    t.is(names(j.placement, node), nodesOf(j.placement).has(node), node);
    t.is(isMember(j, node), membersOf(j).has(node), node);
  }
  t.false(isMember(j, 'b'));
  t.true(names(j.placement, 'b'));
});

test('a report is reconciled: announce what the node misses or knows at an older epoch, move what left it, drop what ended', (t) => {
  const jobs = new Map([
    ['known', job('known', [['n']])],
    ['behind', job('behind', [['n']])],
    ['missed', job('missed', [['n', 'm']])],
    ['moved-on', job('moved-on', [['m']])],
    ['lost-here', job('lost-here', [['n']], { lostNodes: ['n'] })],
  ]);
  const actions = reconcileNode(
    'n',
    [
      { jobId: 'known', bytes: 1, epoch: 3 },
      { jobId: 'behind', bytes: 1, epoch: 2 },
      { jobId: 'moved-on', bytes: 1, epoch: 3 },
      { jobId: 'ended', bytes: 1, epoch: 1 },
      { jobId: 'registering', bytes: 0, epoch: 1 },
    ],
    jobs,
    new Map([['registering', {}]]),
  );
  t.deepEqual(
    actions.map((a) => `${a.kind} ${a.jobId}`),
    ['announce behind', 'announce missed', 'move moved-on', 'drop ended'],
  );
});

test('the registry knows which jobs name each node, as jobs come and go and placements are replaced', (t) => {
  const jobs = new JobMap();
  const a = job('a', [['n', 'm']]);
  const b = job('b', [['m']]);
  jobs.set('a', a);
  jobs.set('b', b);
  t.deepEqual([...jobs.namedOn('m')].sort(), ['a', 'b']);
  t.deepEqual([...jobs.namedOn('n')], ['a']);
  a.placement = {
    ...a.placement,
    epoch: 4,
    generations: [{ nodes: [{ id: 'o', address: 'o:1', weight: 1 }] }, ...a.placement.generations],
  };
  jobs.reindex(a);
  t.deepEqual([...jobs.namedOn('o')], ['a']);
  t.deepEqual([...jobs.namedOn('n')], ['a']);
  a.placement = { ...a.placement, epoch: 5, generations: [{ nodes: [{ id: 'o', address: 'o:1', weight: 1 }] }] };
  jobs.reindex(a);
  t.deepEqual([...jobs.namedOn('n')], []);
  jobs.delete('b');
  t.deepEqual([...jobs.namedOn('m')], []);
  // A job not (or no longer) in the map is not indexed.
  jobs.reindex(b);
  t.deepEqual([...jobs.namedOn('m')], []);
  // Reconciling against the index finds what a walk of every job finds.
  const report = [{ jobId: 'a', bytes: 1, epoch: 1 }];
  t.deepEqual(reconcileNode('o', report, jobs, new Map(), jobs.namedOn('o')), reconcileNode('o', report, jobs));
});

test('a single-copy job’s placement marks exactly its lost members lost, in every generation; a replicated job’s is left alone', (t) => {
  const single = job(
    'single',
    [
      ['a', 'b'],
      ['b', 'c'],
    ],
    { lostNodes: ['b'] },
  );
  const marked = withLostMarks(single.placement, single.lostNodes);
  t.not(marked, single.placement, 'a new placement, never an edit of the old one');
  t.is(marked.epoch, single.placement.epoch, 'at the same epoch');
  t.deepEqual(
    marked.generations.map((g) => g.nodes.map((n) => `${n.id}${n.lost === true ? ' lost' : ''}`)),
    [
      ['a', 'b lost'],
      ['b lost', 'c'],
    ],
  );
  t.false(
    single.placement.generations.some((g) => g.nodes.some((n) => n.lost !== undefined)),
    'the old placement is unchanged',
  );
  t.is(marked.generations[0]!.nodes[0], single.placement.generations[0]!.nodes[0], 'nodes that do not change are kept');
  t.is(withLostMarks(marked, single.lostNodes), marked, 'marked already: the same placement');
  // A mark without a lost member behind it goes (a placement kept from elsewhere), and no lost members: no marks.
  t.deepEqual(
    withLostMarks(marked, ['c']).generations.map((g) => g.nodes.filter((n) => n.lost === true).map((n) => n.id)),
    [[], ['c']],
  );
  t.is(withLostMarks(single.placement, undefined), single.placement);

  const replicated = job('replicated', [['a', 'b', 'c']], { lostNodes: ['b'] });
  replicated.placement.replicas = 2;
  t.is(withLostMarks(replicated.placement, replicated.lostNodes), replicated.placement, 'its copies are restored on live nodes instead');
});

test('a lost member placed on a replicated job again serves its live generations; the entries of the incarnation that died stay marked', (t) => {
  // Both of a's and b's processes died: the job went on with nothing but a remnant marking both.
  const j = job('j', [['b'], ['a', 'b']], { lostNodes: ['a', 'b'] });
  j.placement = {
    ...j.placement,
    replicas: 2,
    generations: [j.placement.generations[0]!, { ...j.placement.generations[1]!, remnant: true }],
  };
  j.placement = withLostMarks(j.placement, j.lostNodes);
  t.deepEqual(
    j.placement.generations.map((g) => g.nodes.map((n) => n.lost === true)),
    [[false], [true, true]],
  );
  t.true(isLostMember(j, 'a'));
  t.true(mayPlaceOn(j, 'a'), "a's new process: only the remnant names the id");
  t.false(mayPlaceOn(j, 'b'), 'b is still in a live generation: its loss is not restored yet');

  // A restoration puts a's new process in b's place: it rejoins, and its old entries keep their mark.
  const next = {
    ...j.placement,
    epoch: 4,
    generations: [{ nodes: [{ id: 'a', address: 'a:1', weight: 1 }] }, ...j.placement.generations.slice(1)],
  };
  withRejoined(j, next);
  t.deepEqual(j.rejoined, ['a']);
  j.placement = withLostMarks(next, j.lostNodes, j.rejoined);
  t.deepEqual(
    j.placement.generations.map((g) => g.nodes.map((n) => `${n.id}${n.lost === true ? '!' : ''}`)),
    [['a'], ['a!', 'b!']],
  );
  t.false(isLostMember(j, 'a'));
  t.true(isMember(j, 'a'));
  t.deepEqual([...membersOf(j)], ['a']);
  // A remnant made later from a's live generation (a frozen, say) is its new process's: left unmarked.
  const frozen = {
    ...j.placement,
    epoch: 5,
    generations: [{ nodes: [] }, { nodes: [{ id: 'a', address: 'a:1', weight: 1 }], remnant: true }, ...j.placement.generations.slice(1)],
  };
  t.deepEqual(
    withLostMarks(frozen, j.lostNodes, j.rejoined).generations.map((g) => g.nodes.map((n) => n.lost === true)),
    [[], [false], [true, true]],
  );

  // A single-copy job keeps a lost member out for good.
  const single = job('s', [['b']], { lostNodes: ['a'] });
  single.placement = {
    ...single.placement,
    generations: [...single.placement.generations, { nodes: [{ id: 'a', address: 'a:1', weight: 1, lost: true }] }],
  };
  t.false(mayPlaceOn(single, 'a'));
  withRejoined(single, {
    ...single.placement,
    generations: [{ nodes: [{ id: 'a', address: 'a:1', weight: 1 }] }, ...single.placement.generations],
  });
  t.is(single.rejoined, undefined);
});

test("withRestartedMember: a single-copy job's restarted id fresh in a new generation over the old one, kept once as a remnant with the mark", (t) => {
  const marked = withLostMarks(job('j', [['a', 'b']]).placement, ['b']);
  const next = withRestartedMember(marked, 'b', 'b:2')!;
  t.is(next.epoch, 4);
  t.deepEqual(
    next.generations.map((g) => ({
      remnant: g.remnant === true,
      nodes: g.nodes.map((n) => `${n.id}@${n.address}${n.lost ? '(lost)' : ''}`),
    })),
    [
      { remnant: false, nodes: ['a@a:1', 'b@b:2'] },
      { remnant: true, nodes: ['a@a:1', 'b@b:1(lost)'] },
    ],
  );
  const j = job('j', [], { placement: next, lostNodes: ['b'], rejoined: ['b'] });
  t.false(isLostMember(j, 'b'), 'the new process is a member through its fresh entry');
  t.is(withLostMarks(next, ['b'], ['b']), next, 'the marks stay as they are');
  // It dies too: marked everywhere, then placed again; the remnant it would leave is the one kept already.
  const again = withRestartedMember(withLostMarks(next, ['b']), 'b', 'b:3')!;
  t.deepEqual(
    again.generations.map((g) => g.remnant === true),
    [false, true],
  );
  t.is(again.generations[0]!.nodes[1]!.address, 'b:3');
  // Nothing to do: not marked, a job with copies, a job moving (two live generations).
  t.is(withRestartedMember(job('j', [['a', 'b']]).placement, 'b', 'b:2'), null);
  t.is(withRestartedMember({ ...marked, replicas: 2 }, 'b', 'b:2'), null);
  t.is(withRestartedMember(withLostMarks(job('j', [['a', 'b'], ['b']]).placement, ['b']), 'b', 'b:2'), null);
});
