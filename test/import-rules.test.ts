// The import-rule check `npm test` runs (.ci/check-imports.mjs): it finds each kind of violation, and the
// repository has none.
import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
// @ts-expect-error: a plain ESM script with no type declarations
import { checkImports } from '../.ci/check-imports.mjs';

const check = checkImports as (root?: string) => { modules: number; problems: string[] };

test('the repository keeps its import rules', (t) => {
  const { modules, problems } = check();
  t.true(modules > 50);
  t.deepEqual(problems, []);
});

test('a part importing one it may not, reaching past an entry, or a cycle: each reported', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'satchel-imports-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const files: Record<string, string> = {
    'proto/index.ts': "export const a = 1;\n",
    'controller/index.ts': "export type X = number;\n",
    // The client imports server code (a type import counts), and proto past its entry.
    'client/index.ts': "import type { X } from '../controller/index.ts';\nimport { a } from '../proto/frame.ts';\nexport const b = a;\n",
    // A cycle inside storage-node, one of them through a dynamic import.
    'storage-node/a.ts': "import { c } from './b.ts';\nexport const d = c;\n",
    'storage-node/b.ts': "export const c = 1;\nvoid import('./a.ts');\n",
    // Tests may import anything.
    'storage-node/a.test.ts': "import '../deploy/index.ts';\n",
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, dirname(path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  const { problems } = check(root);
  t.is(problems.length, 3, problems.join('\n'));
  t.true(problems.some((p) => /client\/index\.ts imports controller\/index\.ts: client\/ may import proto/.test(p)));
  t.true(problems.some((p) => /client\/index\.ts imports proto\/frame\.ts: another part only through its entry/.test(p)));
  t.true(problems.some((p) => /import cycle: storage-node\/a\.ts → storage-node\/b\.ts → storage-node\/a\.ts/.test(p)));
});
