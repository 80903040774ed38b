#!/usr/bin/env node
import { existsSync, readdirSync, readFileSync } from 'node:fs';
// The import rules each folder's README states, checked on every `npm test`: which part may import which, only
// through the other part's index.ts, and no import cycles. Type-only imports count (a client that imports a
// server's types still depends on it). Tests (`*.test.ts`, shared suites `*.suite.ts`, test/, `test-*`) may reach any part: they are not in
// the layering. Our own script rather than dependency-cruiser, whose TypeScript parser stops at TypeScript 6
// (this repository builds with 7, so it saw no .ts file at all).
//
// Each part is also an npm workspace, and its package.json must agree with its code: the parts it declares are
// exactly the parts it imports (and ones it may import), and every package its code loads is its own declared
// dependency, none unused. So a server dependency cannot creep into the client (whose package declares none), and
// the root package holds only the composition root's two parts and the tools.
import { builtinModules } from 'node:module';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** What each part may import besides itself (the READMEs' "may import" lines). */
export const MAY_IMPORT = {
  proto: [],
  client: ['proto'],
  controller: ['proto'],
  metadata: ['proto'],
  'storage-node': ['proto'],
  deploy: ['proto', 'controller', 'metadata', 'storage-node'],
  perf: ['proto', 'client', 'controller', 'deploy'], // controller: the console's JSON types (ClusterEvent, DrainResult)
};
const PARTS = Object.keys(MAY_IMPORT);
/** Each part's package name, which is how another part's package.json declares it. */
export const PACKAGE_OF = {
  proto: '@satchel/proto',
  client: 'satchel',
  controller: '@satchel/controller',
  metadata: '@satchel/metadata',
  'storage-node': '@satchel/storage-node',
  deploy: '@satchel/deploy',
  perf: '@satchel/perf',
};
const PART_OF_PACKAGE = new Map(Object.entries(PACKAGE_OF).map(([part, name]) => [name, part]));
/** The client's tarball holds the proto modules it imports (its build compiles them in), so proto is a build-time
 * dependency there: a devDependency, which an installing project never fetches. */
const BUNDLES = { client: ['proto'] };
/** Parts whose package declares no runtime dependency at all: the function path is Node alone. */
const NO_DEPENDENCIES = ['client'];
/** The longest a source file may be: past it, a file holds more than one job and should be split along its seams.
 * Tests and generated files are not held to it. */
export const MAX_SOURCE_LINES = 600;
const GENERATED = ['proto/control-types.ts', 'proto/control-schema.ts'];
/** What the root package (bin/satchel.js, the composition root) may depend on at run time. */
const ROOT_DEPENDENCIES = ['@satchel/deploy', '@satchel/perf'];
/** Each part's entries: index.ts, and proto's grpc.ts (the servers' grpc-js wiring, kept out of index.ts). */
const ENTRIES = { proto: ['proto/index.ts', 'proto/grpc.ts'] };
const entriesOf = (part) => ENTRIES[part] ?? [`${part}/index.ts`];
/** Entries a part may not use: the client (and so a function) never loads grpc-js. */
const NOT_FOR = { client: ['proto/grpc.ts'] };

const isTest = (file) =>
  file.endsWith('.test.ts') || file.endsWith('.suite.ts') || file.startsWith('test/') || /(^|\/)test-[^/]*$/.test(file);

function sources(root, dir) {
  const found = [];
  let entries;
  try {
    entries = readdirSync(join(root, dir), { withFileTypes: true });
  } catch {
    return [];
  }
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) found.push(...sources(root, path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') && !isTest(path)) found.push(path);
  }
  return found;
}

/** Specifiers of every static import, re-export, dynamic import and `require.resolve` in `text`. */
function allSpecifiers(text) {
  const found = new Set();
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const match of code.matchAll(
    /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\.resolve\(\s*['"]([^'"./][^'"]*)['"]\s*\)/g,
  )) {
    found.add(match[1] ?? match[2] ?? match[3] ?? match[4]);
  }
  return [...found];
}
const specifiers = (text) => allSpecifiers(text).filter((spec) => spec.startsWith('.'));

/** The npm package a bare specifier loads (`@scope/name/sub` → `@scope/name`), or undefined for Node's own. */
function packageOf(spec) {
  if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) return undefined;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function readPackage(root, dir) {
  const path = join(root, dir, 'package.json');
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    return { invalid: String(error) };
  }
}

function testSources(root, dir) {
  const found = [];
  let entries;
  try {
    entries = readdirSync(join(root, dir), { withFileTypes: true });
  } catch {
    return [];
  }
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'dist') found.push(...testSources(root, path));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') && isTest(path)) found.push(path);
  }
  return found;
}

/** Problems where a part's package.json and its code disagree (see the header). */
function checkPackages(root, graph) {
  const problems = [];
  const rootPackage = readPackage(root, '.') ?? {};
  const tools = new Set(Object.keys(rootPackage.devDependencies ?? {}));
  const everyDependency = new Set(tools);
  const packages = new Map();
  for (const part of PARTS) {
    if (!existsSync(join(root, part))) continue;
    const pkg = readPackage(root, part);
    if (pkg === undefined || pkg.invalid) {
      problems.push(`${part}/package.json: ${pkg?.invalid ?? 'missing'}; each part is a workspace package named ${PACKAGE_OF[part]}`);
      continue;
    }
    packages.set(part, pkg);
    if (pkg.name !== PACKAGE_OF[part]) problems.push(`${part}/package.json: named ${pkg.name}, should be ${PACKAGE_OF[part]}`);
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.devDependencies })) everyDependency.add(name);
  }
  for (const [part, pkg] of packages) {
    const runtime = { ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies };
    const declaredParts = new Set();
    for (const name of Object.keys({ ...runtime, ...pkg.devDependencies })) {
      const to = PART_OF_PACKAGE.get(name);
      if (to === undefined) continue;
      const bundled = (BUNDLES[part] ?? []).includes(to);
      if (bundled !== name in (pkg.devDependencies ?? {})) {
        problems.push(
          `${part}/package.json: ${name} belongs in ${bundled ? 'devDependencies (its build compiles it in)' : 'dependencies'}`,
        );
      }
      declaredParts.add(to);
    }
    const usedParts = new Set();
    const usedPackages = new Map();
    for (const [file, targets] of graph) {
      if (file.split('/')[0] !== part) continue;
      for (const target of targets) {
        const to = target.split('/')[0];
        if (to !== part && PARTS.includes(to)) usedParts.add(to);
      }
      for (const spec of allSpecifiers(readFileSync(join(root, file), 'utf8'))) {
        const name = packageOf(spec);
        if (name !== undefined && !usedPackages.has(name)) usedPackages.set(name, file);
      }
    }
    for (const to of declaredParts) {
      if (!MAY_IMPORT[part].includes(to)) problems.push(`${part}/package.json declares ${PACKAGE_OF[to]}: ${part}/ may not import ${to}/`);
      else if (!usedParts.has(to)) problems.push(`${part}/package.json declares ${PACKAGE_OF[to]}, which no source in ${part}/ imports`);
    }
    for (const to of usedParts) {
      if (!declaredParts.has(to) && MAY_IMPORT[part].includes(to))
        problems.push(`${part}/ imports ${to}/ without declaring ${PACKAGE_OF[to]} in ${part}/package.json`);
    }
    for (const [name, file] of usedPackages) {
      if (PART_OF_PACKAGE.has(name) && name !== PACKAGE_OF[part]) continue; // a child script's import of a built part (perf/coldstart.ts)
      if (!(name in runtime)) problems.push(`${file} loads ${name}, which ${part}/package.json does not declare as a dependency`);
    }
    for (const name of Object.keys(runtime)) {
      if (PART_OF_PACKAGE.has(name)) continue;
      if (!usedPackages.has(name)) problems.push(`${part}/package.json depends on ${name}, which no source in ${part}/ loads`);
    }
    if (NO_DEPENDENCIES.includes(part) && Object.keys(runtime).length > 0) {
      problems.push(
        `${part}/package.json: the function path needs nothing outside Node, so no dependencies (has ${Object.keys(runtime).join(', ')})`,
      );
    }
    // A part's tests may use its own dependencies (devDependencies too: that is what they are for) and the root's tools.
    const forTests = { ...runtime, ...pkg.devDependencies };
    for (const file of testSources(root, part)) {
      for (const spec of allSpecifiers(readFileSync(join(root, file), 'utf8'))) {
        const name = packageOf(spec);
        if (name !== undefined && !(name in forTests) && !tools.has(name) && name !== PACKAGE_OF[part])
          problems.push(`${file} loads ${name}: declare it in ${part}/package.json or the root's devDependencies`);
      }
    }
  }
  for (const name of Object.keys(rootPackage.dependencies ?? {})) {
    if (!ROOT_DEPENDENCIES.includes(name))
      problems.push(
        `package.json (root) depends on ${name}: a part's dependency belongs in that part's package.json, the root runs only ${ROOT_DEPENDENCIES.join(' and ')}`,
      );
  }
  // Whole-cluster tests may use whatever some workspace declares.
  for (const file of testSources(root, 'test')) {
    for (const spec of allSpecifiers(readFileSync(join(root, file), 'utf8'))) {
      const name = packageOf(spec);
      if (name !== undefined && !everyDependency.has(name) && !PART_OF_PACKAGE.has(name))
        problems.push(`${file} loads ${name}, which no package.json declares`);
    }
  }
  return problems;
}

/** Every problem with the imports of the parts under `root` (the repository by default). */
export function checkImports(root = ROOT) {
  const problems = [];
  const graph = new Map();
  for (const part of PARTS) {
    for (const file of sources(root, part)) {
      const targets = specifiers(readFileSync(join(root, file), 'utf8')).map((spec) =>
        relative(root, normalize(join(root, dirname(file), spec)))
          .split('\\')
          .join('/'),
      );
      graph.set(file, targets);
      for (const target of targets) {
        const to = target.split('/')[0];
        if (to === part) continue;
        if (!PARTS.includes(to)) continue; // node_modules are each part's own business (its package.json)
        if (!MAY_IMPORT[part].includes(to))
          problems.push(
            `${file} imports ${target}: ${part}/ may import ${MAY_IMPORT[part].join(', ') || 'no other part'} (${part}/README.md)`,
          );
        else if ((NOT_FOR[part] ?? []).includes(target))
          problems.push(`${file} imports ${target}: ${part}/ must not load it (grpc-js); proto/index.ts has what the client needs`);
        else if (!entriesOf(to).includes(target))
          problems.push(`${file} imports ${target}: another part only through its entry, ${entriesOf(to).join(' or ')}`);
      }
    }
  }
  // Cycles: a depth-first walk over the non-test modules; each cycle reported once, by its smallest member.
  const state = new Map();
  const stack = [];
  const seen = new Set();
  const visit = (file) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'open') {
        const loop = stack.slice(stack.indexOf(next));
        const key = [...loop].sort().join(' ');
        if (!seen.has(key)) {
          seen.add(key);
          problems.push(`import cycle: ${[...loop, next].join(' → ')}`);
        }
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  problems.push(...checkPackages(root, graph));
  for (const file of graph.keys()) {
    if (GENERATED.includes(file)) continue;
    const lines = readFileSync(join(root, file), 'utf8').split('\n').length - 1;
    if (lines > MAX_SOURCE_LINES) problems.push(`${file} has ${lines} lines, more than ${MAX_SOURCE_LINES}: split it along its seams`);
  }
  return { modules: graph.size, problems };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { modules, problems } = checkImports();
  if (problems.length > 0) {
    process.stderr.write(
      `import rules: ${problems.length} problem(s) in ${modules} modules\n${problems.map((p) => `  ${p}`).join('\n')}\n`,
    );
    process.exit(1);
  }
  process.stdout.write(
    `import rules: ${modules} modules, every import allowed, no cycles, every package.json agrees with its code, no source file over ${MAX_SOURCE_LINES} lines\n`,
  );
}
