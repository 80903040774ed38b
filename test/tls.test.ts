/**
 * TLS on both planes (issue 8): a LocalCluster started with a throwaway CA and a certificate for 127.0.0.1
 * serves TLS only. A function attached from the ticket (which carries the CA) works as without TLS; a client
 * speaking plain TCP or plain gRPC gets nowhere, and one trusting another CA fails with UNAVAILABLE, promptly.
 * The certificates are made with the `openssl` CLI, as deploy/README.md shows.
 */

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { CONTROLLER_SERVICE, ControlClient, METADATA_SERVICE } from '../proto/grpc.ts';
import {
  type ControllerMethods,
  decodeTicket,
  encodeTicket,
  FrameWriter,
  type MetadataMethods,
  NodeConnection,
  Op,
} from '../proto/index.ts';
import { pattern, rejection } from './helpers/assert.ts';
import { makePki, type Pki } from './helpers/pki.ts';
import { runTs } from './helpers/process.ts';

const MiB = 1024 * 1024;
const FUNCTION = fileURLToPath(new URL('./fixtures/function.ts', import.meta.url));
const QUIET_CLIENT = fileURLToPath(new URL('./fixtures/quiet-client.ts', import.meta.url));

// Every warning this process emits, from the start: Node emits DEP0123 (an IP address as TLS ServerName) once per
// process, so the test below must also see one that an earlier test's connection caused.
const warnings: Error[] = [];
process.on('warning', (warning) => warnings.push(warning));
const CLI = fileURLToPath(new URL('../deploy/cli.ts', import.meta.url));
const run = promisify(execFile);

let dir = '';
let pki: Pki;
let otherCa = '';
let caPem = '';
let cluster: LocalCluster | undefined;

test.before(async () => {
  try {
    await run('openssl', ['version']);
  } catch {
    throw new Error('these tests need the openssl CLI (.ci/run installs it)');
  }
  dir = await mkdtemp(join(tmpdir(), 'satchel-tls-'));
  pki = await makePki(dir, 'cluster');
  otherCa = await readFile((await makePki(dir, 'other')).ca, 'utf8');
  caPem = await readFile(pki.ca, 'utf8');
  // Three nodes: the drain test takes one away, and replicated jobs still find two.
  cluster = await LocalCluster.start({ dram: 3, dramCapacity: 64 * MiB, tls: pki });
});

test.after.always(async () => {
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const nodeAddress = () => cluster!.info.nodes[0]!.address;

test('over TLS: the ticket carries the CA; a function attached from it puts, gets, stores a large value and waits', async (t) => {
  const satchel = await Satchel.connect(cluster!.controller, { key: cluster!.tenantKey, timeoutMs: 10_000, tls: { ca: caPem } });
  t.teardown(() => satchel.close());
  // Two copies: every write goes to both nodes, the controller's admin connections reach both on deregister.
  const job = await satchel.registerJob('tls', { replicas: 2 });
  let deregistered = false;
  t.teardown(() => (deregistered ? undefined : job.deregister().catch(() => {})));
  t.is(decodeTicket(job.ticket).tls?.ca, caPem);

  // A function in this process, attached from the ticket alone.
  const fn = await Satchel.attach(job.ticket, { timeoutMs: 10_000 });
  t.teardown(() => fn.close());
  await fn.put('small', 'over tls');
  t.is((await job.get('small'))?.toString(), 'over tls');
  const large = pattern(3 * MiB + 11, 8);
  await job.put('large', large);
  t.true((await fn.get('large'))?.equals(large), 'a value split into blocks over both nodes');
  const waiting = fn.waitFor('done', { timeoutMs: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  await job.put('done', 'yes');
  t.is((await waiting).toString(), 'yes');
  t.is(await fn.incr('count', 2), 2);

  // A function in its own process, given only the ticket.
  await job.put('input/0', 'hello over tls');
  const result = await runTs(FUNCTION, [job.ticket, 'input/0', 'output/0']);
  t.is(result.code, 0, result.stderr + result.stdout);
  const summary = JSON.parse(result.stdout.trim()) as { input: string; bigOk: boolean };
  t.is(summary.input, 'hello over tls');
  t.true(summary.bigOk);
  t.is((await job.get('output/0'))?.toString(), 'HELLO OVER TLS');

  // Deregistering: the controller drops the job's data on the nodes (admin connections over TLS).
  await job.deregister();
  deregistered = true;
  t.is((await rejection(t, fn.get('small'))).code, 'NO_SUCH_JOB');
});

test('TLS to 127.0.0.1 sends no IP address as ServerName: no DeprecationWarning, from gRPC or the data plane', async (t) => {
  // gRPC: the driver's channel to the controller, and channels with an IP address or a name as servername.
  const satchel = await Satchel.connect(cluster!.controller, { key: cluster!.tenantKey, timeoutMs: 10_000, tls: { ca: caPem } });
  t.teardown(() => satchel.close());
  const port = cluster!.controller.slice(cluster!.controller.lastIndexOf(':') + 1);
  for (const tls of [
    { ca: caPem, servername: '127.0.0.1' },
    { ca: caPem, servername: 'localhost' },
  ]) {
    const client = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, `127.0.0.1:${port}`, 10_000, tls);
    t.teardown(() => client.close());
    t.is(typeof (await client.call('GetCluster', { token: cluster!.tenantKey })).jobs, 'number', tls.servername);
  }
  // The data plane: a job's connections to its nodes, and a node connection told an IP address as servername.
  const job = await satchel.registerJob('tls-no-warning');
  t.teardown(() => job.deregister().catch(() => {}));
  await job.put('k', 'v');
  t.is((await job.get('k'))?.toString(), 'v');
  const connection = new NodeConnection(nodeAddress(), 'v1.some-job.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', {
    timeoutMs: 5_000,
    tls: { ca: caPem, servername: '127.0.0.1' },
  });
  t.teardown(() => connection.destroy());
  t.is((await rejection(t, connection.request({ op: Op.PING }))).code, 'UNAUTHORIZED', 'the handshake passed: the node refused the token');
  await new Promise((resolve) => setImmediate(resolve)); // process.emitWarning delivers on the next tick
  t.deepEqual(
    warnings.filter((w) => w.name === 'DeprecationWarning').map((w) => w.message),
    [],
  );
});

test('a client over TLS writes nothing to stderr: connect, register, attach, put, get, wait, watch, failed calls, close', async (t) => {
  const result = await runTs(QUIET_CLIENT, [cluster!.controller, cluster!.tenantKey, pki.ca]);
  t.is(result.code, 0, result.stderr + result.stdout);
  t.is(result.stderr, '');
  const summary = JSON.parse(result.stdout) as { greeting: string; done: string; count: number; event: unknown; codes: string[] };
  t.is(summary.greeting, 'hello');
  t.is(summary.done, 'yes');
  t.is(summary.count, 3);
  t.deepEqual(summary.event, { type: 'put', key: 'w/1' });
  t.deepEqual(summary.codes, ['BAD_REQUEST', 'BAD_REQUEST', 'CLOSED', 'CLOSED', 'CLOSED']);
});

test('the nodes speak TLS only: a plain TCP client gets the connection closed and no Satchel frame', async (t) => {
  const address = nodeAddress();
  const socket = net.connect({ host: '127.0.0.1', port: Number(address.split(':')[1]) });
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  // A HELLO as a plain client would send it.
  const writer = new FrameWriter(socket);
  writer.frame(Op.HELLO, 0, 0, 0, 0, 'v1.some-job.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', null);
  writer.frame(Op.PING, 0, 1, 0, 0, '', null);
  writer.flush();
  const timeout = setTimeout(() => socket.destroy(), 5_000);
  await closed;
  clearTimeout(timeout);
  const bytes = Buffer.concat(received);
  // At most a TLS alert record (content type 21); never a frame (version byte 1 at offset 4).
  t.true(bytes.length === 0 || bytes[0] === 21, `got ${bytes.subarray(0, 16).toString('hex')}`);

  // Satchel's own client without TLS: a typed UNAVAILABLE, promptly.
  const plain = new NodeConnection(address, 'v1.some-job.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', { timeoutMs: 5_000 });
  t.teardown(() => plain.destroy());
  const started = Date.now();
  t.is((await rejection(t, plain.request({ op: Op.PING }))).code, 'UNAVAILABLE');
  t.true(Date.now() - started < 4_000, `took ${Date.now() - started} ms`);
});

test('a TLS client trusting another CA, or dialling a name the certificate lacks, gets UNAVAILABLE saying TLS', async (t) => {
  const address = nodeAddress();
  for (const tls of [{ ca: otherCa }, { ca: caPem, servername: 'not-this-node.example' }]) {
    const connection = new NodeConnection(address, 'v1.some-job.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', { timeoutMs: 5_000, tls });
    t.teardown(() => connection.destroy());
    const started = Date.now();
    const error = await rejection(t, connection.request({ op: Op.PING }));
    t.is(error.code, 'UNAVAILABLE');
    t.log(error.message);
    t.regex(error.message, /TLS handshake/);
    t.regex(error.message, /certificate/i);
    t.true(Date.now() - started < 4_000, `took ${Date.now() - started} ms`);
  }
  // The right CA gets an answer from the node (a refused token, over TLS: the handshake worked).
  const right = new NodeConnection(address, 'v1.some-job.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', { timeoutMs: 5_000, tls: { ca: caPem } });
  t.teardown(() => right.destroy());
  t.is((await rejection(t, right.request({ op: Op.PING }))).code, 'UNAUTHORIZED');

  // A ticket whose CA was swapped for another: the function's first call fails the same way.
  const satchel = await Satchel.connect(cluster!.controller, { key: cluster!.tenantKey, timeoutMs: 5_000, tls: { ca: caPem } });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('tls-wrong-ca');
  t.teardown(() => job.deregister().catch(() => {}));
  const forged = encodeTicket({ ...decodeTicket(job.ticket), tls: { ca: otherCa } });
  const fn = await Satchel.attach(forged, { timeoutMs: 5_000 });
  t.teardown(() => fn.close());
  const error = await rejection(t, fn.get('anything'));
  t.is(error.code, 'UNAVAILABLE');
  t.regex(error.message, /TLS handshake.*certificate/s);
  // The driver trusting another CA: no controller.
  t.is(
    (await rejection(t, Satchel.connect(cluster!.controller, { key: cluster!.tenantKey, timeoutMs: 5_000, tls: { ca: otherCa } }))).code,
    'UNAVAILABLE',
  );
});

test('gRPC without TLS fails against the controller and the metadata server', async (t) => {
  const started = Date.now();
  t.is((await rejection(t, Satchel.connect(cluster!.controller, { key: cluster!.tenantKey, timeoutMs: 5_000 }))).code, 'UNAVAILABLE');
  const metadata = new ControlClient<MetadataMethods>(METADATA_SERVICE, cluster!.info.metadata[0]!, 5_000);
  t.teardown(() => metadata.close());
  t.is((await rejection(t, metadata.call('GetPlacement', { jobId: 'some-job', token: 'v1.some-job.x' }))).code, 'UNAVAILABLE');
  t.true(Date.now() - started < 8_000, `took ${Date.now() - started} ms`);
});

test('the TLS flags go together, and a file that is not a certificate stops the role at start (exit 2)', async (t) => {
  const secret = join(dir, 'secret');
  await writeFile(secret, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  const cases: [string[], RegExp][] = [
    [
      ['metadata', '--port', '0', '--controller', '127.0.0.1:1', '--secret-file', secret, '--tls-cert', pki.cert],
      /--tls-cert, --tls-key and --tls-ca go together/,
    ],
    [['up', '--state-dir', join(dir, 'up'), '--controller-port', '0', '--console-port', '0', '--tls-ca', pki.ca], /go together/],
    // The CA's certificate with the server's key: they do not match.
    [
      [
        'storage-node',
        '--port',
        '0',
        '--controller',
        '127.0.0.1:1',
        '--secret-file',
        secret,
        '--tls-cert',
        pki.ca,
        '--tls-key',
        pki.key,
        '--tls-ca',
        pki.ca,
      ],
      /--tls-cert .*--tls-key/,
    ],
    [
      [
        'controller',
        '--port',
        '0',
        '--console-port',
        '0',
        '--secret-file',
        secret,
        '--tls-cert',
        pki.cert,
        '--tls-key',
        join(dir, 'missing.key'),
        '--tls-ca',
        pki.ca,
      ],
      /--tls-key: cannot read/,
    ],
    [
      [
        'controller',
        '--port',
        '0',
        '--console-port',
        '0',
        '--secret-file',
        secret,
        '--tls-cert',
        pki.cert,
        '--tls-key',
        pki.key,
        '--tls-ca',
        pki.key,
      ],
      /--tls-ca: .* no PEM certificate/,
    ],
  ];
  const results = await Promise.all(cases.map(([args]) => runTs(CLI, args)));
  results.forEach((result, i) => {
    const [args, message] = cases[i]!;
    t.is(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, message, args.join(' '));
  });
});

test('a node connection with TLS keeps the frame stream intact under pipelining (many requests, one write each)', async (t) => {
  const satchel = await Satchel.connect(cluster!.controller, { key: cluster!.tenantKey, timeoutMs: 10_000, tls: { ca: caPem } });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('tls-pipeline');
  t.teardown(() => job.deregister().catch(() => {}));
  const values = Array.from({ length: 500 }, (_, i) => pattern(1 + ((i * 997) % 40_000), i));
  await Promise.all(values.map((value, i) => job.put(`k/${i}`, value)));
  const back = await Promise.all(values.map((_, i) => job.get(`k/${i}`)));
  t.true(back.every((value, i) => value?.equals(values[i]!)));
});

test.serial('draining a node migrates its keys over TLS: the controller reaches the nodes with the CA', async (t) => {
  const satchel = await Satchel.connect(cluster!.controller, { key: cluster!.tenantKey, timeoutMs: 10_000, tls: { ca: caPem } });
  t.teardown(() => satchel.close());
  // Enough throughput asked for to span two nodes.
  const job = await satchel.registerJob('tls-drain', { latencySensitive: true, peakThroughput: 1.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  const api = cluster!.info.console;
  const before = (await (
    await fetch(`${api}/api/jobs/${job.id}`, { headers: { authorization: `Bearer ${cluster!.viewerToken}` } })
  ).json()) as { nodes: { id: string }[] };
  t.true(before.nodes.length >= 2, JSON.stringify(before.nodes));
  const values = new Map<string, Buffer>(Array.from({ length: 300 }, (_, i) => [`k/${i}`, pattern(100 + i, i)]));
  values.set('large', pattern(3 * MiB + 5, 99));
  await Promise.all([...values].map(([key, value]) => job.put(key, value)));

  const drained = before.nodes[0]!.id;
  const response = await fetch(`${api}/api/nodes/${drained}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${cluster!.adminToken}` },
  });
  t.is(response.status, 200, await response.clone().text());
  const result = (await response.json()) as { jobs: number; keys: number };
  t.true(result.keys > 0, `keys were moved: ${JSON.stringify(result)}`);
  t.false(cluster!.info.nodes.some((n) => n.id === drained));

  const fn = await Satchel.attach(job.ticket, { timeoutMs: 10_000 });
  t.teardown(() => fn.close());
  const wrong: string[] = [];
  await Promise.all(
    [...values].map(async ([key, value]) => {
      if (!(await fn.get(key))?.equals(value)) wrong.push(key);
    }),
  );
  t.deepEqual(wrong, []);
});
