/**
 * The RESP front door under TLS (issue 18): a cluster started with a throwaway CA serves its RESP ports over TLS
 * only, and the driver's `job.redisUrl` is `rediss://`. Stock clients given the CA — redis-cli in cluster mode
 * (`--tls --cacert`) and Debian's redis-py (`RedisCluster.from_url(url, ssl_ca_certs=…)`, host names checked) —
 * read what the native client wrote, over both nodes, and write what it reads; a plain client, and one trusting
 * another CA, get nowhere.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { type RegisteredJob, Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { makePki, needOpenssl, type Pki } from './helpers/pki.ts';

const run = promisify(execFile);

let dir = '';
let pki: Pki;
let otherCa = '';
let cluster: LocalCluster | undefined;
let satchel: Satchel | undefined;
let job: RegisteredJob | undefined;

test.before(async () => {
  await needOpenssl();
  dir = await mkdtemp(join(tmpdir(), 'satchel-resp-tls-'));
  pki = await makePki(dir, 'cluster');
  otherCa = (await makePki(dir, 'other')).ca;
  cluster = await LocalCluster.start({ dram: 2, ssd: 0, hdd: 0, tls: pki });
  satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey, timeoutMs: 10_000, tls: { ca: await readFile(pki.ca) } });
  // Past one node's declared throughput: the job spans both nodes, so clients follow MOVED between them.
  job = await satchel.registerJob('resp-tls', { peakThroughput: 1.5e9 });
  await Promise.all(Array.from({ length: 50 }, (_, i) => job!.put(`native/${i}`, `value-${i}`)));
});

test.after.always(async () => {
  await job?.deregister().catch(() => {});
  satchel?.close();
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** redis-cli's answer (stdout, or stderr when it printed nothing there) and its exit code. */
async function redisCli(args: string[]): Promise<{ out: string; code: number }> {
  try {
    const { stdout, stderr } = await run('redis-cli', ['--no-auth-warning', ...args], { timeout: 20_000 });
    return { out: (stdout || stderr).trimEnd(), code: 0 };
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; code?: number };
    return { out: `${failed.stdout ?? ''}${failed.stderr ?? ''}`.trimEnd(), code: failed.code ?? -1 };
  }
}

const tls = () => ['--tls', '--cacert', pki.ca];

test('the driver hands out rediss://, naming a node’s RESP port, which speaks TLS only', async (t) => {
  const url = job!.redisUrl!;
  t.regex(url, new RegExp(`^rediss://${job!.id}:v2\\.[^@]+@127\\.0\\.0\\.1:\\d+$`));
  const resp = cluster!.info.nodes.map((n) => n.resp);
  t.true(resp.includes(new URL(url).host), `${url} names one of ${resp.join(', ')}`);

  // Plain RESP to a RESP port: the connection is closed, and nothing a Redis client could read comes back.
  for (const address of resp) {
    const [host, port] = [address!.slice(0, address!.lastIndexOf(':')), Number(address!.slice(address!.lastIndexOf(':') + 1))];
    const socket = net.connect({ host, port });
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('PING\r\n*1\r\n$4\r\nPING\r\n');
    const timer = setTimeout(() => socket.destroy(), 10_000);
    await closed;
    clearTimeout(timer);
    const bytes = Buffer.concat(received);
    t.true(bytes.length === 0 || bytes[0] === 21, `at most a TLS alert, got ${bytes.subarray(0, 16).toString('hex')}`);
    t.false(bytes.toString('latin1').includes('PONG'));
  }

  // redis-cli without TLS, and with TLS trusting another CA: refused, no data.
  const plain = await redisCli(['-u', url.replace(/^rediss:/, 'redis:'), 'GET', 'native/1']);
  t.not(plain.out, 'value-1');
  t.regex(plain.out, /error|closed|I\/O/i);
  const wrongCa = await redisCli(['-u', url, '--tls', '--cacert', otherCa, 'GET', 'native/1']);
  t.not(wrongCa.code, 0);
  t.regex(wrongCa.out, /certificate verify failed/);
});

test('redis-cli --tls --cacert in cluster mode reads the native keys on both nodes and writes keys the native client reads', async (t) => {
  const url = job!.redisUrl!;
  for (let i = 0; i < 50; i += 5) t.is((await redisCli(['-u', url, ...tls(), '-c', 'GET', `native/${i}`])).out, `value-${i}`);
  // Without -c the node answers MOVED for the other node's keys, naming that node's RESP port (over TLS too).
  const others = cluster!.info.nodes.map((n) => n.resp).filter((resp) => resp !== new URL(url).host);
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => redisCli(['-u', url, ...tls(), 'GET', `native/${i}`])));
  const moved = answers.map((a) => /^MOVED \d+ (\S+)$/.exec(a.out)?.[1]).filter((to) => to !== undefined);
  t.true(moved.length > 0, 'some keys are on the other node');
  t.true(
    moved.every((to) => others.includes(to)),
    moved.join(', '),
  );
  for (let i = 0; i < 10; i++) t.is((await redisCli(['-u', url, ...tls(), '-c', 'SET', `cli/${i}`, `from redis-cli ${i}`])).out, 'OK');
  for (let i = 0; i < 10; i++) t.is((await job!.get(`cli/${i}`))?.toString(), `from redis-cli ${i}`);
  t.is((await redisCli(['-u', url, ...tls(), '-c', 'INCRBY', 'tls-counter', '4'])).out, '4');
  t.is(await job!.incr('tls-counter', 0), 4, 'the native client reads the counter');
});

const PYTHON = `
import sys
from redis.cluster import RedisCluster
url, ca = sys.argv[1], sys.argv[2]
c = RedisCluster.from_url(url, ssl_ca_certs=ca, ssl_check_hostname=True)
got = [c.get(f"native/{i}") for i in range(50)]
assert all(got[i] == f"value-{i}".encode() for i in range(50)), got
assert len({n.port for n in c.get_nodes()}) == 2, c.get_nodes()
for i in range(50):
    c.set(f"python/{i}", f"py-{i}")
print(c.incrby("py-counter", 7))
`;

test('redis-py RedisCluster.from_url(rediss://…, ssl_ca_certs=…) with host names checked reads and writes the job over both nodes', async (t) => {
  const { stdout } = await run('/usr/bin/python3', ['-c', PYTHON, job!.redisUrl!, pki.ca], { timeout: 30_000 });
  t.is(stdout.trim(), '7');
  for (let i = 0; i < 50; i++) t.is((await job!.get(`python/${i}`))?.toString(), `py-${i}`);
  t.is(await job!.incr('py-counter', 0), 7);

  // Trusting another CA: the client fails, its error saying why.
  const error = await run('/usr/bin/python3', ['-c', PYTHON, job!.redisUrl!, otherCa], { timeout: 30_000 }).then(
    () => null,
    (e: { stderr: string }) => e,
  );
  t.truthy(error, 'refused');
  t.regex(error!.stderr, /CERTIFICATE_VERIFY_FAILED|certificate verify failed/i);
});
