import { setImmediate as turn } from 'node:timers/promises';
import test from 'ava';
import { type BatchOp, GroupCommit } from './group-commit.ts';

/** A batch target that records each batch's keys and can be held (to see batches gather) or made to fail. */
class Target {
  readonly batches: string[][] = [];
  failNext: Error | null = null;
  private held: (() => void) | null = null;
  hold = false;

  async batch(ops: BatchOp[]): Promise<void> {
    this.batches.push(ops.map((op) => `${op.type}:${op.key.toString()}`));
    if (this.hold) await new Promise<void>((resolve) => (this.held = resolve));
    const failure = this.failNext;
    this.failNext = null;
    if (failure !== null) throw failure;
  }

  release(): void {
    this.hold = false;
    this.held?.();
  }
}

const put = (key: string): BatchOp => ({ type: 'put', key: Buffer.from(key), value: Buffer.from('v') });
const del = (key: string): BatchOp => ({ type: 'del', key: Buffer.from(key) });

const turns: { name: string; ops: BatchOp[][]; expected: string[][] }[] = [
  { name: 'one write', ops: [[put('a')]], expected: [['put:a']] },
  {
    name: 'writes of one turn are one batch, in the order asked',
    ops: [[put('a'), del('b'), put('c')]],
    expected: [['put:a', 'del:b', 'put:c']],
  },
  {
    name: 'each turn its own batch',
    ops: [[put('a'), put('b')], [del('a')], [put('c')]],
    expected: [['put:a', 'put:b'], ['del:a'], ['put:c']],
  },
];
for (const c of turns) {
  test(`group commit: ${c.name}`, async (t) => {
    const target = new Target();
    const commits = new GroupCommit(target);
    for (const ops of c.ops) {
      await Promise.all(ops.map((op) => commits.write(op)));
      await turn();
    }
    t.deepEqual(target.batches, c.expected);
  });
}

test('group commit: writes asked for while a batch is being written gather into the next one', async (t) => {
  const target = new Target();
  const commits = new GroupCommit(target);
  target.hold = true;
  const first = commits.write(put('a'));
  await turn();
  t.deepEqual(target.batches, [['put:a']]);
  const later = [commits.write(put('b')), commits.write(del('c'))];
  await turn();
  await turn();
  t.deepEqual(target.batches, [['put:a']], 'nothing more is written while the batch is');
  let settled = false;
  void first.then(() => (settled = true));
  await turn();
  t.false(settled, 'a write resolves only once its batch is written');
  target.release();
  await Promise.all([first, ...later]);
  t.deepEqual(target.batches, [['put:a'], ['put:b', 'del:c']]);
});

test('group commit: a failed batch fails every write in it, and only those', async (t) => {
  const target = new Target();
  const commits = new GroupCommit(target);
  target.failNext = new Error('disk gone');
  const failed = [commits.write(put('a')), commits.write(put('b'))];
  for (const write of failed) await t.throwsAsync(write, { message: 'disk gone' });
  await commits.write(put('c'));
  t.deepEqual(target.batches, [['put:a', 'put:b'], ['put:c']]);
});
