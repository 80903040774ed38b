#!/usr/bin/env node
// The import rules each folder's README states, checked on every `npm test`: which part may import which, only
// through the other part's index.ts, and no import cycles. Type-only imports count (a client that imports a
// server's types still depends on it). Tests (`*.test.ts`, test/, `test-*`) may reach anywhere: they are not in
// the layering. Our own script rather than dependency-cruiser, whose TypeScript parser stops at TypeScript 6
// (this repository builds with 7, so it saw no .ts file at all).
import { readdirSync, readFileSync } from 'node:fs';
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
/** Each part's entries: index.ts, and proto's grpc.ts (the servers' grpc-js wiring, kept out of index.ts). */
const ENTRIES = { proto: ['proto/index.ts', 'proto/grpc.ts'] };
const entriesOf = (part) => ENTRIES[part] ?? [`${part}/index.ts`];
/** Entries a part may not use: the client (and so a function) never loads grpc-js. */
const NOT_FOR = { client: ['proto/grpc.ts'] };

const isTest = (file) => file.endsWith('.test.ts') || file.startsWith('test/') || /(^|\/)test-[^/]*$/.test(file);

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

/** Relative specifiers of every static import, re-export and dynamic import in `text`. */
function specifiers(text) {
  const found = new Set();
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const match of code.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) {
    const spec = match[1] ?? match[2] ?? match[3];
    if (spec.startsWith('.')) found.add(spec);
  }
  return [...found];
}

/** Every problem with the imports of the parts under `root` (the repository by default). */
export function checkImports(root = ROOT) {
  const problems = [];
  const graph = new Map();
  for (const part of PARTS) {
    for (const file of sources(root, part)) {
      const targets = specifiers(readFileSync(join(root, file), 'utf8')).map((spec) => relative(root, normalize(join(root, dirname(file), spec))).split('\\').join('/'));
      graph.set(file, targets);
      for (const target of targets) {
        const to = target.split('/')[0];
        if (to === part) continue;
        if (!PARTS.includes(to)) continue; // node_modules are each part's own business (its package.json)
        if (!MAY_IMPORT[part].includes(to)) problems.push(`${file} imports ${target}: ${part}/ may import ${MAY_IMPORT[part].join(', ') || 'no other part'} (${part}/README.md)`);
        else if ((NOT_FOR[part] ?? []).includes(target)) problems.push(`${file} imports ${target}: ${part}/ must not load it (grpc-js); proto/index.ts has what the client needs`);
        else if (!entriesOf(to).includes(target)) problems.push(`${file} imports ${target}: another part only through its entry, ${entriesOf(to).join(' or ')}`);
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
  return { modules: graph.size, problems };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { modules, problems } = checkImports();
  if (problems.length > 0) {
    process.stderr.write(`import rules: ${problems.length} problem(s) in ${modules} modules\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write(`import rules: ${modules} modules, every import allowed, no cycles\n`);
}
