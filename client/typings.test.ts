/**
 * The typings the client publishes (issue 17): built as `npm pack --workspace client` builds them (client/
 * tsconfig.json), they show users the API and nothing behind it — no @internal member (the router, the
 * constructors Satchel calls), no server type — and they hold together, checked as a project that installed the
 * package compiles them.
 */

import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');

/** Each public class's members a user can reach (public or protected), as the typings declare them. */
const API: Record<string, string[]> = {
  Satchel: ['address', 'connect', 'attach', 'registerJob', 'close'],
  Job: [
    'id',
    'ticket',
    'epoch',
    'redisUrl',
    'put',
    'get',
    'stat',
    'delete',
    'list',
    'waitFor',
    'incr',
    'barrier',
    'putMany',
    'getMany',
    'watch',
    'close',
  ],
  RegisteredJob: ['deregister', 'close'],
  Watch: ['prefix', 'ready', '[Symbol.asyncIterator]', 'next', 'return', 'close', 'buffered'],
};
/** What the client's typings that users load may name from proto: the types of the public API. */
const FROM_PROTO = ['SatchelError', 'ErrorCode', 'ClientTls', 'JobHints'];

/** A project using every public name; tsc must accept it, and refuse each @ts-expect-error line. */
const CONSUMER = `
import { Satchel, SatchelError, Job, RegisteredJob, Watch } from 'satchel';
import type { ConnectOptions, JobHints, JobOptions, Stat, ListOptions, WaitOptions, BatchOptions, WatchEvent, WatchOptions, ErrorCode } from 'satchel';

export async function driver(address: string, options: ConnectOptions, hints: JobHints): Promise<string> {
  const satchel: Satchel = await Satchel.connect(address, options);
  const job: RegisteredJob = await satchel.registerJob('typed', hints);
  const ticket: string = job.ticket;
  await job.deregister();
  satchel.close();
  // @ts-expect-error internal: registerJob's
  job.useDriverToken('t');
  // @ts-expect-error internal: registerJob's
  job.renewLeaseEvery(1);
  return ticket;
}

export async function fn(ticket: string, options: JobOptions, list: ListOptions, wait: WaitOptions, batch: BatchOptions, watchOptions: WatchOptions): Promise<void> {
  const job: Job = await Satchel.attach(ticket, options);
  await job.put('k', 'v');
  await job.put('k', new Uint8Array(1));
  const value: Buffer | null = await job.get('k');
  const stat: Stat | null = await job.stat('k');
  const deleted: boolean = await job.delete('k');
  for await (const key of job.list('p/', list)) key satisfies string;
  const waited: Buffer = await job.waitFor('k', wait);
  const total: number = await job.incr('n', 2);
  await job.barrier('b', 3, wait);
  await job.putMany([['a', 'x']], batch);
  await job.putMany({ a: 'x' });
  const values: (Buffer | null)[] = await job.getMany(['a'], batch);
  const watch: Watch = await job.watch('p/', watchOptions);
  await watch.ready;
  for await (const event of watch) event satisfies WatchEvent;
  const pending: number = watch.buffered;
  await watch.close();
  const facts: [string, number, string] = [job.id, job.epoch, watch.prefix];
  await job.close();
  try {
    await job.get('k');
  } catch (error) {
    if (error instanceof SatchelError) error.code satisfies ErrorCode;
  }
  console.log(value, stat, deleted, waited, total, values, pending, facts);
  // @ts-expect-error internal: Satchel.attach's
  await Job.open(ticket);
}
`;

/** The members of `name` a user can reach, from its declaration in `dts`. */
function reachableMembers(dts: string, name: string): string[] {
  const start = dts.indexOf(`export declare class ${name} `);
  if (start < 0) return [];
  const body = dts.slice(dts.indexOf('{', start) + 1, dts.indexOf('\n}', start));
  const members: string[] = [];
  for (const line of body.split('\n')) {
    const text = line.trim();
    if (!line.startsWith('    ') || line.startsWith('     ') || text === '' || text.startsWith('/**') || text.startsWith('*')) continue;
    if (text.startsWith('private ')) continue;
    const declared = text.replace(/^((static|readonly|get|set|protected|abstract|async)\s+)*/, '');
    members.push(declared.startsWith('[') ? declared.slice(0, declared.indexOf(']') + 1) : declared.match(/^[\w$]+/)![0]);
  }
  return [...new Set(members)];
}

/** Every .d.ts under `dir`, relative to it. */
async function declarations(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.d.ts')).map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** The specifiers a declaration file imports or re-exports, with the names it takes. */
function importsOf(dts: string): { spec: string; names: string[] }[] {
  const found: { spec: string; names: string[] }[] = [];
  for (const match of dts.matchAll(/^(?:import|export)\s+(?:type\s+)?(?:\{([^}]*)\}|[\w$]+|\*(?:\s+as\s+[\w$]+)?)\s+from\s+'([^']+)'/gm)) {
    const names = (match[1] ?? '')
      .split(',')
      .map(
        (n) =>
          n
            .trim()
            .replace(/^type\s+/, '')
            .split(/\s+as\s+/)[0]!,
      )
      .filter((n) => n !== '');
    found.push({ spec: match[2]!, names });
  }
  return found;
}

test('the published typings show the API and nothing behind it, and compile in a project that installed them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'satchel-typings-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pkg = join(dir, 'node_modules', 'satchel');
  const dist = join(pkg, 'dist');
  // The client's own build (what `npm pack --workspace client` ships), declarations only, out of the way of client/dist.
  await run(TSC, ['-p', join(ROOT, 'client', 'tsconfig.json'), '--outDir', dist, '--emitDeclarationOnly']);
  await cp(join(ROOT, 'client', 'package.json'), join(pkg, 'package.json'));
  const files = await declarations(dist);
  t.true(files.includes(join('client', 'index.d.ts')), 'the entry the package exports');

  for (const file of files) {
    const dts = await readFile(join(dist, file), 'utf8');
    // Only the client and the proto modules it runs: no server part compiled in.
    t.regex(file, /^(client|proto)[/\\]/, `${file}: outside client/ and proto/`);
    t.false(dts.includes('@internal'), `${file} publishes an @internal member (stripInternal off?)`);
    for (const { spec } of importsOf(dts)) {
      if (spec.startsWith('.')) t.regex(join(dirname(file), spec), /^(client|proto)[/\\]/, `${file} imports ${spec}`);
      else t.true(spec.startsWith('node:') || builtinModules.includes(spec), `${file} imports the package ${spec}: users would need it`);
    }
  }

  // What a user's compiler loads from the entry: the public classes' reachable members, and from proto only the
  // types of the public API.
  const seen = new Set<string>();
  const queue = [join('client', 'index.d.ts')];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const dts = await readFile(join(dist, file), 'utf8');
    for (const { spec, names } of importsOf(dts)) {
      const target = join(dirname(file), spec.replace(/\.ts$/, '.d.ts'));
      if (target.startsWith('proto')) {
        for (const name of names) t.true(FROM_PROTO.includes(name), `${file} shows users proto's ${name}`);
      } else {
        queue.push(target);
      }
    }
    for (const [name, members] of Object.entries(API)) {
      if (dts.includes(`export declare class ${name} `))
        t.deepEqual(reachableMembers(dts, name).sort(), [...members].sort(), `${name}'s members in ${file}`);
    }
  }
  t.deepEqual([...seen].map((f) => f.replace(/\\/g, '/')).sort(), [
    'client/index.d.ts',
    'client/job.d.ts',
    'client/options.d.ts',
    'client/satchel.d.ts',
    'client/watch.d.ts',
  ]);

  // Every published file compiles (nothing refers to a member stripped away), and the API is all there.
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await writeFile(join(dir, 'consumer.ts'), CONSUMER);
  const compilerOptions = {
    strict: true,
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'es2022',
    noEmit: true,
    skipLibCheck: false,
    // No `types`, as a project has by default since TypeScript 6: the typings bring Node's in themselves.
    types: [],
    typeRoots: [join(ROOT, 'node_modules', '@types')],
  };
  const all = files.map((file) => join(dist, file));
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['consumer.ts', ...all] }));
  const compiled = await run(TSC, ['-p', join(dir, 'tsconfig.json')]).then(
    () => '',
    (error: { stdout?: string; message: string }) => error.stdout || error.message,
  );
  t.is(compiled, '', 'tsc on the consumer and every published .d.ts');
});
