/**
 * Bad input to the control plane and the console (issue 8, "Hardening"): the controller's and metadata server's
 * gRPC methods get undecodable, truncated and mutated messages, missing fields, huge strings, unknown job ids and
 * bad tokens; the console gets wrong types, missing fields, bodies over 64 KiB, bad JSON and unknown routes, then
 * random requests. Every call must be answered with a typed error (a gRPC status with the `satchel-code` trailer;
 * an HTTP 4xx whose JSON says `code` and `message`), nothing may escape as an exception, and the services must
 * still serve correct requests afterwards.
 *
 * SATCHEL_FUZZ_GRPC_CALLS and SATCHEL_FUZZ_HTTP_REQUESTS set the random calls (default 2,000 each);
 * SATCHEL_FUZZ_SEED replays a run (the seed is printed).
 */

import { randomBytes } from 'node:crypto';
import test from 'ava';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Satchel } from '../client/index.ts';
import { buildConsole } from '../controller/index.ts';
import { CONTROLLER_SERVICE, ControlClient, grpc, METADATA_SERVICE } from '../proto/grpc.ts';
import {
  type ControllerMethods,
  decodeTicket,
  ERROR_CODES,
  type MetadataMethods,
  SatchelError,
  signToken,
  VIEWER_SUBJECT,
} from '../proto/index.ts';
import { envCount, fuzzSeed, Rng } from './helpers/fuzz.ts';
import { type InProcessCluster, startInProcessCluster } from './helpers/in-process.ts';

const GRPC_CALLS = envCount('SATCHEL_FUZZ_GRPC_CALLS', 2_000);
const HTTP_REQUESTS = envCount('SATCHEL_FUZZ_HTTP_REQUESTS', 2_000);
const seed = fuzzSeed();

let cluster: InProcessCluster;
let app: FastifyInstance;
let admin: Record<string, string>;
/** The console's read-only token: every GET below needs it (or the admin's). */
let viewer: Record<string, string>;
let metadataAddress: string;
let controllerClient: ControlClient<ControllerMethods>;
let metadataClient: ControlClient<MetadataMethods>;
/** A job the fuzzing may do anything to with its own token (deregister it, grow it). */
let throwaway: { jobId: string; token: string };
const escaped: unknown[] = [];
const onEscape = (error: unknown) => escaped.push(error);

test.before(async () => {
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
  cluster = await startInProcessCluster({ dram: 1 });
  app = buildConsole(cluster.controller, { adminToken: cluster.adminToken, viewerToken: signToken(cluster.secret, VIEWER_SUBJECT) });
  admin = { authorization: `Bearer ${cluster.adminToken}` };
  viewer = { authorization: `Bearer ${signToken(cluster.secret, VIEWER_SUBJECT)}` };
  metadataAddress = cluster.controller.metadataAddresses[0]!;
  controllerClient = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, cluster.controllerAddress, 10_000);
  metadataClient = new ControlClient<MetadataMethods>(METADATA_SERVICE, metadataAddress, 10_000);
  const registered = await controllerClient.call('RegisterJob', { name: 'throwaway', hints: {}, key: cluster.tenantKey });
  throwaway = { jobId: registered.jobId, token: registered.token };
});

test.after.always(async () => {
  controllerClient?.close();
  metadataClient?.close();
  await app?.close();
  await cluster?.close();
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
});

interface RawAnswer {
  code: grpc.status;
  details: string;
  satchelCode: string | undefined;
}

/** One unary call with whatever bytes as the request. */
function rawCall(client: grpc.Client, path: string, bytes: Buffer, timeoutMs = 5_000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      { deadline: Date.now() + timeoutMs },
      (error: grpc.ServiceError | null) => {
        if (error === null) resolve({ code: grpc.status.OK, details: '', satchelCode: undefined });
        else resolve({ code: error.code, details: error.details, satchelCode: error.metadata?.get('satchel-code')[0]?.toString() });
      },
    );
  });
}

/** What is wrong with a raw answer, or null: OK, or a status that says what happened (never INTERNAL/UNKNOWN, never a timeout). */
function untyped(answer: RawAnswer): string | null {
  if (answer.code === grpc.status.OK) return null;
  if (answer.code === grpc.status.DEADLINE_EXCEEDED) return 'no answer within 5 s';
  if (answer.code === grpc.status.INTERNAL || answer.code === grpc.status.UNKNOWN) return `${grpc.status[answer.code]} ${answer.details}`;
  // Refused by grpc-js itself before any handler ran: a message over its size limit.
  if (answer.code === grpc.status.RESOURCE_EXHAUSTED && answer.satchelCode === undefined) return null;
  if (answer.satchelCode === undefined || !(ERROR_CODES as readonly string[]).includes(answer.satchelCode)) {
    return `${grpc.status[answer.code]} without a satchel-code: ${answer.details}`;
  }
  if (answer.details.length === 0) return `${grpc.status[answer.code]} with no message`;
  return null;
}

/** A plausible request per method (tokens of the throwaway job, never the admin's), to encode and then mutate. */
function templates(): Record<string, { path: string; serialize: (value: object) => Buffer; value: object }> {
  const job = throwaway;
  const values: Record<string, object> = {
    RegisterJob: {
      name: 'fuzzed',
      hints: { latencySensitive: true, capacity: 1024, peakThroughput: 10, functions: 2, maxValueBytes: 4096 },
    },
    DeregisterJob: { jobId: job.jobId, token: job.token },
    RenewLease: { jobId: job.jobId, token: job.token },
    GrowJob: { jobId: job.jobId, token: job.token, fullNodeId: 'dram-0', epoch: 1 },
    RegisterNode: { node: { id: 'evil', tier: 'dram', address: '127.0.0.1:1', capacity: 1024, bandwidth: 1 }, token: job.token },
    RegisterMetadata: { address: '127.0.0.1:1', token: job.token },
    ReportNode: {
      nodeId: 'dram-0',
      token: job.token,
      cpu: 0.5,
      bytesIn: 1,
      bytesOut: 1,
      ops: 1,
      used: 1,
      capacity: 2,
      jobs: [{ jobId: job.jobId, bytes: 1 }],
    },
    GetCluster: {},
    GetPlacement: { jobId: job.jobId, token: job.token },
    SetPlacement: {
      placement: {
        jobId: job.jobId,
        epoch: 99,
        generations: [{ nodes: [{ id: 'x', address: '127.0.0.1:1', weight: 1 }] }],
        blockSize: 1,
        maxValueBytes: 1,
      },
      token: job.token,
    },
    DropPlacement: { jobId: job.jobId, token: job.token },
  };
  const out: ReturnType<typeof templates> = {};
  for (const definition of [CONTROLLER_SERVICE, METADATA_SERVICE]) {
    for (const [name, method] of Object.entries(definition)) {
      out[name] = { path: method.path, serialize: method.requestSerialize as (value: object) => Buffer, value: values[name] ?? {} };
    }
  }
  return out;
}

function mutate(rng: Rng, bytes: Buffer): Buffer {
  const b = Buffer.from(bytes);
  switch (rng.int(7)) {
    case 0: // bit flips
      for (let i = rng.range(1, 4); i > 0 && b.length > 0; i--) b[rng.int(b.length)]! ^= 1 << rng.int(8);
      return b;
    case 1: // a byte overwritten with a boundary value (often a tag or a length)
      if (b.length > 0) b[rng.int(b.length)] = rng.pick([0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x08]);
      return b;
    case 2:
      return b.subarray(0, rng.int(b.length + 1));
    case 3:
      return Buffer.concat([b, rng.bytes(rng.range(1, 32))]);
    case 4: {
      const at = rng.int(b.length + 1);
      return Buffer.concat([b.subarray(0, at), rng.bytes(rng.range(1, 8)), b.subarray(at)]);
    }
    case 5: // a field repeated (protobuf takes the last, or appends to a repeated one)
      return Buffer.concat([b, b]);
    default: // a varint that never ends, or an enormous length
      return Buffer.concat([
        b,
        Buffer.from([rng.pick([0x0a, 0x12, 0x1a, 0x08]), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      ]);
  }
}

test.serial('gRPC: random, truncated and mutated messages to every method of both services → a typed status, never a hang', async (t) => {
  t.log(`seed ${seed} (SATCHEL_FUZZ_SEED=${seed} replays this run), ${GRPC_CALLS} calls`);
  const rng = new Rng(seed);
  const controller = new grpc.Client(cluster.controllerAddress, grpc.credentials.createInsecure());
  const metadata = new grpc.Client(metadataAddress, grpc.credentials.createInsecure());
  t.teardown(() => {
    controller.close();
    metadata.close();
  });
  const methods = templates();
  const names = Object.keys(methods);
  const problems: string[] = [];
  const byStatus = new Map<string, number>();
  const started = performance.now();
  let sent = 0;
  const worker = async () => {
    while (sent < GRPC_CALLS && problems.length < 20) {
      sent++;
      const name = rng.pick(names);
      const method = methods[name]!;
      const roll = rng.int(10);
      const bytes =
        roll < 3
          ? rng.bytes(rng.int(rng.chance(0.9) ? 64 : 4096))
          : roll < 4
            ? Buffer.alloc(0)
            : mutate(rng, method.serialize(method.value));
      const client = name in METADATA_SERVICE ? metadata : controller;
      const answer = await rawCall(client, method.path, bytes);
      const status = grpc.status[answer.code] ?? String(answer.code);
      byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
      const wrong = untyped(answer);
      if (wrong !== null) problems.push(`${name} with ${bytes.subarray(0, 64).toString('hex')} (${bytes.length} bytes): ${wrong}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  // Beyond what grpc-js accepts, an unknown method, an unknown service: refused by grpc-js, with a status.
  const large = await rawCall(controller, '/satchel.v1.Controller/RegisterJob', Buffer.alloc(5 * 1024 * 1024, 0x0a));
  t.is(large.code, grpc.status.RESOURCE_EXHAUSTED);
  t.is((await rawCall(controller, '/satchel.v1.Controller/Nope', Buffer.alloc(0))).code, grpc.status.UNIMPLEMENTED);
  t.is((await rawCall(metadata, '/satchel.v1.Nothing/GetPlacement', Buffer.alloc(0))).code, grpc.status.UNIMPLEMENTED);
  // A request that does not decode is the caller's fault: INVALID_ARGUMENT, satchel-code BAD_REQUEST.
  const undecodable = await rawCall(metadata, '/satchel.v1.Metadata/GetPlacement', Buffer.from([0x0a, 0x50, 0x41]));
  t.is(undecodable.code, grpc.status.INVALID_ARGUMENT);
  t.is(undecodable.satchelCode, 'BAD_REQUEST');
  t.regex(undecodable.details, /does not decode/);
  t.log(
    `${sent} calls in ${((performance.now() - started) / 1000).toFixed(1)} s: ${[...byStatus]
      .sort((a, b) => b[1] - a[1])
      .map(([s, n]) => `${s} ${n}`)
      .join(', ')}`,
  );
  t.deepEqual(problems.slice(0, 10), [], `seed ${seed}`);
});

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (error) {
    return error instanceof SatchelError ? error.code : `not a SatchelError: ${String(error)}`;
  }
}

test.serial('gRPC: missing fields, wrong values, huge strings, unknown job ids and bad tokens → the right SatchelError', async (t) => {
  const c = controllerClient;
  const m = metadataClient;
  const job = await c.call('RegisterJob', { key: cluster.tenantKey, name: 'victim', hints: {} });
  const other = await c.call('RegisterJob', { key: cluster.tenantKey, name: 'other', hints: {} });
  const adminToken = cluster.adminToken;
  const huge = 'x'.repeat(3 * 1024 * 1024); // under grpc-js's 4 MiB limit: the handler sees it
  const badTokens = [
    '',
    'garbage',
    huge,
    other.token,
    signToken(randomBytes(32), job.jobId),
    signToken(randomBytes(32), '@admin'),
    `v1.${job.jobId}.${'A'.repeat(32)}`,
    'v1.@admin.',
    'v1..x',
  ];
  const node = { id: 'n', tier: 'dram', address: '127.0.0.1:1', capacity: 1, bandwidth: 1 };
  const cases: [string, Promise<unknown>, string][] = [
    ['RegisterJob without a name', c.call('RegisterJob', { key: cluster.tenantKey } as never), 'BAD_REQUEST'],
    ['RegisterJob without a key', c.call('RegisterJob', { name: 'x', hints: {} }), 'UNAUTHORIZED'],
    ['RegisterJob with an empty name', c.call('RegisterJob', { key: cluster.tenantKey, name: '', hints: {} }), 'BAD_REQUEST'],
    ['RegisterJob with a 3 MiB name', c.call('RegisterJob', { key: cluster.tenantKey, name: huge, hints: {} }), 'BAD_REQUEST'],
    // Past the servers' 4 MiB message limit grpc-js answers RESOURCE_EXHAUSTED itself: the client says TOO_LARGE.
    [
      'RegisterJob with a 5 MiB name',
      c.call('RegisterJob', { key: cluster.tenantKey, name: 'x'.repeat(5 * 1024 * 1024), hints: {} }),
      'TOO_LARGE',
    ],
    [
      'RegisterJob with capacity NaN',
      c.call('RegisterJob', { key: cluster.tenantKey, name: 'x', hints: { capacity: NaN } }),
      'BAD_REQUEST',
    ],
    ['RegisterJob with capacity −1', c.call('RegisterJob', { key: cluster.tenantKey, name: 'x', hints: { capacity: -1 } }), 'BAD_REQUEST'],
    [
      'RegisterJob with capacity ∞',
      c.call('RegisterJob', { key: cluster.tenantKey, name: 'x', hints: { capacity: Infinity } }),
      'BAD_REQUEST',
    ],
    [
      'RegisterJob with peakThroughput −5',
      c.call('RegisterJob', { key: cluster.tenantKey, name: 'x', hints: { peakThroughput: -5 } }),
      'BAD_REQUEST',
    ],
    [
      'RegisterJob with maxValueBytes NaN',
      c.call('RegisterJob', { key: cluster.tenantKey, name: 'x', hints: { maxValueBytes: NaN } }),
      'BAD_REQUEST',
    ],
    ['RegisterJob with 7 replicas', c.call('RegisterJob', { key: cluster.tenantKey, name: 'x', hints: { replicas: 7 } }), 'BAD_REQUEST'],
    ['DeregisterJob of an unknown job (admin)', c.call('DeregisterJob', { jobId: 'no-such-job', token: adminToken }), 'NO_SUCH_JOB'],
    ['DeregisterJob with a 3 MiB job id (admin)', c.call('DeregisterJob', { jobId: huge, token: adminToken }), 'NO_SUCH_JOB'],
    ['RenewLease of an unknown job (admin)', c.call('RenewLease', { jobId: 'no-such-job', token: adminToken }), 'NO_SUCH_JOB'],
    [
      'GrowJob of an unknown job (admin)',
      c.call('GrowJob', { jobId: 'no-such-job', token: adminToken, fullNodeId: '', epoch: 0 }),
      'NO_SUCH_JOB',
    ],
    ['RegisterNode without a node (admin)', c.call('RegisterNode', { token: adminToken } as never), 'BAD_REQUEST'],
    ['RegisterNode of tier tape (admin)', c.call('RegisterNode', { node: { ...node, tier: 'tape' }, token: adminToken }), 'BAD_REQUEST'],
    [
      'RegisterNode without an address (admin)',
      c.call('RegisterNode', { node: { ...node, address: '' }, token: adminToken }),
      'BAD_REQUEST',
    ],
    [
      'RegisterNode at a 3 MiB address (admin)',
      c.call('RegisterNode', { node: { ...node, address: huge }, token: adminToken }),
      'BAD_REQUEST',
    ],
    ['RegisterNode with capacity 0 (admin)', c.call('RegisterNode', { node: { ...node, capacity: 0 }, token: adminToken }), 'BAD_REQUEST'],
    [
      'RegisterNode with capacity ∞ (admin)',
      c.call('RegisterNode', { node: { ...node, capacity: Infinity }, token: adminToken }),
      'BAD_REQUEST',
    ],
    [
      'RegisterNode with bandwidth NaN (admin)',
      c.call('RegisterNode', { node: { ...node, bandwidth: NaN }, token: adminToken }),
      'BAD_REQUEST',
    ],
    ['RegisterMetadata without an address (admin)', c.call('RegisterMetadata', { address: '', token: adminToken }), 'BAD_REQUEST'],
    [
      'RegisterMetadata at a malformed address (admin)',
      c.call('RegisterMetadata', { address: '::::%%', token: adminToken }),
      'BAD_REQUEST',
    ],
    ['ReportNode of an unknown node (admin)', c.call('ReportNode', { nodeId: 'nobody', token: adminToken } as never), 'OK'],
    ['ReportNode with cpu NaN (admin)', c.call('ReportNode', { nodeId: 'dram-0', token: adminToken, cpu: NaN } as never), 'BAD_REQUEST'],
    [
      'ReportNode with a job holding ∞ bytes (admin)',
      c.call('ReportNode', { nodeId: 'dram-0', token: adminToken, jobs: [{ jobId: job.jobId, bytes: Infinity }] } as never),
      'BAD_REQUEST',
    ],
    ['GetPlacement of an unknown job (admin)', m.call('GetPlacement', { jobId: 'no-such-job', token: adminToken }), 'NO_SUCH_JOB'],
    ['GetPlacement without a job id', m.call('GetPlacement', { token: job.token } as never), 'UNAUTHORIZED'],
    ['SetPlacement without a placement (admin)', m.call('SetPlacement', { token: adminToken } as never), 'BAD_REQUEST'],
    ['DropPlacement of an unknown job (admin)', m.call('DropPlacement', { jobId: 'no-such-job', token: adminToken }), 'OK'],
  ];
  for (const token of badTokens) {
    const what = `token ${JSON.stringify(token.slice(0, 24))}${token.length > 24 ? '…' : ''}`;
    cases.push(
      [`DeregisterJob, ${what}`, c.call('DeregisterJob', { jobId: job.jobId, token }), 'UNAUTHORIZED'],
      [`RenewLease, ${what}`, c.call('RenewLease', { jobId: job.jobId, token }), 'UNAUTHORIZED'],
      [`GrowJob, ${what}`, c.call('GrowJob', { jobId: job.jobId, token, fullNodeId: 'dram-0', epoch: 1 }), 'UNAUTHORIZED'],
      [`RegisterNode, ${what}`, c.call('RegisterNode', { node, token }), 'UNAUTHORIZED'],
      [`RegisterMetadata, ${what}`, c.call('RegisterMetadata', { address: '127.0.0.1:1', token }), 'UNAUTHORIZED'],
      [`ReportNode, ${what}`, c.call('ReportNode', { nodeId: 'dram-0', token } as never), 'UNAUTHORIZED'],
      [`GetPlacement, ${what}`, m.call('GetPlacement', { jobId: job.jobId, token }), 'UNAUTHORIZED'],
      [
        `SetPlacement, ${what}`,
        m.call('SetPlacement', { placement: { jobId: job.jobId, epoch: 99, generations: [], blockSize: 1, maxValueBytes: 1 }, token }),
        'UNAUTHORIZED',
      ],
      [`DropPlacement, ${what}`, m.call('DropPlacement', { jobId: job.jobId, token }), 'UNAUTHORIZED'],
    );
  }
  const results = await Promise.all(cases.map(async ([what, call, expected]) => [what, await code(call), expected] as const));
  for (const [what, got, expected] of results) t.is(got, expected, what);
  // None of it changed anything: the job is still there, placed as before, and no node or metadata server joined.
  t.true(cluster.controller.registry.jobs.has(job.jobId));
  t.deepEqual((await m.call('GetPlacement', { jobId: job.jobId, token: job.token })).generations, job.placement!.generations);
  t.deepEqual([...cluster.controller.registry.nodes.keys()], ['dram-0']);
  t.deepEqual(cluster.controller.metadataAddresses, [metadataAddress]);
});

/** The routes with ids filled in by the fuzzer (never a real node's: removing it would take the cluster down). */
const ROUTES = [
  '/api/cluster',
  '/api/nodes',
  '/api/nodes',
  '/api/jobs',
  '/api/jobs',
  '/api/jobs',
  '/api/jobs/:id',
  '/api/nodes/:id',
  '/api/events',
  '/metrics',
  '/',
  '/assets/chart.umd.min.js',
  '/api',
  '/api/jobs/:id/x',
  '/nope',
];
const METHODS = ['GET', 'GET', 'POST', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS'] as const;
const CONTENT_TYPES = [
  'application/json',
  'application/json',
  'text/plain',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=latin1',
  '',
  '\u0000/\u0000',
];

function randomId(rng: Rng): string {
  switch (rng.int(7)) {
    case 0:
      return encodeURIComponent(rng.bytes(rng.range(1, 40)).toString('latin1'));
    case 1:
      return 'x'.repeat(rng.range(90, 300));
    case 2:
      return rng.pick(['%ZZ', '%', '..%2F..%2Fetc', '%00', 'a%2Fb', '%E2%82', '🙂', '']);
    case 3:
      return `job-${rng.u32().toString(16)}`;
    default:
      return rng.pick(['nope', 'x', '0', 'null', 'constructor', '__proto__', 'dram-', 'ssd-1']);
  }
}

function randomJson(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 3 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53, 3, 201]);
    case 3:
      return rng.pick(['', 'x', 'dram', 'tape', 'x'.repeat(rng.range(150, 250)), '\u0000', '🙂']);
    case 4:
      return rng.bytes(rng.range(0, 16)).toString('latin1');
    case 5:
      return rng.pick([{}, []]);
    case 6:
      return Array.from({ length: rng.range(0, 4) }, () => randomJson(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const keys = [
        'name',
        'hints',
        'tier',
        'capacity',
        'latencySensitive',
        'peakThroughput',
        'functions',
        'maxValueBytes',
        'replicas',
        'extra',
        '__proto__',
        'constructor',
      ];
      for (let i = rng.range(0, 4); i > 0; i--) o[rng.pick(keys)] = randomJson(rng, depth + 1);
      return o;
    }
  }
}

function randomRequest(rng: Rng): InjectOptions {
  const method = rng.pick(METHODS);
  let url = rng.pick(ROUTES).replace(':id', () => randomId(rng));
  if (rng.chance(0.2))
    url += rng.pick([
      '?after=1',
      '?after=abc',
      '?after=1&after=2',
      '?x=1',
      `?after=${'9'.repeat(rng.range(10, 20))}`,
      '?',
      '?after=%ZZ',
      '#frag',
    ]);
  const headers: Record<string, string> = {};
  const auth = rng.int(5);
  if (auth < 2) headers.authorization = admin.authorization!;
  else if (auth === 2 && rng.chance(0.5)) headers.authorization = viewer.authorization!;
  else if (auth === 2)
    headers.authorization = rng.pick([
      'Bearer',
      'Bearer x',
      `Basic ${cluster.adminToken}`,
      `Bearer ${cluster.adminToken}x`,
      `bearer ${cluster.adminToken}`,
      'x'.repeat(9000),
    ]);
  let payload: string | Buffer | undefined;
  if (method !== 'GET' && method !== 'HEAD' && rng.chance(0.8)) {
    const kind = rng.int(10);
    if (kind < 5) payload = JSON.stringify(randomJson(rng));
    else if (kind < 6) payload = JSON.stringify({ name: `fuzz-${rng.u32()}`, hints: randomJson(rng) });
    else if (kind < 7)
      payload = rng.pick([
        '{"name":',
        '{"name":"x"}x',
        '',
        '{"__proto__":{"a":1},"name":"x"}',
        '{"constructor":{"prototype":{"a":1}}}',
        `{"name":"x","hints":${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
      ]);
    else if (kind < 8) payload = rng.bytes(rng.range(0, 256));
    else if (kind < 9) payload = JSON.stringify({ name: 'x', pad: 'y'.repeat(rng.range(64 * 1024, 200 * 1024)) });
    else payload = JSON.stringify(randomJson(rng)).repeat(rng.range(1, 3));
    const type = rng.pick(CONTENT_TYPES);
    if (type !== '') headers['content-type'] = type;
  }
  return { method, url, headers, ...(payload === undefined ? {} : { payload }) };
}

test.serial(
  'console: wrong types, missing fields, bodies over 64 KiB, bad JSON, unknown routes, random requests → a 4xx with code and message',
  async (t) => {
    const jobsBefore = cluster.controller.registry.jobs.size;
    const fixed: [string, InjectOptions, number][] = [
      ['name of the wrong type', { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 5 } }, 400],
      ['no name', { method: 'POST', url: '/api/jobs', headers: admin, payload: { hints: {} } }, 400],
      ['an empty name', { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: '' } }, 400],
      ['a name of 201 characters', { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x'.repeat(201) } }, 400],
      ['hints as a string', { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x', hints: 'fast' } }, 400],
      [
        'a capacity as text',
        { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x', hints: { capacity: '1GiB' } } },
        400,
      ],
      ['functions 1.5', { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x', hints: { functions: 1.5 } } }, 400],
      [
        'a body that is an array',
        { method: 'POST', url: '/api/jobs', headers: { ...admin, 'content-type': 'application/json' }, payload: '[]' },
        400,
      ],
      [
        'a body that is null',
        { method: 'POST', url: '/api/jobs', headers: { ...admin, 'content-type': 'application/json' }, payload: 'null' },
        400,
      ],
      [
        'an empty JSON body',
        { method: 'POST', url: '/api/jobs', headers: { ...admin, 'content-type': 'application/json' }, payload: '' },
        400,
      ],
      [
        'JSON cut short',
        { method: 'POST', url: '/api/jobs', headers: { ...admin, 'content-type': 'application/json' }, payload: '{"name":' },
        400,
      ],
      [
        'JSON with trailing garbage',
        { method: 'POST', url: '/api/jobs', headers: { ...admin, 'content-type': 'application/json' }, payload: '{"name":"x"}}' },
        400,
      ],
      [
        'a __proto__ key',
        {
          method: 'POST',
          url: '/api/jobs',
          headers: { ...admin, 'content-type': 'application/json' },
          payload: '{"__proto__":{"admin":true},"name":"x"}',
        },
        400,
      ],
      [
        '40,000 levels of nesting',
        {
          method: 'POST',
          url: '/api/jobs',
          headers: { ...admin, 'content-type': 'application/json' },
          payload: `{"name":"x","hints":${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
        },
        400,
      ],
      ['a body of 70 KiB', { method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'x', pad: 'y'.repeat(70 * 1024) } }, 413],
      [
        'a body of 5 MiB',
        {
          method: 'POST',
          url: '/api/jobs',
          headers: { ...admin, 'content-type': 'application/json' },
          payload: Buffer.alloc(5 * 1024 * 1024, 0x20),
        },
        413,
      ],
      [
        'XML',
        { method: 'POST', url: '/api/jobs', headers: { ...admin, 'content-type': 'application/xml' }, payload: '<name>x</name>' },
        415,
      ],
      ['an unknown tier', { method: 'POST', url: '/api/nodes', headers: admin, payload: { tier: 'tape' } }, 400],
      ['a tier of the wrong type', { method: 'POST', url: '/api/nodes', headers: admin, payload: { tier: 5 } }, 400],
      ['no admin token', { method: 'POST', url: '/api/jobs', payload: { name: 'x' } }, 401],
      ['a 9,000-character token', { method: 'DELETE', url: '/api/jobs/x', headers: { authorization: `Bearer ${'x'.repeat(9000)}` } }, 401],
      ['an unknown job', { method: 'GET', url: '/api/jobs/no-such-job', headers: viewer }, 404],
      ['deleting an unknown job', { method: 'DELETE', url: '/api/jobs/no-such-job', headers: admin }, 404],
      ['deleting an unknown node', { method: 'DELETE', url: '/api/nodes/no-such-node', headers: admin }, 404],
      ['a bad percent-encoding', { method: 'GET', url: '/api/jobs/%ZZ', headers: viewer }, 400],
      ['an id of 300 characters', { method: 'GET', url: `/api/jobs/${'x'.repeat(300)}`, headers: viewer }, 414],
      ['a cursor that is not a number', { method: 'GET', url: '/api/events?after=soon', headers: viewer }, 400],
      ['two cursors', { method: 'GET', url: '/api/events?after=1&after=2', headers: viewer }, 400],
      ['an unknown query parameter', { method: 'GET', url: '/api/events?limit=5', headers: viewer }, 400],
      ['an unknown route', { method: 'GET', url: '/api/nothing' }, 404],
      ['a method no route has', { method: 'PATCH', url: '/api/jobs' }, 404],
    ];
    for (const [what, request, status] of fixed) {
      const response = await app.inject(request);
      t.is(response.statusCode, status, `${what}: ${response.body.slice(0, 200)}`);
      const body = response.json() as { code?: unknown; message?: unknown };
      const expected =
        status === 401 ? 'UNAUTHORIZED' : status === 413 ? 'TOO_LARGE' : what.includes('unknown job') ? 'NO_SUCH_JOB' : 'BAD_REQUEST';
      t.is(body.code, expected, `${what}: code`);
      t.true(typeof body.message === 'string' && body.message.length > 0, `${what}: a message`);
    }
    t.is(cluster.controller.registry.jobs.size, jobsBefore, 'none of them made a job');

    // Random requests: anything but a server error, and every error typed.
    t.log(`seed ${seed} (SATCHEL_FUZZ_SEED=${seed} replays this run), ${HTTP_REQUESTS} requests`);
    const rng = new Rng(seed ^ 0x5eed);
    const problems: string[] = [];
    const byStatus = new Map<number, number>();
    const started = performance.now();
    for (let i = 0; i < HTTP_REQUESTS && problems.length < 20; i++) {
      const request = randomRequest(rng);
      const response = await app.inject(request);
      byStatus.set(response.statusCode, (byStatus.get(response.statusCode) ?? 0) + 1);
      const what = `${request.method} ${String(request.url).slice(0, 80)} (${String(request.payload ?? '').slice(0, 80)})`;
      if (response.statusCode >= 500) problems.push(`${what}: ${response.statusCode} ${response.body.slice(0, 200)}`);
      else if (response.statusCode >= 400 && request.method !== 'HEAD') {
        let body: { code?: unknown; message?: unknown } = {};
        try {
          body = response.json();
        } catch {
          problems.push(`${what}: ${response.statusCode} with a body that is not JSON: ${response.body.slice(0, 100)}`);
          continue;
        }
        if (
          typeof body.code !== 'string' ||
          !(ERROR_CODES as readonly string[]).includes(body.code) ||
          typeof body.message !== 'string' ||
          body.message.length === 0
        ) {
          problems.push(`${what}: ${response.statusCode} ${response.body.slice(0, 200)}`);
        }
      }
    }
    t.log(
      `${HTTP_REQUESTS} requests in ${((performance.now() - started) / 1000).toFixed(1)} s: ${[...byStatus]
        .sort((a, b) => a[0] - b[0])
        .map(([s, n]) => `${s}×${n}`)
        .join(', ')}`,
    );
    t.deepEqual(problems.slice(0, 10), [], `seed ${seed}`);
  },
);

test.serial('after all of that, every service answers correct requests and nothing escaped', async (t) => {
  const satchel = await Satchel.connect(cluster.controllerAddress, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const registered = await satchel.registerJob('afterwards', { latencySensitive: true });
  const job = await Satchel.attach(registered.ticket);
  await job.put('k', 'still works');
  t.is((await job.get('k'))?.toString(), 'still works');
  t.is(
    (await metadataClient.call('GetPlacement', { jobId: registered.id, token: decodeTicket(registered.ticket).token })).jobId,
    registered.id,
  );
  t.true((await controllerClient.call('GetCluster', { token: cluster.adminToken })).nodes.some((n) => n.id === 'dram-0'));
  await job.close();
  await registered.deregister();
  t.false(cluster.controller.registry.jobs.has(registered.id));
  const made = await app.inject({ method: 'POST', url: '/api/jobs', headers: admin, payload: { name: 'console-afterwards' } });
  t.is(made.statusCode, 201, made.body);
  t.is((await app.inject({ url: '/api/cluster', headers: viewer })).statusCode, 200);
  t.is(
    (await app.inject({ method: 'DELETE', url: `/api/jobs/${(made.json() as { jobId: string }).jobId}`, headers: admin })).statusCode,
    204,
  );
  t.deepEqual(escaped.map(String), [], 'no exception escaped');
});
