/**
 * Fuzzes a real StorageServer over TCP from this process: connection after connection of valid, mutated,
 * truncated and random frames, huge declared lengths, frames before HELLO and garbage HELLO tokens (generator and
 * reference model: test/helpers/fuzz.ts). For every connection the node must either answer (a typed status for
 * every request that is not parked, then the closing PING) or close it — close it exactly when the protocol says
 * (a malformed header, a refused HELLO, a request before HELLO) — within a bounded time, and every frame it sends
 * must decode. Meanwhile a well-behaved connection keeps doing PUT/GET/INCR and must never see an error; no
 * exception may escape, the node's memory must stay bounded, and once the fuzzing stops the node holds no
 * connection and no parked request of it.
 *
 * SATCHEL_FUZZ_NODE_FRAMES sets the frames for the DRAM node (default 30,000; the disk node gets a third);
 * SATCHEL_FUZZ_SEED replays a run (the seed is printed).
 */

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import {
  ADMIN_SUBJECT,
  Flag,
  FrameDecoder,
  HEADER_SIZE,
  MAX_KEY_BYTES,
  NodeConnection,
  Op,
  Status,
  signToken,
  verifyToken,
} from '../proto/index.ts';
import {
  encodeFrame,
  envCount,
  FrameGenerator,
  fuzzSeed,
  type ModelEvent,
  ModelEventKind,
  modelDecode,
  Rng,
  randomChunks,
} from '../test/helpers/fuzz.ts';
import { DiskEngine } from './disk/disk-engine.ts';
import { DramEngine } from './dram-engine.ts';
import type { StorageEngine } from './engine.ts';
import { PRE_AUTH_MAX_FRAMES, StorageServer } from './server.ts';

const MiB = 1024 * 1024;
const FRAMES = envCount('SATCHEL_FUZZ_NODE_FRAMES', 30_000);
const CONCURRENCY = 6;
/** How long one fuzzed connection may take to be answered or closed before it counts as a hang. */
const CONNECTION_DEADLINE_MS = 5_000;
/** A small value limit keeps declared-but-unsent bodies cheap; lengths around it are what the generator tries. */
const MAX_VALUE = MiB;
const MAX_BODY = MAX_VALUE + 1024;
const PING_ID = 0xfffffff0;
const KNOWN_STATUSES = new Set<number>(Object.values(Status));

const secret = randomBytes(32);
const adminToken = signToken(secret, ADMIN_SUBJECT);
/** What the node logged that it should not have: errors (an engine fault, say), and writes after it ended a socket. */
const faults: string[] = [];
const logger = pino(
  { level: 'debug' },
  {
    write: (line: string) => {
      const entry = JSON.parse(line) as { level: number; msg: string; err?: { code?: string; message?: string } };
      if (entry.level >= 50 || entry.err?.code === 'ERR_STREAM_WRITE_AFTER_END') faults.push(`${entry.msg}: ${entry.err?.message ?? ''}`);
    },
  },
);

interface Totals {
  connections: number;
  frames: number;
  answers: number;
  events: number;
  closedMalformed: number;
  closedRefused: number;
  closedHalfClosed: number;
  answeredToTheEnd: number;
  problems: string[];
}

/** How the node must treat one fuzzed connection, from the model's reading of the bytes sent. */
interface Expectation {
  /** Why the node must close it (null: it must not, unless we half-closed). */
  close: 'malformed' | 'refused' | null;
  /** Answers (not EVENT frames) due before the closing PING: every request but parked ones. */
  answers: number;
}

/** Whether the node takes this HELLO: a valid token of a job not dropped, or the admin's. */
function helloAccepted(e: ModelEvent, stream: Buffer, server: StorageServer): boolean {
  const subject = verifyToken(secret, stream.toString('utf8', e.bodyStart, e.bodyStart + e.keyLength));
  return subject !== null && (subject.admin || !server.jobs.dropped.has(subject.jobId));
}

function expectationOf(events: readonly ModelEvent[], stream: Buffer, server: StorageServer): Expectation {
  let authed = false;
  let admin = false;
  let answers = 0;
  let preAuth = 0;
  for (const e of events) {
    if (e.kind === ModelEventKind.Error) return { close: 'malformed', answers };
    // Past PRE_AUTH_MAX_FRAMES frames without a HELLO (this one included) the node closes the connection.
    if (!authed && ++preAuth > PRE_AUTH_MAX_FRAMES) return { close: 'refused', answers };
    if (e.kind === ModelEventKind.Oversize) {
      answers++; // TOO_LARGE, whoever asks
      continue;
    }
    if (e.code === Op.HELLO) {
      const subject = verifyToken(secret, stream.toString('utf8', e.bodyStart, e.bodyStart + e.keyLength));
      if (subject === null || (!subject.admin && server.jobs.dropped.has(subject.jobId))) return { close: 'refused', answers };
      authed = true;
      admin = subject.admin;
      answers++;
      continue;
    }
    if (e.code === Op.PING) {
      answers++;
      continue;
    }
    if (!authed) return { close: 'refused', answers };
    // Parked until something happens: a WAIT (its key non-empty) and a WATCH, on a job connection.
    const parked = !admin && ((e.code === Op.WAIT && e.keyLength > 0) || e.code === Op.WATCH);
    if (!parked) answers++;
  }
  return { close: null, answers };
}

/** One fuzzed connection: its bytes, sent in random pieces; then waits for the node's answers or its close. */
async function fuzzConnection(address: string, server: StorageServer, rng: Rng, index: number, totals: Totals): Promise<number> {
  const job = `fuzz-${index}`;
  const token = signToken(secret, job);
  const generator = new FrameGenerator(rng, { maxBody: MAX_BODY, maxValue: 8192, tokens: [token, adminToken] });
  const pieces: Buffer[] = [];
  const prelude = rng.int(100);
  if (prelude < 70) pieces.push(encodeFrame({ code: Op.HELLO, key: Buffer.from(token) }));
  else if (prelude < 75) pieces.push(encodeFrame({ code: Op.HELLO, key: Buffer.from(adminToken) }));
  else if (prelude < 85) pieces.push(generator.hello());
  // else: no HELLO at all

  let stream = Buffer.concat(pieces);
  // The node's limit: a token's worth until a HELLO succeeds, then its own (session.ts `hello`).
  const limit = (events: readonly ModelEvent[]) =>
    events.some((e) => e.kind === ModelEventKind.Frame && e.code === Op.HELLO && helloAccepted(e, stream, server))
      ? MAX_BODY
      : MAX_KEY_BYTES;
  let model = modelDecode(stream, limit);
  // Some connections are mostly well-formed (long runs of requests the node acts on), some are mostly garbage.
  const fuzzRate = rng.pick([0.02, 0.05, 0.1, 0.3, 1]);
  const want = rng.range(1, 64);
  for (let i = 0; i < want; i++) {
    stream = Buffer.concat([stream, generator.piece(fuzzRate)]);
    model = modelDecode(stream, limit, model.events, model);
    if (model.end.state === 'dead' || (model.end.state === 'skip' && model.end.remaining > MiB)) break;
  }
  // Bring the stream back in step if that is cheap (finish the body being read or skipped), then PING; otherwise
  // half-close, and the node must close too.
  const end = model.end;
  let tail: 'ping' | 'half-close' | 'none' = 'none';
  if (end.state === 'header' && end.partial === 0) tail = 'ping';
  else if ((end.state === 'body' || end.state === 'skip') && end.remaining <= MiB) {
    stream = Buffer.concat([stream, Buffer.alloc(end.remaining)]);
    tail = 'ping';
  } else if (end.state !== 'dead') tail = 'half-close';
  model = modelDecode(stream, limit, model.events, model);
  const expected = expectationOf(model.events, stream, server);
  if (tail === 'ping') stream = Buffer.concat([stream, encodeFrame({ code: Op.PING, id: PING_ID })]);

  const problems: string[] = [];
  const received: { code: number; flags: number; id: number }[] = [];
  let pingAnswered = false;
  let answers = 0;
  const socket = net.connect({ host: '127.0.0.1', port: Number(address.split(':')[1]), noDelay: true });
  let wake: (() => void) | null = null;
  const decoder = new FrameDecoder({
    maxBody: 64 * MiB,
    onFrame: (f) => {
      received.push({ code: f.code, flags: f.flags, id: f.id });
      if (!KNOWN_STATUSES.has(f.code)) problems.push(`unknown status ${f.code}`);
      if ((f.flags & Flag.EVENT) !== 0) {
        if (f.code !== Status.OK) problems.push(`EVENT frame with status ${f.code}`);
      } else if (f.id === PING_ID && f.code === Status.OK && tail === 'ping') pingAnswered = true;
      else answers++;
      wake?.();
    },
    onOversize: (f) => problems.push(`answer of ${f.bodyLength} bytes`),
    onError: (error) => {
      problems.push(`the node sent a malformed frame: ${error.message}`);
      socket.destroy();
    },
  });
  let closedByNode = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  socket.on('end', () => (closedByNode = true));
  socket.on('error', () => (closedByNode = true)); // a reset is a close too
  void closed.then(() => wake?.());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });

  for (const chunk of randomChunks(rng, stream)) {
    if (socket.destroyed) break;
    socket.write(chunk);
    if (rng.chance(0.2)) await new Promise((resolve) => setImmediate(resolve));
  }
  if (tail === 'half-close') socket.end();

  const mustClose = expected.close !== null || tail !== 'ping';
  const done = () => socket.destroyed || closedByNode || (!mustClose && pingAnswered && answers >= expected.answers);
  const deadline = Date.now() + CONNECTION_DEADLINE_MS;
  while (!done() && Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, 50).unref();
    });
  }
  const what = `connection ${index} (${expected.close ?? tail}, ${model.events.length} frames, ${stream.length} bytes, starts ${stream.subarray(0, 96).toString('hex')})`;
  if (!done()) {
    // The requests still owed an answer (by id; ids may repeat), to say which op went unanswered.
    const owed = new Map<number, number>();
    for (const f of received) if ((f.flags & Flag.EVENT) === 0) owed.set(f.id, (owed.get(f.id) ?? 0) - 1);
    const unanswered: string[] = [];
    for (const e of model.events) {
      const left = owed.get(e.id) ?? 0;
      owed.set(e.id, left + 1);
      if (left >= 0)
        unanswered.push(
          `op 0x${e.code.toString(16)} id ${e.id} key ${stream.toString('utf8', e.bodyStart, e.bodyStart + Math.min(e.keyLength, 40))}`,
        );
    }
    problems.push(
      `neither answered nor closed within ${CONNECTION_DEADLINE_MS} ms: ${answers}/${expected.answers} answers, PING ${pingAnswered ? '' : 'not '}answered; unanswered: ${unanswered.join(', ')}`,
    );
  } else if (closedByNode && !mustClose)
    problems.push(`closed by the node after ${answers}/${expected.answers} answers, though nothing called for it`);
  else if (expected.close === 'malformed' && closedByNode && !received.some((f) => f.code === Status.BAD_REQUEST && f.id === 0)) {
    problems.push('closed for a malformed header without a BAD_REQUEST (id 0) first');
  } else if (
    expected.close === 'refused' &&
    closedByNode &&
    !received.some((f) => f.code === Status.UNAUTHORIZED || f.code === Status.NO_SUCH_JOB)
  ) {
    problems.push('closed for a refused HELLO or a request before HELLO without UNAUTHORIZED / NO_SUCH_JOB first');
  }
  if (expected.close !== null && !closedByNode && !socket.destroyed)
    problems.push(`still open though it had to be closed (${expected.close})`);
  for (const p of problems) totals.problems.push(`${what}: ${p}`);

  socket.destroy();
  await closed;
  totals.connections++;
  totals.answers += answers;
  totals.events += received.length - answers - (pingAnswered ? 1 : 0);
  if (expected.close === 'malformed') totals.closedMalformed++;
  else if (expected.close === 'refused') totals.closedRefused++;
  else if (tail !== 'ping') totals.closedHalfClosed++;
  else totals.answeredToTheEnd++;
  return model.events.length;
}

/** PUT, GET and INCR in a loop on a valid connection; every answer must be right. */
function steadyClient(address: string): { stop(): Promise<void>; ops(): number; failures: string[] } {
  const connection = new NodeConnection(address, signToken(secret, 'steady-job'), { timeoutMs: 10_000 });
  const failures: string[] = [];
  let running = true;
  let ops = 0;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      try {
        const key = `s/${i % 64}`;
        const value = Buffer.from(`value ${i} `.repeat(1 + (i % 50)));
        const put = await connection.request({ op: Op.PUT, key, value });
        if (put.status !== Status.OK) failures.push(`PUT ${key}: status ${put.status} ${put.message}`);
        const get = await connection.request({ op: Op.GET, key });
        if (get.status !== Status.OK || !get.body.equals(value))
          failures.push(`GET ${key}: status ${get.status}, ${get.body.length} bytes`);
        const amount = Buffer.alloc(8);
        amount.writeBigInt64BE(1n);
        const incr = await connection.request({ op: Op.INCR, key: 'count', value: amount });
        if (incr.status !== Status.OK || incr.body.readBigInt64BE() !== BigInt(i + 1))
          failures.push(`INCR: status ${incr.status}, total ${incr.body.length === 8 ? incr.body.readBigInt64BE() : '?'}, want ${i + 1}`);
        ops += 3;
      } catch (error) {
        failures.push(`steady connection: ${String(error)}`);
      }
      if (failures.length > 10) break;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await connection.close();
    },
    ops: () => ops,
    failures,
  };
}

async function fuzzNode(t: ExecutionContext, engine: StorageEngine, frames: number): Promise<void> {
  const seed = fuzzSeed();
  t.log(`seed ${seed} (SATCHEL_FUZZ_SEED=${seed} replays this run), ${frames} frames against a ${engine.tier} node`);
  const escaped: unknown[] = [];
  const onEscape = (error: unknown) => escaped.push(error);
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  t.teardown(() => {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
  });
  const server = new StorageServer({ id: `fuzz-${engine.tier}`, engine, secret, logger, maxValueBytes: MAX_VALUE });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());

  global.gc?.();
  const baseline = process.memoryUsage();
  const peak = { rss: baseline.rss, arrayBuffers: baseline.arrayBuffers };
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    peak.rss = Math.max(peak.rss, now.rss);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, now.arrayBuffers);
  }, 25);
  t.teardown(() => clearInterval(sampler));

  const steady = steadyClient(address);
  const totals: Totals = {
    connections: 0,
    frames: 0,
    answers: 0,
    events: 0,
    closedMalformed: 0,
    closedRefused: 0,
    closedHalfClosed: 0,
    answeredToTheEnd: 0,
    problems: [],
  };
  const rng = new Rng(seed);
  const started = performance.now();
  let index = 0;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (totals.frames < frames && totals.problems.length < 20) {
      // Each connection gets its own generator stream, drawn in order: a seed replays the same connections.
      const i = index++;
      const sent = await fuzzConnection(address, server, rng.fork(), i, totals);
      totals.frames += sent;
    }
  });
  await Promise.all(workers);
  const seconds = (performance.now() - started) / 1000;

  // The node keeps working for the steady connection, and nothing of the fuzzed connections is left behind.
  const before = steady.ops();
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.true(steady.ops() > before, 'the steady connection still makes progress');
  await steady.stop();
  const final = new NodeConnection(address, signToken(secret, 'steady-job'), { timeoutMs: 5_000 });
  t.teardown(() => final.destroy());
  t.is((await final.request({ op: Op.PUT, key: 'last', value: Buffer.from('word') })).status, Status.OK);
  t.is((await final.request({ op: Op.GET, key: 'last' })).body.toString(), 'word');
  await final.close();
  const settled = Date.now() + 5_000;
  while ((server.counters.connections > 0 || server.coordination.active > 0) && Date.now() < settled)
    await new Promise((resolve) => setTimeout(resolve, 20));
  clearInterval(sampler);

  t.log(
    `${totals.frames.toLocaleString('en')} frames over ${totals.connections} connections in ${seconds.toFixed(1)} s: ` +
      `${totals.answers} answers, ${totals.events} events; closed for a malformed header ${totals.closedMalformed}, ` +
      `for a refused HELLO or a request before HELLO ${totals.closedRefused}, after we half-closed mid-frame ${totals.closedHalfClosed}; ` +
      `answered to the closing PING ${totals.answeredToTheEnd}; steady connection ${steady.ops()} ops; ` +
      `peak growth: rss ${((peak.rss - baseline.rss) / MiB).toFixed(0)} MiB, arrayBuffers ${((peak.arrayBuffers - baseline.arrayBuffers) / MiB).toFixed(0)} MiB`,
  );
  t.deepEqual(totals.problems.slice(0, 10), [], `seed ${seed}`);
  t.deepEqual(steady.failures, [], 'the steady connection saw no error');
  t.deepEqual(escaped.map(String), [], 'no exception escaped');
  t.deepEqual(faults.splice(0).slice(0, 10), [], 'the node logged no fault');
  t.is(server.counters.connections, 0, 'every connection is gone');
  t.is(server.coordination.active, 0, 'no parked request outlives its connection');
  // Declared lengths up to 4 GiB were sent; the node buffers at most one body within its limit per connection.
  t.true(
    peak.arrayBuffers - baseline.arrayBuffers < 256 * MiB,
    `arrayBuffers grew by ${((peak.arrayBuffers - baseline.arrayBuffers) / MiB).toFixed(0)} MiB`,
  );
  t.true(totals.frames >= frames || totals.problems.length > 0);
}

test.serial('fuzzed connections against a DRAM node: typed answers or a close, never a crash, hang or leak', async (t) => {
  await fuzzNode(t, new DramEngine(64 * MiB), FRAMES);
});

test.serial('fuzzed connections against a disk (ssd) node', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'satchel-fuzz-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const engine = await DiskEngine.open({ tier: 'ssd', path: join(dir, 'data'), capacity: 256 * MiB });
  await fuzzNode(t, engine, Math.ceil(FRAMES / 3));
});

test.serial('many connections declaring 4 GiB bodies and sending a little: nothing near that is allocated', async (t) => {
  const server = new StorageServer({ id: 'fuzz-huge', engine: new DramEngine(64 * MiB), secret, logger });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  global.gc?.();
  const before = process.memoryUsage().arrayBuffers;
  const sockets: net.Socket[] = [];
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  const answers: Promise<Buffer>[] = [];
  for (let i = 0; i < 64; i++) {
    const socket = net.connect({ host: '127.0.0.1', port: Number(address.split(':')[1]) });
    sockets.push(socket);
    answers.push(new Promise((resolve) => socket.once('data', resolve)));
    // Before HELLO and after it: the limit holds either way.
    if (i % 2 === 0) socket.write(encodeFrame({ code: Op.HELLO, key: Buffer.from(signToken(secret, 'huge')) }));
    socket.write(encodeFrame({ code: Op.PUT, id: 1, bodyLength: 0xffffffff, keyLength: 1 }));
    socket.write(Buffer.alloc(256 * 1024));
  }
  const first = await Promise.all(answers);
  // Odd sockets' first answer is the TOO_LARGE; even ones' is the HELLO's (TOO_LARGE follows).
  for (let i = 1; i < first.length; i += 2) t.is(first[i]![5], Status.TOO_LARGE);
  t.true(first.every((b) => b.length >= HEADER_SIZE));
  const grown = process.memoryUsage().arrayBuffers - before;
  t.true(grown < 64 * MiB, `arrayBuffers grew by ${(grown / MiB).toFixed(1)} MiB for 64 × 4 GiB declared`);
  t.is(server.counters.connections, 64, 'every connection is still open, skipping its body');
});
