// The import-rule check `npm test` runs (.ci/check-imports.mjs): it finds each kind of violation, and the
// repository has none.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
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
    'proto/package.json': JSON.stringify({ name: '@satchel/proto' }),
    'controller/package.json': JSON.stringify({ name: '@satchel/controller' }),
    'client/package.json': JSON.stringify({ name: 'satchel', devDependencies: { '@satchel/proto': '0.1.0' } }),
    'storage-node/package.json': JSON.stringify({ name: '@satchel/storage-node' }),
    'proto/index.ts': 'export const a = 1;\n',
    'controller/index.ts': 'export type X = number;\n',
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

test('a package.json that disagrees with its code: each way reported', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'satchel-packages-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const files: Record<string, string> = {
    // The root may run only deploy and perf; a server dependency there is misplaced.
    'package.json': JSON.stringify({
      name: 'root',
      dependencies: { '@satchel/deploy': '0.1.0', fastify: '5' },
      devDependencies: { ava: '7' },
    }),
    'proto/package.json': JSON.stringify({ name: '@satchel/proto', dependencies: { protobufjs: '8' } }),
    'proto/index.ts':
      "import protobuf from 'protobufjs';\nimport { readFile } from 'node:fs/promises';\nimport { join } from 'path';\nexport const a = [protobuf, readFile, join];\n",
    // The client may depend on nothing, and bundles proto (a devDependency), so proto as a dependency is wrong too.
    'client/package.json': JSON.stringify({ name: 'satchel', dependencies: { '@satchel/proto': '0.1.0', pino: '10' } }),
    'client/index.ts': "import { a } from '../proto/index.ts';\nexport const b = a;\n",
    // Loads a package it does not declare, declares one it never loads, and declares a part it does not import.
    'controller/package.json': JSON.stringify({ name: '@satchel/controller', dependencies: { '@satchel/proto': '0.1.0', level: '10' } }),
    'controller/index.ts': "export const load = () => import('fastify');\n",
    // Imports proto without declaring it; its test loads a package nobody here declares as its own or a tool.
    'storage-node/package.json': JSON.stringify({ name: '@satchel/storage-node' }),
    'storage-node/index.ts': "export { a } from '../proto/index.ts';\n",
    'storage-node/index.test.ts': "import 'ioredis';\nimport 'ava';\n",
    // Declares a part it may not import. Its test loads its own devDependency: allowed.
    'metadata/package.json': JSON.stringify({
      name: 'metadata',
      dependencies: { '@satchel/deploy': '0.1.0' },
      devDependencies: { ioredis: '6' },
    }),
    'metadata/index.ts': 'export const m = 1;\n',
    'metadata/index.test.ts': "import 'ioredis';\n",
    'test/x.test.ts': "import 'left-pad';\nimport 'protobufjs';\n",
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, dirname(path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  const { problems } = check(root);
  const expected = [
    /^package\.json \(root\) depends on fastify/,
    /^client\/package\.json: @satchel\/proto belongs in devDependencies/,
    /^client\/package\.json depends on pino, which no source in client\/ loads/,
    /^client\/package\.json: the function path needs nothing outside Node, so no dependencies/,
    /^controller\/index\.ts loads fastify, which controller\/package\.json does not declare/,
    /^controller\/package\.json depends on level, which no source/,
    /^controller\/package\.json declares @satchel\/proto, which no source in controller\/ imports/,
    /^storage-node\/ imports proto\/ without declaring @satchel\/proto/,
    /^storage-node\/index\.test\.ts loads ioredis: declare it/,
    /^metadata\/package\.json: named metadata, should be @satchel\/metadata/,
    /^metadata\/package\.json declares @satchel\/deploy: metadata\/ may not import deploy\//,
    /^test\/x\.test\.ts loads left-pad, which no package\.json declares/,
  ];
  for (const pattern of expected)
    t.true(
      problems.some((p) => pattern.test(p)),
      `${pattern} not among:\n${problems.join('\n')}`,
    );
  t.is(problems.length, expected.length, problems.join('\n'));
});

test('a source file over the line limit is reported; a test file or a generated one of that length is not', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'satchel-lines-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const lines = (n: number) => 'export const x = 1;\n'.repeat(n);
  const files: Record<string, string> = {
    'proto/package.json': JSON.stringify({ name: '@satchel/proto' }),
    'proto/index.ts': lines(600),
    'proto/long.ts': lines(601),
    'proto/long.test.ts': lines(900),
    'proto/control-types.ts': lines(900),
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, dirname(path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  t.deepEqual(check(root).problems, ['proto/long.ts has 601 lines, more than 600: split it along its seams']);
});
