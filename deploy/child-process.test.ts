import test from 'ava';
import { roleExecArgv, withoutTsx } from './child-process.ts';

test("withoutTsx drops tsx's loader in each spelling and keeps every other flag", (t) => {
  t.deepEqual(withoutTsx(['--import', 'tsx', '--expose-gc']), ['--expose-gc']);
  t.deepEqual(withoutTsx(['--import=tsx', '--optimize-for-size']), ['--optimize-for-size']);
  t.deepEqual(withoutTsx(['--require', '/x/node_modules/tsx/dist/cjs/index.cjs', '--loader=tsx/esm']), []);
  t.deepEqual(withoutTsx(['--import', './trace.mjs', '--inspect=0']), ['--import', './trace.mjs', '--inspect=0']);
  t.deepEqual(withoutTsx([]), []);
});

test('roles run with their V8 flags: no GC helper threads anywhere, memory over speed only on the control plane', (t) => {
  const node = roleExecArgv('storage-node');
  t.true(node.includes('--single-threaded-gc'));
  t.false(node.includes('--optimize-for-size'));
  for (const role of ['controller', 'metadata']) {
    const flags = roleExecArgv(role);
    t.true(flags.includes('--single-threaded-gc'), role);
    t.true(flags.includes('--optimize-for-size'), role);
  }
  // A controller of thousands of nodes: V8's own heap sizing; the other roles as before.
  t.false(roleExecArgv('controller', 'large').includes('--optimize-for-size'));
  t.true(roleExecArgv('controller', 'large').includes('--single-threaded-gc'));
  t.true(roleExecArgv('metadata', 'large').includes('--optimize-for-size'));
  t.false(roleExecArgv('storage-node', 'large').includes('--optimize-for-size'));
});
