/**
 * `satchel up` itself, as a user runs it: a child process that prints the addresses, writes cluster.json, serves
 * clients and the console, and on SIGTERM/SIGINT stops every process it started and removes its files.
 */
import test, { type ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Satchel } from '../client/index.ts';
import type { ClusterInfoFile } from '../deploy/index.ts';
import { alive, finished, runTs, spawnTs, type Finished } from './helpers/process.ts';
import { eventually } from './helpers/raw-client.ts';

const CLI = 'deploy/cli.ts';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'satchel-cli-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Up {
  child: ChildProcess;
  exit: Promise<Finished>;
  stdout: () => string;
}

/** Starts `satchel up` and waits for "Satchel is up"; kills it in teardown if the test did not stop it. */
async function up(t: ExecutionContext, args: string[]): Promise<Up> {
  const child = spawnTs(CLI, ['up', '--controller-port', '0', '--console-port', '0', ...args]);
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const exit = finished(child, 60_000);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let exited = false;
  void exit.then(() => (exited = true));
  await eventually(() => exited || stdout.includes('Satchel is up'), 30_000, '"Satchel is up"');
  if (exited) {
    const result = await exit;
    throw new Error(`satchel up exited early (code ${result.code}):\n${stdout}\n${result.stderr}`);
  }
  return { child, exit, stdout: () => stdout };
}

/** Every descendant of `pid`, from /proc (empty where there is no /proc). */
function descendants(pid: number): number[] {
  const found: number[] = [];
  const walk = (p: number) => {
    let children: number[] = [];
    try {
      for (const task of readdirSync(`/proc/${p}/task`)) {
        children.push(...readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
      }
    } catch {
      children = [];
    }
    for (const c of children) {
      found.push(c);
      walk(c);
    }
  };
  walk(pid);
  return found;
}

function refuses(address: string): Promise<boolean> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

test('satchel up: prints the addresses, writes cluster.json, serves clients and the console, stops cleanly on SIGTERM', async (t) => {
  const dir = await tempDir(t);
  const stateDir = join(dir, 'state'); // does not exist yet: satchel up creates it, and removes it on stop
  const cluster = await up(t, ['--state-dir', stateDir, '--dram', '2']);
  const out = cluster.stdout();

  const info = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as ClusterInfoFile;
  t.regex(info.controller, /^127\.0\.0\.1:\d+$/);
  t.regex(info.console, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.regex(info.adminToken, /^v1\.@admin\./);
  t.deepEqual(info.nodes.map((n) => n.tier).sort(), ['dram', 'dram', 'hdd', 'ssd'], 'two DRAM nodes asked for, one SSD and one HDD by default');
  t.true(out.includes(info.controller), 'the controller address is printed');
  const printedConsole = /console\s+(http:\/\/\S+)/.exec(out)?.[1];
  t.is(printedConsole, info.console);
  t.false(out.includes(info.adminToken), 'the admin token is not printed');
  t.is(statSync(join(stateDir, 'cluster.json')).mode & 0o077, 0, 'cluster.json is private (it holds the admin token)');

  const pids = new Set([...info.nodes.map((n) => n.pid), ...descendants(cluster.child.pid!)]);
  // Controller, metadata and four nodes (on Linux /proc lists them all; elsewhere only the nodes are known).
  t.true(pids.size >= (existsSync('/proc/self/task') ? 6 : 4), `child pids: ${[...pids].join(' ')}`);
  for (const pid of pids) t.true(alive(pid), `pid ${pid} running`);

  // A client uses it, as the README shows.
  const satchel = await Satchel.connect(info.controller);
  const job = await satchel.registerJob('cli-smoke');
  await job.put('greeting', 'hello');
  const fn = await Satchel.attach(job.ticket);
  t.is((await fn.get('greeting'))?.toString(), 'hello');
  await fn.close();

  // The console at the printed URL.
  const clusterJson = (await (await fetch(`${printedConsole}/api/cluster`)).json()) as { controller: string; nodes: unknown[] };
  t.is(clusterJson.controller, info.controller);
  t.is(clusterJson.nodes.length, 4);
  const jobResponse = await fetch(`${printedConsole}/api/jobs/${job.id}`);
  t.is(jobResponse.status, 200);
  t.is(((await jobResponse.json()) as { id: string }).id, job.id);
  t.is((await fetch(`${printedConsole}/api/jobs/${job.id}`, { method: 'DELETE' })).status, 401);
  t.is((await fetch(`${printedConsole}/api/jobs/${job.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${info.adminToken}` } })).status, 204);
  t.is((await fetch(`${printedConsole}/api/jobs/${job.id}`)).status, 404);
  await job.close();
  satchel.close();

  // The secret and the admin token: generated on first start, private on disk, in no log and no output.
  const secretFile = join(stateDir, 'secret');
  t.is(statSync(secretFile).mode & 0o077, 0, 'the secret file is private (0600)');
  const secret = readFileSync(secretFile, 'utf8').trim();
  t.true(secret.length >= 40, 'a generated secret (32 random bytes)');
  const logs = readdirSync(join(stateDir, 'logs')).map((name) => readFileSync(join(stateDir, 'logs', name), 'utf8')).join('\n');
  t.true(logs.length > 0, 'the processes logged');
  for (const [what, value] of [['secret', secret], ['admin token', info.adminToken], ["admin token's MAC", info.adminToken.split('.').at(-1)!]] as const) {
    t.false(logs.includes(value), `the ${what} is in no log`);
    t.false(cluster.stdout().includes(value), `the ${what} is not printed`);
  }

  // Stop.
  cluster.child.kill('SIGTERM');
  const result = await cluster.exit;
  t.is(result.code, 0, result.stderr);
  t.regex(cluster.stdout(), /SIGTERM: stopping/);
  t.regex(cluster.stdout(), /stopped/);
  for (const pid of pids) t.false(alive(pid), `pid ${pid} still running after stop`);
  t.false(existsSync(stateDir), 'the state dir it created is removed');
  t.true(await refuses(info.controller), 'controller port closed');
  t.true(await refuses(info.console.replace('http://', '')), 'console port closed');
  for (const node of info.nodes) t.true(await refuses(node.address), `node ${node.id} port closed`);
});

test('satchel up in an existing state dir: SIGINT removes only its own files', async (t) => {
  const stateDir = await tempDir(t);
  await writeFile(join(stateDir, 'mine.txt'), 'not satchel’s');
  const cluster = await up(t, ['--state-dir', stateDir]);
  t.true(existsSync(join(stateDir, 'cluster.json')));
  t.true(existsSync(join(stateDir, 'secret')));
  const info = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as ClusterInfoFile;
  const pids = new Set([...info.nodes.map((n) => n.pid), ...descendants(cluster.child.pid!)]);
  cluster.child.kill('SIGINT');
  const result = await cluster.exit;
  t.is(result.code, 0, result.stderr);
  for (const pid of pids) t.false(alive(pid), `pid ${pid} still running`);
  t.deepEqual(readdirSync(stateDir), ['mine.txt']);
});

test('satchel with a bad command or flag exits 2 and says why', async (t) => {
  const cases: [string[], RegExp][] = [
    [['up', '--ssd', 'many'], /--ssd: expected a whole number/],
    [['storage-node', '--tier', 'tape'], /--tier: expected dram, ssd or hdd/],
    [['up', '--controller-port', 'abc'], /not a port/],
    [['up', '--no-such-flag'], /Unknown option/i],
    [['controller', '--node-timeout-ms', '500'], /--node-timeout-ms: expected a whole number of milliseconds ≥ 1000/],
    [['controller', '--token-ttl-ms', 'soon'], /--token-ttl-ms: expected a whole number/],
    [['controller', '--job-quota', 'lots'], /--job-quota/],
    [['storage-node', '--controller', '127.0.0.1:1', '--job-max-connections', '0'], /--job-max-connections: at least 1/],
    [['frobnicate'], /unknown command/],
  ];
  const results = await Promise.all(cases.map(([args]) => runTs(CLI, args)));
  results.forEach((result, i) => {
    const [args, message] = cases[i]!;
    t.is(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, message, args.join(' '));
    t.regex(result.stderr, /Usage: satchel/);
  });
  const help = await runTs(CLI, ['help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /up\s+the whole cluster/);
});
