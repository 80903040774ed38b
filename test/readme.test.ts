// The README's promise, as written: `satchel up` from the built CLI, and a function in another process that
// imports 'satchel' by name and uses the ticket: from an empty project that installed the packed client, as
// README's "Install the client" says.

import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { Satchel } from '../client/index.ts';

const run = promisify(execFile);

test('satchel up serves a function written as the README shows, then stops clean', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'satchel-readme-'));
  const stateDir = join(dir, 'state');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const up = spawn(process.execPath, ['bin/satchel.js', 'up', '--state-dir', stateDir, '--controller-port', '0', '--console-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  up.stdout.on('data', (d) => (output += d));
  up.stderr.on('data', (d) => (output += d));
  t.teardown(() => up.kill('SIGKILL'));
  const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));

  const clusterFile = join(stateDir, 'cluster.json');
  for (let i = 0; i < 300 && !output.includes('Satchel is up'); i++) await new Promise((r) => setTimeout(r, 50));
  t.true(output.includes('Satchel is up'), output);
  const info = JSON.parse(await readFile(clusterFile, 'utf8'));
  t.regex(info.controller, /^127\.0\.0\.1:\d+$/);
  t.regex(info.console, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.truthy(info.adminToken);

  const satchel = await Satchel.connect(info.controller, { key: info.tenantKey });
  const job = await satchel.registerJob('readme');
  await job.put('input/1', 'hello satchel');
  // An outside project: the client's tarball, installed by itself (it declares no dependency: nothing fetched).
  const project = join(dir, 'project');
  const packs = join(dir, 'packs');
  await run('mkdir', ['-p', packs, project]);
  await run('npm', ['pack', '--workspace', 'client', '--pack-destination', packs, '--silent']);
  const tarball = join(packs, (await readdir(packs)).find((f) => f.endsWith('.tgz'))!);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'outside', version: '1.0.0', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: project });
  t.deepEqual(
    await readdir(join(project, 'node_modules')).then((names) => names.filter((n) => !n.startsWith('.'))),
    ['satchel'],
    'the client and nothing else',
  );
  await copyFile('test/fixtures/readme-function.mjs', join(project, 'function.mjs'));
  const fn = await run(process.execPath, ['function.mjs', job.ticket, '1'], { cwd: project });
  t.is(fn.stderr, '');
  t.is((await job.get('output/1'))?.toString(), 'lehctas olleh');
  await job.deregister();
  satchel.close();

  const pids: number[] = info.nodes.map((n: { pid: number }) => n.pid);
  up.kill('SIGTERM');
  t.is(await exited, 0, output);
  t.false(existsSync(clusterFile), 'cluster.json removed');
  t.false(existsSync(join(stateDir, 'secret')), 'secret removed');
  for (const pid of pids) t.throws(() => process.kill(pid, 0), undefined, `node process ${pid} gone`);
});
