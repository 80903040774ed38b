/**
 * Fuzzes the RESP front door of a running storage node (a LocalCluster's process) over TCP: connection after
 * connection of valid, pipelined, mutated, broken and random RESP (test/helpers/resp-fuzz.ts), before AUTH, after
 * AUTH with a real job's credentials, with wrong ones, and AUTH halfway, in random pieces. From the reference
 * model's reading of what was sent and the session's rules (AUTH, HELLO … AUTH, QUIT, 16 commands before AUTH,
 * the limits AUTH raises), each connection must get exactly its replies, each well-formed RESP (RESP3 after
 * HELLO 3): AUTH's +OK when the credentials are right, the protocol error's `-ERR Protocol error: …` (the model's
 * text) and then the close, a close after QUIT or the 17th command before AUTH, and nothing more; it must never
 * hang. Meanwhile an ioredis client keeps writing and reading; afterwards the node is the same process, logged no
 * error, holds no fuzzed connection, and redis-cli, ioredis and the native client find the data written before.
 *
 * SATCHEL_FUZZ_RESP_CONNECTIONS sets the connections (default 4,000); SATCHEL_FUZZ_SEED replays a run (the seed
 * is printed).
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { Redis } from 'ioredis';
import { type RegisteredJob, Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { MAX_KEY_BYTES } from '../proto/index.ts';
import { envCount, fuzzSeed, Rng } from './helpers/fuzz.ts';
import {
  modelParse,
  multibulk,
  RespGenerator,
  type RespLimits,
  type RespModel,
  type RespReply,
  RespReplyReader,
  respChunks,
} from './helpers/resp-fuzz.ts';
import { waitFor } from './helpers/wait.ts';

const run = promisify(execFile);
const CONNECTIONS = envCount('SATCHEL_FUZZ_RESP_CONNECTIONS', 4_000);
const CONCURRENCY = 8;
/** How long one connection may take to get its replies (or be closed) before it counts as a hang. */
const DEADLINE_MS = 5_000;
/** A small value limit keeps declared-but-unsent bulks cheap; lengths around it are what the generator tries. */
const MAX_VALUE = 64 * 1024;
/** The session's limits (resp-session.ts): before AUTH, and once AUTH raised them. */
const PRE_AUTH: RespLimits = { maxBulkBytes: 4096, maxArgs: 10, maxInlineBytes: 64 * 1024 };
const AUTHED: RespLimits = {
  maxBulkBytes: MAX_VALUE + MAX_KEY_BYTES,
  maxSkippedBulkBytes: 512 * 1024 * 1024,
  maxArgs: 1024 * 1024,
  maxInlineBytes: 64 * 1024,
};
const PRE_AUTH_MAX_COMMANDS = 16;
const KEPT = 40;

interface Credentials {
  job: string;
  token: string;
  host: string;
  port: number;
}

function credentials(url: string): Credentials {
  const u = new URL(url);
  return { job: decodeURIComponent(u.username), token: decodeURIComponent(u.password), host: u.hostname, port: Number(u.port) };
}

/** Valid commands a Redis client of the job sends (keys under fuzz/, so the data written before is not touched). */
function commandMaker(creds: Credentials): (rng: Rng) => Buffer[] {
  const value = (rng: Rng) => rng.bytes(rng.pick([0, 1, 8, 100, 1000, 5000, MAX_VALUE - 20, MAX_VALUE + 1]));
  const key = (rng: Rng) => `fuzz/${rng.pick(['', '{t}'])}${rng.int(32)}`;
  const word = (rng: Rng) => rng.bytes(rng.range(0, 12));
  const makers: ((rng: Rng) => (string | Buffer)[])[] = [
    () => ['PING'],
    (rng) => ['PING', word(rng)],
    (rng) => ['ECHO', word(rng)],
    (rng) => ['SET', key(rng), value(rng)],
    (rng) => ['SET', key(rng), word(rng)],
    (rng) => ['GET', key(rng)],
    (rng) => ['GETDEL', key(rng)],
    (rng) => ['DEL', key(rng)],
    (rng) => ['EXISTS', key(rng), key(rng)],
    (rng) => ['INCR', `fuzz/n${rng.int(4)}`],
    (rng) => ['INCRBY', `fuzz/n${rng.int(4)}`, String(rng.range(-5, 5))],
    (rng) => ['MGET', `fuzz/{t}${rng.int(8)}`, `fuzz/{t}${rng.int(8)}`],
    (rng) => ['MSET', `fuzz/{t}${rng.int(8)}`, word(rng), `fuzz/{t}${rng.int(8)}`, word(rng)],
    (rng) => ['STRLEN', key(rng)],
    (rng) => ['TYPE', key(rng)],
    () => ['DBSIZE'],
    () => ['SCAN', '0'],
    (rng) => ['CLIENT', 'SETNAME', word(rng)],
    () => ['CLIENT', 'GETNAME'],
    () => ['CLIENT', 'INFO'],
    (rng) => ['CLIENT', 'SETINFO', 'LIB-NAME', word(rng)],
    () => ['COMMAND', 'COUNT'],
    () => ['COMMAND', 'INFO', 'GET', 'NOPE'],
    () => ['INFO'],
    () => ['CLUSTER', 'SLOTS'],
    (rng) => ['CLUSTER', 'KEYSLOT', key(rng)],
    () => ['SELECT', '0'],
    () => ['READONLY'],
    () => ['ASKING'],
    (rng) => ['HELLO', rng.pick(['2', '3', '4'])],
    () => ['AUTH', creds.job, creds.token],
    () => ['AUTH', creds.token],
    () => ['HELLO', '3', 'AUTH', creds.job, creds.token],
    (rng) => ['AUTH', creds.job, `${creds.token.slice(0, -2)}${rng.pick(['xx', 'AA'])}`],
    (rng) => [rng.pick(['FLUSHALL', 'KEYS', 'EVAL', 'nope']), word(rng), word(rng)],
    (rng) => ['SET', word(rng), word(rng)],
  ];
  return (rng) => {
    // QUIT now and then: +OK, then the node closes.
    const args = rng.chance(0.005) ? ['QUIT'] : rng.pick(makers)(rng);
    return args.map((a) => (typeof a === 'string' ? Buffer.from(a) : a));
  };
}

/** What the node owes one connection, from the model's commands and the session's rules. */
interface Expected {
  replies: number;
  close: 'protocol' | 'quit' | 'pre-auth' | null;
  /** Reply index → what it must be: +OK or an error for AUTH, the protocol error's text, the closing PING's. */
  checks: Map<number, { kind: 'ok' | 'error' | 'hello' | 'exact'; text?: string }>;
}

/** The session's AUTH state, mirrored: whether these arguments authenticate, for AUTH and HELLO … AUTH. */
function authenticates(args: Buffer[], creds: Credentials): boolean | null {
  const name = args[0]!.toString('latin1').toUpperCase();
  const text = args.map((a) => a.toString('utf8'));
  if (name === 'AUTH') {
    if (args.length === 2) return text[1] === creds.token;
    if (args.length === 3) return text[1] === creds.job && text[2] === creds.token;
    return false;
  }
  if (name !== 'HELLO' || args.length < 2) return null;
  const version = Number(args[1]!.toString('latin1'));
  if (version !== 2 && version !== 3) return null;
  // The options in turn: an AUTH that works authenticates even when a later option is refused.
  for (let i = 2; i < args.length; i++) {
    const option = args[i]!.toString('latin1').toUpperCase();
    if (option === 'AUTH' && i + 2 < args.length) {
      if (text[i + 1] === creds.job && text[i + 2] === creds.token) return true;
      return false;
    }
    if (option === 'SETNAME' && i + 1 < args.length) i++;
    else return null;
  }
  return null;
}

function expect(stream: Buffer, creds: Credentials): { model: RespModel; expected: Expected } {
  let authed = false;
  const model = modelParse(stream, PRE_AUTH, (args) => {
    if (authed) return undefined;
    if (authenticates(args, creds) === true) {
      authed = true;
      return AUTHED;
    }
    return undefined;
  });
  // Walk the commands again with the rules that close a connection (the model read on past them).
  const expected: Expected = { replies: 0, close: null, checks: new Map() };
  authed = false;
  let preAuth = 0;
  for (const e of model.events) {
    if (e.kind === 'error') {
      // The reader reads lines as latin1; the node writes error texts in UTF-8 (an odd byte it quotes included).
      const text = Buffer.from(`-ERR ${e.text.replace(/[\r\n]+/g, ' ')}`, 'utf8').toString('latin1');
      expected.checks.set(expected.replies++, { kind: 'exact', text });
      expected.close = 'protocol';
      break;
    }
    if (e.kind === 'oversized') {
      // Read past, answered TOO_LARGE, and the connection goes on (after AUTH only: before it nothing is skipped).
      const text = `-ERR an argument of ${e.length} bytes exceeds the node's limit of ${MAX_VALUE} bytes for a value [TOO_LARGE]`;
      expected.checks.set(expected.replies++, { kind: 'exact', text });
      continue;
    }
    const args = e.args;
    if (!authed && ++preAuth > PRE_AUTH_MAX_COMMANDS) {
      expected.close = 'pre-auth';
      break;
    }
    const name = args[0]!.toString('latin1').toUpperCase();
    const auth = authenticates(args, creds);
    if (name === 'AUTH' && args.length >= 2) expected.checks.set(expected.replies, { kind: auth === true ? 'ok' : 'error' });
    if (auth === true) authed = true;
    if (name === 'HELLO' && auth === true && args.length === 5) expected.checks.set(expected.replies, { kind: 'hello' });
    expected.replies++;
    if (name === 'QUIT') {
      expected.checks.set(expected.replies - 1, { kind: 'ok' });
      expected.close = 'quit';
      break;
    }
  }
  return { model, expected };
}

function describe(reply: RespReply | undefined): string {
  if (reply === undefined) return 'nothing';
  return `${reply.type}${reply.line ?? reply.bulk?.toString('latin1', 0, 60) ?? `[${reply.elements?.length}]`}`;
}

function matches(reply: RespReply, check: { kind: string; text?: string }): boolean {
  switch (check.kind) {
    case 'ok':
      return reply.type === '+' && reply.line === 'OK';
    case 'error':
      return reply.type === '-';
    case 'hello':
      return reply.type === '%' || reply.type === '*';
    default:
      return `${reply.type}${reply.line ?? reply.bulk?.toString('latin1') ?? ''}` === check.text;
  }
}

interface Totals {
  connections: number;
  commands: number;
  replies: number;
  bytes: number;
  closes: Record<string, number>;
  problems: string[];
}

/** One fuzzed connection: sends its stream in random pieces, reads the replies, checks them against `expect`. */
async function fuzzConnection(rng: Rng, creds: Credentials, index: number, totals: Totals): Promise<void> {
  const generator = new RespGenerator(rng, { limits: AUTHED, command: commandMaker(creds) });
  const pieces: Buffer[] = [];
  const prelude = rng.int(100);
  if (prelude < 55) pieces.push(multibulk(['AUTH', creds.job, creds.token]));
  else if (prelude < 65) pieces.push(multibulk(['HELLO', '3', 'AUTH', creds.job, creds.token]));
  else if (prelude < 70) pieces.push(Buffer.from(`AUTH ${creds.job} ${creds.token}\r\n`));
  else if (prelude < 80) pieces.push(multibulk(['AUTH', creds.job, 'v2.not-a-token']));
  const fuzzRate = rng.pick([0, 0.02, 0.05, 0.1, 0.3, 1]);
  for (let i = rng.range(1, 40); i > 0; i--) pieces.push(generator.piece(fuzzRate));
  let stream = Buffer.concat(pieces);
  let { model, expected } = expect(stream, creds);
  // Between commands: a closing PING whose reply says every reply came. Inside one: the replies owed, then we close.
  const sentinel = `sentinel-${index}`;
  if (model.end === 'idle' && expected.close === null) {
    stream = Buffer.concat([stream, multibulk(['PING', sentinel])]);
    ({ model, expected } = expect(stream, creds));
    if (expected.close === null) expected.checks.set(expected.replies - 1, { kind: 'exact', text: `$${sentinel}` });
  }

  const reader = new RespReplyReader();
  const socket = net.connect({ host: creds.host, port: creds.port, noDelay: true });
  let closedByNode = false;
  let wake: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    wake?.();
  });
  socket.on('end', () => {
    closedByNode = true;
    wake?.();
  });
  socket.on('error', () => {
    closedByNode = true; // a reset is a close too
    wake?.();
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  for (const chunk of respChunks(rng, stream)) {
    if (socket.destroyed || closedByNode) break;
    socket.write(chunk);
    if (rng.chance(0.1)) await new Promise((resolve) => setImmediate(resolve));
  }

  const done = () =>
    reader.malformed !== null || socket.destroyed || closedByNode || (expected.close === null && reader.replies.length >= expected.replies);
  const deadline = Date.now() + DEADLINE_MS;
  while (!done() && Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, 50).unref();
    });
  }
  // A connection left inside a command: nothing more may come after its replies.
  if (expected.close === null && model.end === 'partial' && done()) await new Promise((resolve) => setTimeout(resolve, 20));

  const problems: string[] = [];
  const replies = reader.replies;
  if (reader.malformed !== null) problems.push(`a malformed reply: ${reader.malformed}`);
  else if (!done()) problems.push(`neither ${expected.replies} replies nor a close within ${DEADLINE_MS} ms: ${replies.length} replies`);
  else {
    if (replies.length !== expected.replies) problems.push(`${replies.length} replies, ${expected.replies} expected`);
    if (expected.close !== null && !closedByNode) problems.push(`not closed, though ${expected.close} called for it`);
    if (expected.close === null && closedByNode) problems.push(`closed by the node after ${replies.length}/${expected.replies} replies`);
    if (reader.pending > 0) problems.push(`${reader.pending} bytes that are not a whole reply`);
    for (const [i, check] of expected.checks)
      if (i < replies.length && !matches(replies[i]!, check))
        problems.push(`reply ${i} is ${describe(replies[i])}, expected ${check.kind} ${check.text ?? ''}`);
  }
  if (problems.length > 0) {
    const commands = model.events
      .slice(0, 24)
      .map((e) =>
        e.kind === 'error'
          ? e.text
          : e.kind === 'oversized'
            ? `(${e.length} bytes)`
            : e.args.map((a) => a.toString('latin1', 0, 24)).join(' '),
      );
    totals.problems.push(
      `connection ${index} (${model.events.length} commands, ${stream.length} bytes, ${expected.close ?? model.end}): ${problems.slice(0, 3).join('; ')}; ` +
        `replies ${replies.slice(0, 24).map(describe).join(' | ')}; commands ${JSON.stringify(commands)}`,
    );
  }
  socket.destroy();
  await closed;
  totals.connections++;
  totals.commands += model.events.length;
  totals.replies += replies.length;
  totals.bytes += stream.length;
  const ending = expected.close ?? model.end;
  totals.closes[ending] = (totals.closes[ending] ?? 0) + 1;
}

/** SET and GET in a loop on a well-behaved ioredis connection; every answer must be right. */
function steadyClient(creds: Credentials): { stop(): Promise<void>; ops(): number; failures: string[] } {
  const redis = new Redis({ host: creds.host, port: creds.port, username: creds.job, password: creds.token, lazyConnect: true });
  const failures: string[] = [];
  let running = true;
  let ops = 0;
  const loop = (async () => {
    await redis.connect();
    for (let i = 0; running && failures.length < 10; i++) {
      try {
        const key = `steady/${i % 16}`;
        const value = `value ${i} `.repeat(1 + (i % 40));
        await redis.set(key, value);
        const got = await redis.get(key);
        if (got !== value) failures.push(`GET ${key}: ${got?.slice(0, 40)}`);
        ops += 2;
      } catch (error) {
        failures.push(`steady connection: ${String(error)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      redis.disconnect();
    },
    ops: () => ops,
    failures,
  };
}

let cluster: LocalCluster;
let satchel: Satchel;
let job: RegisteredJob;
let creds: Credentials;

test.before(async () => {
  cluster = await LocalCluster.start({ dram: 1, maxValueBytes: MAX_VALUE });
  satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  job = await satchel.registerJob('resp-fuzz');
  creds = credentials(job.redisUrl!);
});

test.after.always(async () => {
  await job?.deregister().catch(() => {});
  satchel?.close();
  await cluster?.stop();
});

test.serial('before AUTH a command has at most 10 arguments: more is a protocol error, and the connection ends', async (t) => {
  const exchange = async (bytes: Buffer) => {
    const reader = new RespReplyReader();
    const socket = net.connect({ host: creds.host, port: creds.port });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', () => {});
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(bytes);
    await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 3_000))]);
    socket.destroy();
    return reader.replies.map(describe);
  };
  const ten = multibulk(['PING', ...Array.from({ length: 9 }, () => 'x')]);
  t.deepEqual(await exchange(Buffer.concat([ten, multibulk(['QUIT'])])), [
    "-ERR wrong number of arguments for 'ping' command [BAD_REQUEST]",
    '+OK',
  ]);
  const eleven = multibulk(['PING', ...Array.from({ length: 10 }, () => 'x')]);
  t.deepEqual(await exchange(eleven), ['-ERR Protocol error: invalid multibulk length']);
  t.deepEqual(await exchange(Buffer.from(`*1048576\r\n${'$0\r\n\r\n'.repeat(1000)}`)), ['-ERR Protocol error: invalid multibulk length']);
  t.deepEqual(await exchange(Buffer.from(`PING ${'x '.repeat(10)}\r\n`)), ['-ERR Protocol error: too big inline request']);
  // Once authenticated, many arguments are fine.
  const auth = multibulk(['AUTH', creds.job, creds.token]);
  const del = multibulk(['DEL', ...Array.from({ length: 1000 }, () => 'fuzz/{t}x')]);
  t.deepEqual(await exchange(Buffer.concat([auth, del, multibulk(['QUIT'])])), ['+OK', ':0', '+OK']);
});

test.serial('a value over the node’s limit is answered TOO_LARGE, read past, and the connection goes on', async (t) => {
  const reader = new RespReplyReader();
  const socket = net.connect({ host: creds.host, port: creds.port });
  t.teardown(() => socket.destroy());
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  socket.on('error', () => {});
  const big = Buffer.alloc(MAX_VALUE + 200 * 1024, 0x61);
  // Sent in pieces, as a client streams it: the node drops each as it comes.
  socket.write(multibulk(['AUTH', creds.job, creds.token]));
  const command = multibulk(['SET', 'fuzz/{t}too-large', big]);
  for (let at = 0; at < command.length; at += 50_000) socket.write(command.subarray(at, at + 50_000));
  socket.write(Buffer.concat([multibulk(['SET', 'fuzz/{t}after', 'v']), multibulk(['GET', 'fuzz/{t}after'])]));
  for (let i = 0; i < 100 && reader.replies.length < 4; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(reader.replies.map(describe), [
    '+OK',
    `-ERR an argument of ${big.length} bytes exceeds the node's limit of ${MAX_VALUE} bytes for a value [TOO_LARGE]`,
    '+OK',
    '$v',
  ]);
  t.is(await job.get('fuzz/{t}too-large'), null);
});

test.serial(
  'random and broken RESP over many connections: exact replies, well-formed, closed when due, never hung; the node and its data survive',
  async (t) => {
    const seed = fuzzSeed();
    t.log(`seed ${seed} (SATCHEL_FUZZ_SEED=${seed} replays this run), ${CONNECTIONS} connections`);
    const nodeId = cluster.info.nodes[0]!.id;
    const pid = cluster.nodePid(nodeId);
    t.truthy(pid);

    // Data written before, natively and through RESP.
    const io = new Redis({ host: creds.host, port: creds.port, username: creds.job, password: creds.token });
    t.teardown(() => io.disconnect());
    for (let i = 0; i < KEPT; i++) {
      await job.put(`kept/native/${i}`, `native value ${i}`);
      await io.set(`kept/resp/${i}`, Buffer.from(`resp value ${i} \u00e0\r\n`));
    }
    const clientsBefore = Number(/connected_clients:(\d+)/.exec(String(await io.info('clients')))?.[1]);

    const steady = steadyClient(creds);
    const totals: Totals = { connections: 0, commands: 0, replies: 0, bytes: 0, closes: {}, problems: [] };
    const started = performance.now();
    let next = 0;
    const worker = async (w: number) => {
      while (next < CONNECTIONS && totals.problems.length < 20) {
        const index = next++;
        // Each connection's randomness comes from the seed and its index alone, not from the scheduling.
        await fuzzConnection(new Rng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0), creds, index, totals);
      }
      return w;
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
    const seconds = (performance.now() - started) / 1000;
    await steady.stop();
    t.log(
      `${totals.connections} connections, ${totals.commands.toLocaleString('en')} commands (${(totals.bytes / 2 ** 20).toFixed(1)} MiB), ` +
        `${totals.replies.toLocaleString('en')} replies in ${seconds.toFixed(1)} s; endings ${JSON.stringify(totals.closes)}; ` +
        `steady client ${steady.ops()} ops meanwhile`,
    );
    t.deepEqual(totals.problems, [], `seed ${seed}`);
    t.deepEqual(steady.failures, []);

    // The same process, no error logged, no fuzzed connection left.
    t.is(cluster.nodePid(nodeId), pid, 'the node process is the one that started');
    const logs = (await readdir(join(cluster.stateDir, 'logs'))).filter((name) => name.startsWith('storage-node'));
    t.true(logs.length > 0, 'the node’s log is there to read');
    const errors: string[] = [];
    for (const name of logs)
      for (const line of (await readFile(join(cluster.stateDir, 'logs', name), 'utf8')).split('\n'))
        if (/"level":(5\d|6\d)/.test(line) || line.includes('ERR_STREAM_WRITE_AFTER_END')) errors.push(line.slice(0, 300));
    t.deepEqual(errors, [], 'the node logged errors');
    await waitFor(async () => Number(/connected_clients:(\d+)/.exec(String(await io.info('clients')))?.[1]) <= clientsBefore + 1, {
      timeoutMs: 8_000,
      intervalMs: 100,
      what: 'the fuzzed connections gone from the node',
    });

    // A clean connection works, and the data written before is intact.
    const url = job.redisUrl!;
    const { stdout } = await run('redis-cli', ['-u', url, '--no-auth-warning', 'GET', 'kept/native/7'], { timeout: 10_000 });
    t.is(stdout.trim(), 'native value 7');
    const fresh = new Redis({ host: creds.host, port: creds.port, username: creds.job, password: creds.token });
    t.teardown(() => fresh.disconnect());
    for (let i = 0; i < KEPT; i++) {
      t.is(await fresh.get(`kept/native/${i}`), `native value ${i}`);
      t.deepEqual(await fresh.getBuffer(`kept/resp/${i}`), Buffer.from(`resp value ${i} \u00e0\r\n`));
      t.is((await job.get(`kept/resp/${i}`))?.toString(), `resp value ${i} \u00e0\r\n`);
    }
    t.is(await fresh.set('after/fuzz', 'ok'), 'OK');
    t.is((await job.get('after/fuzz'))?.toString(), 'ok');
  },
);
