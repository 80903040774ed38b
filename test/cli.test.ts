/**
 * `satchel up` itself, as a user runs it: a child process that prints the addresses, writes cluster.json, serves
 * clients and the console, and on SIGTERM/SIGINT stops every process it started and removes its files. It owns
 * its state folder: a second one on the same folder refuses and touches nothing; a killed one's lock is taken
 * over; a failed start says why in the failing process's own words.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Satchel } from '../client/index.ts';
import type { ClusterInfoFile, LockRecord } from '../deploy/index.ts';
import { rejection } from './helpers/assert.ts';
import { alive, type Finished, finished, runTs, spawnTs } from './helpers/process.ts';
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

// Tests that start clusters run one at a time: each is five processes compiling through tsx, and several at once
// on a small machine take longer to start than the tests allow.

/** Starts `satchel up` and waits for "Satchel is up"; kills it in teardown if the test did not stop it. */
async function up(t: ExecutionContext, args: string[]): Promise<Up> {
  t.timeout(180_000);
  const child = spawnTs(CLI, ['up', '--controller-port', '0', '--console-port', '0', ...args]);
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const exit = finished(child, 120_000);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let exited = false;
  void exit.then(() => (exited = true));
  // A hang guard, not a speed check: up takes ~6 s on an idle 2-core machine, and CI runs two test files at once.
  await eventually(() => exited || stdout.includes('Satchel is up'), 60_000, '"Satchel is up"');
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

test.serial(
  'satchel up: prints the addresses, writes cluster.json, serves clients and the console, stops cleanly on SIGTERM',
  async (t) => {
    const dir = await tempDir(t);
    const stateDir = join(dir, 'state'); // does not exist yet: satchel up creates it, and removes it on stop
    const cluster = await up(t, ['--state-dir', stateDir, '--dram', '2']);
    const out = cluster.stdout();

    const info = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as ClusterInfoFile;
    t.regex(info.controller, /^127\.0\.0\.1:\d+$/);
    t.regex(info.console, /^http:\/\/127\.0\.0\.1:\d+$/);
    t.regex(info.adminToken, /^v1\.@admin\./);
    t.deepEqual(
      info.nodes.map((n) => n.tier).sort(),
      ['dram', 'dram', 'hdd', 'ssd'],
      'two DRAM nodes asked for, one SSD and one HDD by default',
    );
    t.true(out.includes(info.controller), 'the controller address is printed');
    // The console link carries the read-only viewer token, so the page opens without asking for it.
    t.is(/console\s+(http:\/\/\S+)/.exec(out)?.[1], `${info.console}/#token=${info.viewerToken}`);
    const printedConsole = info.console;
    t.regex(info.viewerToken, /^v1\.@viewer\./);
    t.regex(info.tenantKey, /^sk1\.default\./);
    t.false(out.includes(info.adminToken), 'the admin token is not printed');
    t.is(statSync(join(stateDir, 'cluster.json')).mode & 0o077, 0, 'cluster.json is private (it holds the admin token)');

    const pids = new Set([...info.nodes.map((n) => n.pid), ...descendants(cluster.child.pid!)]);
    // Controller, metadata and four nodes (on Linux /proc lists them all; elsewhere only the nodes are known).
    t.true(pids.size >= (existsSync('/proc/self/task') ? 6 : 4), `child pids: ${[...pids].join(' ')}`);
    for (const pid of pids) t.true(alive(pid), `pid ${pid} running`);

    // A client uses it, as the README shows.
    const satchel = await Satchel.connect(info.controller, { key: info.tenantKey });
    const job = await satchel.registerJob('cli-smoke');
    await job.put('greeting', 'hello');
    const fn = await Satchel.attach(job.ticket);
    t.is((await fn.get('greeting'))?.toString(), 'hello');
    await fn.close();

    // The console at the printed URL.
    const clusterJson = (await (
      await fetch(`${printedConsole}/api/cluster`, { headers: { authorization: `Bearer ${info.viewerToken}` } })
    ).json()) as { controller: string; nodes: unknown[] };
    t.is(clusterJson.controller, info.controller);
    t.is(clusterJson.nodes.length, 4);
    const jobResponse = await fetch(`${printedConsole}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${info.viewerToken}` } });
    t.is(jobResponse.status, 200);
    t.is(((await jobResponse.json()) as { id: string }).id, job.id);
    t.is((await fetch(`${printedConsole}/api/jobs/${job.id}`, { method: 'DELETE' })).status, 401);
    t.is(
      (await fetch(`${printedConsole}/api/jobs/${job.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${info.adminToken}` } }))
        .status,
      204,
    );
    t.is((await fetch(`${printedConsole}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${info.viewerToken}` } })).status, 404);
    await job.close();
    satchel.close();

    // Tenants, managed with the admin token from cluster.json: a key printed once, limits held, removal revokes.
    // The built CLI (npm test builds first): tsx would add seconds to each of these short commands.
    const satchelCli = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, ['bin/satchel.js', ...args], (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
        ),
      );
    const added = await satchelCli(['tenant', 'add', 'team-b', '--max-jobs', '1', '--state-dir', stateDir, '--json']);
    t.is(added.code, 0, added.stderr);
    const teamB = JSON.parse(added.stdout) as { name: string; key: string; maxJobs: number };
    t.is(teamB.maxJobs, 1);
    const teamClient = await Satchel.connect(info.controller, { key: teamB.key });
    const teamJob = await teamClient.registerJob('team-b-job');
    t.is((await rejection(t, teamClient.registerJob('one-too-many'))).code, 'FULL');
    const listed = await satchelCli(['tenant', 'list', '--state-dir', stateDir]);
    t.regex(listed.stdout, /^team-b\s+1\s+1\s/m);
    t.regex(listed.stdout, /^default\s+0\s+-\s/m);
    const removed = await satchelCli(['tenant', 'remove', 'team-b', '--state-dir', stateDir]);
    t.regex(removed.stdout, /tenant team-b removed; 1 of its jobs deregistered/);
    t.is((await rejection(t, teamClient.registerJob('after-removal'))).code, 'UNAUTHORIZED');
    await teamJob.close();
    teamClient.close();
    const noAdmin = await satchelCli(['tenant', 'list', '--controller', info.controller, '--admin-token', info.viewerToken]);
    t.is(noAdmin.code, 1);
    t.regex(noAdmin.stderr, /admin token/);

    // The secret and the admin token: generated on first start, private on disk, in no log and no output.
    const secretFile = join(stateDir, 'secret');
    t.is(statSync(secretFile).mode & 0o077, 0, 'the secret file is private (0600)');
    const secret = readFileSync(secretFile, 'utf8').trim();
    t.true(secret.length >= 40, 'a generated secret (32 random bytes)');
    const logs = readdirSync(join(stateDir, 'logs'))
      .map((name) => readFileSync(join(stateDir, 'logs', name), 'utf8'))
      .join('\n');
    t.true(logs.length > 0, 'the processes logged');
    for (const [what, value] of [
      ['secret', secret],
      ['admin token', info.adminToken],
      ["admin token's MAC", info.adminToken.split('.').at(-1)!],
    ] as const) {
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
  },
);

test.serial('satchel up in an existing state dir: makes it private, and SIGINT removes only its own files', async (t) => {
  const stateDir = await tempDir(t);
  await writeFile(join(stateDir, 'mine.txt'), 'not satchel’s');
  // A folder and a secret someone left readable by all: the cluster makes them its owner's only.
  await chmod(stateDir, 0o755);
  await writeFile(join(stateDir, 'secret'), Buffer.alloc(32, 9).toString('base64'), { mode: 0o644 });
  await chmod(join(stateDir, 'secret'), 0o644);
  const cluster = await up(t, ['--state-dir', stateDir]);
  t.true(existsSync(join(stateDir, 'cluster.json')));
  t.is(statSync(stateDir).mode & 0o777, 0o700);
  t.is(statSync(join(stateDir, 'secret')).mode & 0o777, 0o600);
  t.is(statSync(join(stateDir, 'cluster.json')).mode & 0o777, 0o600);
  const info = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as ClusterInfoFile;
  const pids = new Set([...info.nodes.map((n) => n.pid), ...descendants(cluster.child.pid!)]);
  cluster.child.kill('SIGINT');
  const result = await cluster.exit;
  t.is(result.code, 0, result.stderr);
  for (const pid of pids) t.false(alive(pid), `pid ${pid} still running`);
  t.deepEqual(readdirSync(stateDir).sort(), ['mine.txt', 'secret'], 'the secret was there before: it stays');
});

test('satchel with a bad command or flag exits 2 and says why', async (t) => {
  const cases: [string[], RegExp][] = [
    [['up', '--ssd', 'many'], /--ssd: expected a whole number/],
    [['storage-node', '--tier', 'tape'], /--tier: expected dram, ssd or hdd/],
    [['up', '--controller-port', 'abc'], /not a port/],
    [['up', '--controller-port', '99999'], /--controller-port/],
    [['up', '--dram-capacity', '4XB'], /--dram-capacity: not a size: "4XB"/],
    [['up', '--no-such-flag'], /Unknown option/i],
    [['up', '--controller-heap', 'huge'], /--controller-heap: small or large, got "huge"/],
    [['up', '--spare-jobs', '65'], /--spare-jobs: expected a whole number from 0 to 64, got "65"/],
    [['controller', '--spare-jobs', 'many'], /--spare-jobs: expected a whole number from 0 to 64, got "many"/],
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
    // Refused before anything starts: no "starting Satchel in …" first.
    t.notRegex(result.stdout, /starting/, args.join(' '));
  });
  const help = await runTs(CLI, ['help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /up\s+the whole cluster/);
  // Asking a command for help gets the usage, and starts nothing.
  for (const args of [
    ['up', '--help'],
    ['storage-node', '-h'],
    ['tenant', 'add', '--help'],
  ]) {
    const asked = await runTs(CLI, args);
    t.is(asked.code, 0, `${args.join(' ')}: ${asked.stderr}`);
    t.regex(asked.stdout, /Usage: satchel/, args.join(' '));
  }
});

/** Every file and folder under `dir` with its kind, mode, size and content hash, by path. */
function snapshot(dir: string): Record<string, string> {
  const found: Record<string, string> = {};
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(dir, relative), { withFileTypes: true })) {
      const path = join(relative, entry.name);
      const stat = statSync(join(dir, path));
      if (entry.isDirectory()) {
        found[path] = `dir ${stat.mode.toString(8)}`;
        walk(path);
      } else if (relative === 'logs') {
        // The running cluster's own processes append to their logs (a slow report's warning, on a loaded machine).
        found[path] = `log ${stat.mode.toString(8)}`;
      } else {
        found[path] = `file ${stat.mode.toString(8)} ${stat.size} ${stat.mtimeMs} ${createHash('sha256')
          .update(readFileSync(join(dir, path)))
          .digest('hex')}`;
      }
    }
  };
  walk('');
  return found;
}

const MiB = 1024 * 1024;
/** Hints that place a job on each tier (controller/README.md; test/tiers.test.ts). */
const TIER_HINTS = {
  dram: { latencySensitive: true, capacity: 4 * MiB },
  ssd: { latencySensitive: false, capacity: 32 * MiB, peakThroughput: 100 * MiB },
  hdd: { capacity: 1024 * MiB, peakThroughput: 100_000 },
};

/** A job on each tier of the cluster stores and serves a value (and is deregistered). */
async function everyTierServes(t: ExecutionContext, info: ClusterInfoFile): Promise<void> {
  const satchel = await Satchel.connect(info.controller, { key: info.tenantKey });
  try {
    for (const [tier, hints] of Object.entries(TIER_HINTS)) {
      const job = await satchel.registerJob(`still-${tier}`, hints);
      try {
        const placed = (
          (await (
            await fetch(`${info.console}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${info.viewerToken}` } })
          ).json()) as { tier: string }
        ).tier;
        t.is(placed, tier, `the ${tier} job is on ${tier}`);
        await job.put('k', `value on ${tier}`);
        t.is((await job.get('k'))?.toString(), `value on ${tier}`, `${tier} serves`);
      } finally {
        await job.deregister();
      }
    }
  } finally {
    satchel.close();
  }
}

/**
 * Runs `satchel up` to its exit, noting when its first line ("starting Satchel in …") came: that line is printed
 * once the CLI's modules are loaded, so from it to the exit is the command's own work, without the ~1–1.5 s tsx
 * spends compiling the CLI at every start (which `node bin/satchel.js` does not pay).
 */
async function upUntilExit(args: string[]): Promise<Finished & { spawnToExitMs: number; ownMs: number }> {
  const spawned = performance.now();
  const child = spawnTs(CLI, ['up', ...args]);
  let firstLine: number | undefined;
  child.stdout!.on('data', () => (firstLine ??= performance.now()));
  const result = await finished(child, 30_000);
  const exited = performance.now();
  return { ...result, spawnToExitMs: exited - spawned, ownMs: exited - (firstLine ?? spawned) };
}

test.serial(
  'a second satchel up on a running cluster’s folder refuses within a second, changes nothing, and every tier keeps serving',
  async (t) => {
    const dir = await tempDir(t);
    const stateDir = join(dir, 'state');
    const first = await up(t, ['--state-dir', stateDir]);
    const info = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as ClusterInfoFile;
    const lock = JSON.parse(readFileSync(join(stateDir, 'satchel.lock'), 'utf8')) as LockRecord;
    t.is(lock.pid, first.child.pid!, 'the lock names satchel up');
    t.is(lock.console, info.console);
    t.is(statSync(join(stateDir, 'satchel.lock')).mode & 0o777, 0o600);
    const processes = descendants(first.child.pid!).sort();

    const before = snapshot(stateDir);
    const logs = readdirSync(join(stateDir, 'logs')).map((name) => [name, readFileSync(join(stateDir, 'logs', name))] as const);
    const second = await upUntilExit(['--state-dir', stateDir, '--controller-port', '0', '--console-port', '0']);
    t.log(`refused ${second.ownMs.toFixed(0)} ms after its first line; ${second.spawnToExitMs.toFixed(0)} ms from spawn through tsx`);
    t.is(second.code, 1, second.stderr);
    t.is(second.stderr, `satchel: a cluster is already running from ${stateDir} (pid ${first.child.pid}, ${info.console})\n`);
    t.true(second.ownMs < 1_000, `refused in ${second.ownMs} ms`);
    t.notRegex(second.stdout, /controller|metadata|storage-node/, 'no process started');
    t.deepEqual(snapshot(stateDir), before, 'every file and folder as it was: none created, changed or removed');
    for (const [name, was] of logs) {
      const now = readFileSync(join(stateDir, 'logs', name));
      t.true(now.subarray(0, was.length).equals(was), `${name} only appended to, by its own process`);
    }
    t.deepEqual(descendants(first.child.pid!).sort(), processes, "the first cluster's processes are the same");

    await everyTierServes(t, info);
    first.child.kill('SIGTERM');
    t.is((await first.exit).code, 0);
    t.false(existsSync(stateDir), 'the first cluster removed its folder on stop, lock included');
  },
);

test.serial('a lock left by a SIGKILLed satchel up is taken over, and the new cluster cleans up after both', async (t) => {
  const dir = await tempDir(t);
  const stateDir = join(dir, 'state');
  const args = ['--state-dir', stateDir, '--ssd', '1', '--hdd', '0'];
  const killed = await up(t, args);
  const oldPid = killed.child.pid!;
  const oldChildren = descendants(oldPid);
  killed.child.kill('SIGKILL');
  await killed.exit;
  t.true(existsSync(join(stateDir, 'satchel.lock')), 'a SIGKILL leaves the lock');

  const next = await up(t, args);
  t.regex(
    next.stdout(),
    new RegExp(`taking over ${stateDir} from a cluster that did not stop \\(started .*, pid ${oldPid} is not running\\)`),
  );
  for (const pid of oldChildren) t.false(alive(pid), `the killed cluster's process ${pid} is gone`);
  const lock = JSON.parse(readFileSync(join(stateDir, 'satchel.lock'), 'utf8')) as LockRecord;
  t.is(lock.pid, next.child.pid!);
  const info = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as ClusterInfoFile;
  const satchel = await Satchel.connect(info.controller, { key: info.tenantKey });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('after-takeover', TIER_HINTS.ssd);
  await job.put('k', 'v');
  t.is((await job.get('k'))?.toString(), 'v');
  await job.deregister();

  next.child.kill('SIGTERM');
  t.is((await next.exit).code, 0);
  t.false(existsSync(stateDir), 'what both runs created is gone (the first made the folder)');
});

test.serial('a lock whose PID now belongs to another program is stale: taken over, and only satchel’s files are removed', async (t) => {
  const stateDir = await tempDir(t);
  const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => void stranger.kill('SIGKILL'));
  // As an old lock would be after a reboot: the PID is alive, running something else.
  await writeFile(join(stateDir, 'satchel.lock'), JSON.stringify({ pid: stranger.pid, startedAt: '2026-01-01T00:00:00.000Z' }));
  await writeFile(join(stateDir, 'mine.txt'), 'not satchel’s');
  const cluster = await up(t, ['--state-dir', stateDir, '--ssd', '0', '--hdd', '0']);
  t.regex(
    cluster.stdout(),
    new RegExp(`taking over .* \\(started 2026-01-01T00:00:00.000Z, pid ${stranger.pid} is now another program\\)`),
  );
  t.true(alive(stranger.pid!), 'the other program is left alone');
  cluster.child.kill('SIGTERM');
  t.is((await cluster.exit).code, 0);
  t.deepEqual(readdirSync(stateDir), ['mine.txt']);
});

test.serial("a process that fails at start: satchel up prints its own error line and its log's path, not a usage text", async (t) => {
  const dir = await tempDir(t);
  const stateDir = join(dir, 'state');
  const result = await runTs(CLI, [
    'up',
    '--state-dir',
    stateDir,
    '--controller-port',
    '0',
    '--console-port',
    '0',
    '--dram-capacity',
    '0',
    '--ssd',
    '0',
    '--hdd',
    '0',
  ]);
  t.is(result.code, 1, result.stderr);
  const match =
    /^satchel: storage-node exited during start \(code 2\): capacity must be a positive number of bytes\n {2}\(its log: (\S+)\)\n$/.exec(
      result.stderr,
    );
  t.truthy(match, result.stderr);
  t.notRegex(result.stderr, /Usage/);
  const log = match![1]!;
  t.true(log.startsWith(join(stateDir, 'logs')));
  t.regex(await readFile(log, 'utf8'), /^satchel: capacity must be a positive number of bytes$/m);
  // Everything else it created is gone: the log named is all that is left.
  t.deepEqual(readdirSync(stateDir, { recursive: true }).sort(), ['logs', join('logs', log.split('/').at(-1)!)]);
});

test('a port in use names the flag that picks another, for satchel up and a lone satchel controller', async (t) => {
  const dir = await tempDir(t);
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const port = (holder.address() as net.AddressInfo).port;
  const secret = join(dir, 'secret');
  await writeFile(secret, Buffer.alloc(32, 7).toString('base64'), { mode: 0o600 });
  const cases: [string[], string][] = [
    [
      ['up', '--state-dir', join(dir, 'a'), '--controller-port', String(port), '--console-port', '0'],
      `port ${port} is in use (the controller's): pick another with --controller-port P (0 = any free port)`,
    ],
    [
      ['up', '--state-dir', join(dir, 'b'), '--controller-port', '0', '--console-port', String(port)],
      `port ${port} is in use (the console's): pick another with --console-port P (0 = any free port)`,
    ],
    [
      ['controller', '--secret-file', secret, '--port', String(port), '--console-port', '0'],
      `port ${port} is in use (the controller's): pick another with --port P (0 = any free port)`,
    ],
    [
      ['controller', '--secret-file', secret, '--port', '0', '--console-port', String(port)],
      `port ${port} is in use (the console's): pick another with --console-port P (0 = any free port)`,
    ],
  ];
  const results = await Promise.all(cases.map(([args]) => runTs(CLI, args)));
  results.forEach((result, i) => {
    const [args, message] = cases[i]!;
    t.is(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    t.true(result.stderr.split('\n').includes(`satchel: ${message}`), `${args.join(' ')}: ${result.stderr}`);
  });
  t.false(existsSync(join(dir, 'a')), 'satchel up removed the folder it made');
  t.false(existsSync(join(dir, 'b')));
});
