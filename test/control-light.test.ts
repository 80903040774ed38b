// The client's dependency-free control-plane calls (proto/control-light.ts): its messages agree with
// control.proto as protobufjs reads it, and it talks to the real grpc-js servers, errors and TLS included.

import http2 from 'node:http2';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import protobuf from 'protobufjs';
import { LightControlClient } from '../proto/control-light.ts';
import { LIGHT_METHODS } from '../proto/control-schema.ts';
import { type ControllerMethods, type MetadataMethods, SatchelError } from '../proto/index.ts';
import { decodeMessage, encodeMessage } from '../proto/protobuf-lite.ts';
import { rejection } from './helpers/assert.ts';
import { startInProcessCluster } from './helpers/in-process.ts';

const root = protobuf.loadSync(fileURLToPath(new URL('../proto/control.proto', import.meta.url)));
const toObject = { longs: Number, defaults: true, arrays: true } as const;

const placement = {
  jobId: 'job-1',
  epoch: 7,
  generations: [
    {
      nodes: [
        { id: 'dram-0', address: '127.0.0.1:7000', weight: 0.5 },
        { id: 'ssd-1', address: 'n:1', weight: 1 },
      ],
    },
    { nodes: [] },
  ],
  blockSize: 1048576,
  maxValueBytes: 1.5e9,
  replicas: 2,
};
const samples: Record<string, [Record<string, unknown>, Record<string, unknown>]> = {
  'satchel.v1.Controller/RegisterJob': [
    { name: 'sort', hints: { latencySensitive: false, capacity: 2 ** 33, replicas: 3, functions: 0 }, key: 'sk1.default.x' },
    { jobId: 'sort-1', token: 't', ticket: 'st1_x', leaseMs: 60000, placement, driverToken: 'd1.sort-1.m' },
  ],
  'satchel.v1.Controller/DeregisterJob': [{ jobId: 'j', token: 'd1.j.m' }, {}],
  'satchel.v1.Controller/RenewLease': [
    { jobId: 'j', token: 'd1.j.m' },
    { leaseMs: 1, ticket: 'st1_é' },
  ],
  'satchel.v1.Controller/GrowJob': [{ jobId: 'j', token: 't', fullNodeId: 'dram-0', epoch: 4294967295 }, placement],
  'satchel.v1.Controller/GetCluster': [
    { token: 'k' },
    { nodes: [{ id: 'a', tier: 'dram', address: 'h:1', capacity: 1e9, bandwidth: 2e9, bootId: 'b' }], metadata: ['m:1', 'm:2'], jobs: 3 },
  ],
  'satchel.v1.Metadata/GetPlacement': [{ jobId: 'j', token: 't' }, placement],
  'satchel.v1.Metadata/SetPlacement': [{ placement, token: 'admin' }, {}],
  'satchel.v1.Metadata/DropPlacement': [{ jobId: 'j', token: 'admin' }, {}],
};

test('every message the client sends or reads encodes and decodes as protobufjs does with control.proto', (t) => {
  for (const [path, [requestSchema, replySchema]] of Object.entries(LIGHT_METHODS)) {
    const [service, method] = path.split('/') as [string, string];
    const rpc = root.lookupService(service).methods[method]!;
    const requestType = root.lookupType(rpc.requestType);
    const replyType = root.lookupType(rpc.responseType);
    const [request, reply] = samples[path]!;
    // Ours → protobufjs.
    const sent = requestType.toObject(requestType.decode(encodeMessage(requestSchema, request)), toObject);
    t.deepEqual(sent, requestType.toObject(requestType.fromObject(request), toObject), `${path} request`);
    // protobufjs → ours.
    const read = decodeMessage(replySchema, Buffer.from(replyType.encode(replyType.fromObject(reply)).finish()));
    t.deepEqual(
      read,
      replyType.toObject(replyType.decode(replyType.encode(replyType.fromObject(reply)).finish()), toObject),
      `${path} reply`,
    );
  }
  t.is(Object.keys(samples).length, Object.keys(LIGHT_METHODS).length, 'a sample for every method');
});

test('against the real servers: register, look the placement up, renew, deregister; refusals keep their codes; CLOSED after close', async (t) => {
  const cluster = await startInProcessCluster({ dram: 1 });
  t.teardown(() => cluster.close());
  const controller = new LightControlClient<ControllerMethods>('satchel.v1.Controller', cluster.controllerAddress, 5_000);
  t.teardown(() => controller.close());
  const registered = await controller.call('RegisterJob', { name: 'light', hints: { capacity: 1024 * 1024 }, key: cluster.tenantKey });
  t.regex(registered.jobId, /^job-[0-9a-f]{12}$/);
  t.is(registered.placement?.generations[0]?.nodes[0]?.id, 'dram-0');
  const metadata = new LightControlClient<MetadataMethods>('satchel.v1.Metadata', cluster.controller.metadataAddresses[0]!, 5_000);
  t.teardown(() => metadata.close());
  t.deepEqual(
    (await metadata.call('GetPlacement', { jobId: registered.jobId, token: registered.token })).generations,
    registered.placement!.generations,
  );
  t.is((await rejection(t, metadata.call('GetPlacement', { jobId: registered.jobId, token: 'forged' }))).code, 'UNAUTHORIZED');
  t.is((await rejection(t, controller.call('RegisterJob', { name: 'x', hints: {}, key: 'nope' }))).code, 'UNAUTHORIZED');
  t.is((await rejection(t, controller.call('RegisterJob', { name: '', hints: {}, key: cluster.tenantKey }))).code, 'BAD_REQUEST');
  t.truthy((await controller.call('RenewLease', { jobId: registered.jobId, token: registered.driverToken })).ticket);
  await controller.call('DeregisterJob', { jobId: registered.jobId, token: registered.driverToken });
  t.is(
    (await rejection(t, controller.call('DeregisterJob', { jobId: registered.jobId, token: registered.driverToken }))).code,
    'NO_SUCH_JOB',
  );
  controller.close();
  t.is((await rejection(t, controller.call('GetCluster', { token: cluster.tenantKey }))).code, 'CLOSED');
});

test('nothing listening is UNAVAILABLE; a server that never answers is TIMEOUT', async (t) => {
  const silent = net.createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const port = (silent.address() as net.AddressInfo).port;
  const mute = new LightControlClient<ControllerMethods>('satchel.v1.Controller', `127.0.0.1:${port}`, 300);
  t.teardown(() => mute.close());
  t.is((await rejection(t, mute.call('GetCluster', { token: '' }))).code, 'TIMEOUT');
  silent.close();
  const gone = new LightControlClient<ControllerMethods>('satchel.v1.Controller', '127.0.0.1:1', 2_000);
  t.teardown(() => gone.close());
  t.is((await rejection(t, gone.call('GetCluster', { token: '' }))).code, 'UNAVAILABLE');
});

test('clients of one server share one HTTP/2 session, which ends with the last of them to close', async (t) => {
  // A bare gRPC server answering every call with an empty message, counting the sessions clients open.
  const server = http2.createServer();
  const open = new Set<http2.ServerHttp2Session>();
  let opened = 0;
  server.on('session', (session) => {
    opened++;
    open.add(session);
    session.on('close', () => open.delete(session));
  });
  server.on('stream', (stream) => {
    stream.on('data', () => {});
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const driver = new LightControlClient<ControllerMethods>('satchel.v1.Controller', address, 5_000);
  const perJob = new LightControlClient<ControllerMethods>('satchel.v1.Controller', address, 5_000);
  await driver.call('GetCluster', { token: '' });
  await perJob.call('DeregisterJob', { jobId: 'j', token: 't' });
  t.is(opened, 1, 'the second client rides on the first one’s session');
  perJob.close();
  t.is((await rejection(t, perJob.call('GetCluster', { token: '' }))).code, 'CLOSED');
  await driver.call('GetCluster', { token: '' });
  t.is(opened, 1, 'a client closing leaves the session to the others');
  driver.close();
  while (open.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  const later = new LightControlClient<ControllerMethods>('satchel.v1.Controller', address, 5_000);
  t.teardown(() => later.close());
  await later.call('GetCluster', { token: '' });
  t.is(opened, 2, 'the last close ended it; a new client opens another');
  // The server ends the session: a call that finds it gone fails (UNAVAILABLE, as before) and the next opens another.
  for (const session of open) session.destroy();
  while (open.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  for (let attempt = 1; ; attempt++) {
    try {
      await later.call('GetCluster', { token: '' });
      break;
    } catch (error) {
      if (!(error instanceof SatchelError) || error.code !== 'UNAVAILABLE' || attempt === 2) throw error;
    }
  }
  t.is(opened, 3);
});
