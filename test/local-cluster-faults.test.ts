/**
 * LocalCluster's fault API, the way a nemesis (and Kubernetes) uses it: kill, start, restart, freeze and thaw a
 * storage node by id; the node comes back as itself (id, data port, metrics port), and stop() stays quick and
 * clean whatever state the nodes were left in.
 */

import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { type ClusterInfoFile, LocalCluster } from '../deploy/index.ts';
import { alive } from './helpers/process.ts';
import { eventually } from './helpers/raw-client.ts';

const MiB = 1024 * 1024;

function state(pid: number): string {
  return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
}

function clusterFile(cluster: LocalCluster): ClusterInfoFile {
  return JSON.parse(readFileSync(join(cluster.stateDir, 'cluster.json'), 'utf8')) as ClusterInfoFile;
}

function accepts(address: string): Promise<boolean> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('restartNode: a new process with the same id, address and metrics address; killNode/startNode mark it down and up', async (t) => {
  const cluster = await LocalCluster.start({ dram: 2, dramCapacity: 64 * MiB });
  t.teardown(() => cluster.stop());
  const [a, b] = cluster.info.nodes.map((n) => ({ ...n })) as [ClusterInfoFile['nodes'][0], ClusterInfoFile['nodes'][0]];
  const oldPid = cluster.nodePid(a.id)!;
  t.is(oldPid, a.pid);

  const ready = await cluster.restartNode(a.id);
  const newPid = cluster.nodePid(a.id)!;
  t.false(alive(oldPid), 'the old process is gone');
  t.true(alive(newPid));
  t.not(newPid, oldPid, 'a new process');
  t.is(ready.id, a.id, 'the same --id');
  t.is(ready.address, a.address, 'the same data port');
  t.is(ready.metrics, a.metrics, 'the same metrics port');
  t.true(await accepts(a.address), 'it serves on its address');
  t.is((await fetch(a.metrics!)).status, 200, 'and /metrics on its metrics address');
  const entry = clusterFile(cluster).nodes.find((n) => n.id === a.id)!;
  t.deepEqual(
    [entry.pid, entry.address, entry.metrics, entry.state],
    [newPid, a.address, a.metrics, undefined],
    'cluster.json has the new pid',
  );
  t.deepEqual(cluster.nodePids.get(a.id), newPid);

  // Kill, and start again, separately; a running node is not started twice.
  await t.throwsAsync(cluster.startNode(b.id), { message: /still running/ });
  await cluster.killNode(b.id);
  t.false(alive(b.pid));
  t.is(cluster.nodePid(b.id), undefined);
  t.is(cluster.info.nodes.find((n) => n.id === b.id)?.state, 'down', 'info lists it, down');
  t.is(clusterFile(cluster).nodes.find((n) => n.id === b.id)?.state, 'down', 'so does cluster.json');
  await cluster.killNode(b.id); // already down: nothing to do
  const back = await cluster.startNode(b.id);
  t.is(back.address, b.address);
  t.is(clusterFile(cluster).nodes.find((n) => n.id === b.id)?.state, undefined);
  t.is(cluster.info.nodes.length, 2, 'no node added or lost');
  await t.throwsAsync(cluster.restartNode('dram-nosuch'), { message: /no storage node dram-nosuch/ });
});

test('freezeNode/thawNode: SIGSTOP and SIGCONT (state T while frozen); stop() after a freeze, and after a kill behind its back, is quick', async (t) => {
  const cluster = await LocalCluster.start({ dram: 2, dramCapacity: 64 * MiB });
  t.teardown(() => cluster.stop());
  const [a, b] = cluster.info.nodes.map((n) => n.id) as [string, string];
  const pid = cluster.nodePid(a)!;

  await cluster.freezeNode(a);
  t.is(state(pid), 'T', 'stopped while frozen');
  t.is(clusterFile(cluster).nodes.find((n) => n.id === a)?.state, 'frozen');
  await cluster.thawNode(a);
  await eventually(() => state(pid) !== 'T', 2_000, 'running again');
  t.true(await accepts(cluster.info.nodes[0]!.address), 'it serves again');
  t.is(cluster.nodePid(a), pid, 'the same process');

  // Left frozen, and the other node killed by PID as a test would: stop neither waits 5 s nor throws.
  await cluster.freezeNode(a);
  const other = cluster.nodePid(b)!;
  process.kill(other, 'SIGKILL');
  await eventually(() => cluster.info.nodes.find((n) => n.id === b)?.state === 'down', 2_000, 'the killed node marked down');
  const pids = cluster.pids;
  const started = Date.now();
  await cluster.stop();
  const took = Date.now() - started;
  t.log(`stop took ${took} ms with a frozen node`);
  t.true(took < 4_000, `stop took ${took} ms`);
  for (const p of [...pids, other]) t.false(alive(p), `pid ${p} gone`);
});

test('restartProcesses: a node killed behind the cluster’s back comes back as itself, later each time it keeps dying; one killNode stopped stays down', async (t) => {
  const restarts: { id: string; pid?: number; afterMs: number; error?: Error }[] = [];
  const cluster = await LocalCluster.start({ dram: 1, dramCapacity: 64 * MiB, restartProcesses: true, onRestart: (r) => restarts.push(r) });
  t.teardown(() => cluster.stop());
  const node = { ...cluster.info.nodes[0]! };
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const kill9 = async () => {
    process.kill(cluster.nodePid(node.id)!, 'SIGKILL');
    await eventually(() => cluster.nodePid(node.id) === undefined, 5_000, 'the process gone');
  };

  // SIGKILL by PID, as `kill -9` or the OOM killer would: started again after 1 s, same id and ports.
  const first = cluster.nodePid(node.id)!;
  await kill9();
  await eventually(() => restarts.length === 1, 15_000, 'the first restart');
  t.like(restarts[0], { id: node.id, afterMs: 1_000, error: undefined });
  const second = cluster.nodePid(node.id)!;
  t.not(second, first);
  t.is(restarts[0]!.pid, second);
  t.true(await accepts(node.address), 'it serves on its address again');
  t.like(
    clusterFile(cluster).nodes.find((n) => n.id === node.id),
    { pid: second, address: node.address, state: undefined },
  );

  // Dead again with its restart pending (2 s: dying within a minute of its start), then stopped on purpose.
  await kill9();
  await cluster.killNode(node.id);
  await sleep(3_000);
  t.is(cluster.nodePid(node.id), undefined, 'the pending restart did not start it');
  t.is(restarts.length, 1);
  t.is(clusterFile(cluster).nodes.find((n) => n.id === node.id)?.state, 'down');

  // Started by hand; dying soon after, its wait doubles again (4 s).
  await cluster.startNode(node.id);
  t.true(await accepts(node.address));
  await kill9();
  await eventually(() => restarts.length === 2, 15_000, 'the next restart');
  t.like(restarts[1], { id: node.id, afterMs: 4_000, error: undefined });

  // Stopped on purpose while running: left down.
  await cluster.killNode(node.id);
  await sleep(1_500);
  t.is(cluster.nodePid(node.id), undefined, 'killNode’s node stays down');
  t.is(restarts.length, 2);
});

test('restartProcesses: a controller and a metadata server killed by PID come back on their ports; jobs, data and registrations carry on', async (t) => {
  t.timeout(90_000);
  const restarts: { id: string; pid?: number; afterMs: number; error?: Error; retryMs?: number }[] = [];
  const cluster = await LocalCluster.start({ dram: 1, dramCapacity: 64 * MiB, restartProcesses: true, onRestart: (r) => restarts.push(r) });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 15_000 });
  t.teardown(() => satchel.close());
  const before = await satchel.registerJob('before', { latencySensitive: true });
  await before.put('k', Buffer.from('acknowledged'));
  const controllerAddress = cluster.controller;
  const metadataAddress = cluster.info.metadata[0]!;
  // cluster.json names the current processes, for an operator's kill -9.
  const pidsInFile = () => clusterFile(cluster).pids;
  t.deepEqual(pidsInFile(), { controller: cluster.controllerPid, metadata: cluster.metadataPids });
  const kill9 = async (pid: number) => {
    process.kill(pid, 'SIGKILL');
    await eventually(() => !alive(pid), 5_000, `pid ${pid} gone`);
  };

  // The controller, SIGKILLed: started again after 1 s on its port, with the job it had.
  const controllerPid = cluster.controllerPid;
  await kill9(controllerPid);
  await eventually(() => restarts.some((r) => r.id === 'controller' && r.error === undefined), 20_000, 'the controller restarted');
  t.like(restarts[0], { id: 'controller', afterMs: 1_000 });
  t.not(cluster.controllerPid, controllerPid);
  t.is(restarts[0]!.pid, cluster.controllerPid);
  t.is(cluster.controller, controllerAddress);
  await eventually(() => pidsInFile()?.controller === cluster.controllerPid, 5_000, "cluster.json names the new controller's pid");
  t.true(await accepts(controllerAddress));
  const after = await satchel.registerJob('after', { latencySensitive: true });
  await after.put('k', Buffer.from('after'));
  t.deepEqual(await (await Satchel.attach(before.ticket)).get('k'), Buffer.from('acknowledged'), 'the old job still reads back');

  // A metadata server, SIGKILLed: started again on its port and refilled; a fresh attach finds both jobs.
  const metadataPid = cluster.metadataPid;
  await kill9(metadataPid);
  await eventually(() => restarts.some((r) => r.id === 'metadata-0' && r.error === undefined), 20_000, 'the metadata server restarted');
  t.not(cluster.metadataPid, metadataPid);
  t.is(cluster.info.metadata[0], metadataAddress);
  await eventually(() => pidsInFile()?.metadata[0] === cluster.metadataPid, 5_000, "cluster.json names the new metadata server's pid");
  for (const [job, value] of [
    [before, 'acknowledged'],
    [after, 'after'],
  ] as const) {
    const attached = await Satchel.attach(job.ticket);
    t.deepEqual(await attached.get('k'), Buffer.from(value));
    await attached.close();
  }

  // Killed on purpose by restartController: started by it, once, not again by the restart timer.
  const count = restarts.length;
  await cluster.restartController('SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  t.is(restarts.length, count, 'no second start of a controller restarted on purpose');
  t.true(await accepts(controllerAddress));
  await before.deregister();
  await after.deregister();
});
