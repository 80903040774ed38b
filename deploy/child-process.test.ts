import test from 'ava';
import { withoutTsx } from './child-process.ts';

test("withoutTsx drops tsx's loader in each spelling and keeps every other flag", (t) => {
  t.deepEqual(withoutTsx(['--import', 'tsx', '--expose-gc']), ['--expose-gc']);
  t.deepEqual(withoutTsx(['--import=tsx', '--optimize-for-size']), ['--optimize-for-size']);
  t.deepEqual(withoutTsx(['--require', '/x/node_modules/tsx/dist/cjs/index.cjs', '--loader=tsx/esm']), []);
  t.deepEqual(withoutTsx(['--import', './trace.mjs', '--inspect=0']), ['--import', './trace.mjs', '--inspect=0']);
  t.deepEqual(withoutTsx([]), []);
});
