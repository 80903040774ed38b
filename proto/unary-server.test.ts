/**
 * UnaryServer answers as grpc-js's server does (addService): replies, SatchelErrors with their codes, failures of
 * no code as INTERNAL, undecodable requests, unknown methods, requests over 4 MiB, deadlines — to grpc-js's client
 * (the nodes' and metadata servers' calls to the controller) and to LightControlClient (the client's, the
 * controller's to metadata servers) alike.
 */
import test, { type ExecutionContext } from 'ava';
import { LightControlClient } from './control-light.ts';
import { ControlClient, grpc, METADATA_SERVICE, UnaryServer } from './grpc.ts';
import { type MetadataMethods, SatchelError, type ServiceImpl, type WirePlacement } from './index.ts';

const placement: WirePlacement = {
  jobId: 'j',
  epoch: 3,
  generations: [{ nodes: [{ id: 'dram-0', address: '127.0.0.1:1', weight: 1 }] }],
  blockSize: 1 << 20,
  maxValueBytes: 1 << 30,
};

async function serve(t: ExecutionContext, impl: Partial<ServiceImpl<MetadataMethods>>) {
  const unexpected: string[] = [];
  const server = new UnaryServer((method) => unexpected.push(method));
  server.addService<MetadataMethods>(METADATA_SERVICE, {
    GetPlacement: async () => placement,
    SetPlacement: async () => ({}),
    DropPlacement: async () => ({}),
    ...impl,
  });
  const address = await server.listen('127.0.0.1', 0);
  t.teardown(() => server.close(100));
  return { address, unexpected };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (error) {
    return error instanceof SatchelError ? error.code : `not a SatchelError: ${String(error)}`;
  }
}

test('replies and refusals reach grpc-js and light clients alike', async (t) => {
  const { address, unexpected } = await serve(t, {
    SetPlacement: async ({ placement }) => {
      if (placement?.jobId === 'gone') throw new SatchelError('NO_SUCH_JOB', 'no job gone');
      if (placement?.jobId === 'bug') throw new TypeError('a bug');
      return {};
    },
  });
  const grpcClient = new ControlClient<MetadataMethods>(METADATA_SERVICE, address, 5_000);
  t.teardown(() => grpcClient.close());
  const light = new LightControlClient<MetadataMethods>('satchel.v1.Metadata', address, 5_000);
  t.teardown(() => light.close());
  for (const client of [grpcClient, light]) {
    const read = await client.call('GetPlacement', { jobId: 'j', token: 't' });
    t.is(read.epoch, 3);
    t.is(read.generations[0]!.nodes[0]!.id, 'dram-0');
    t.is(await codeOf(client.call('SetPlacement', { placement: { ...placement, jobId: 'gone' }, token: 't' })), 'NO_SUCH_JOB');
    // A failure without a code is the server's: INTERNAL, which clients read as UNAVAILABLE; the server is told.
    t.is(await codeOf(client.call('SetPlacement', { placement: { ...placement, jobId: 'bug' }, token: 't' })), 'UNAVAILABLE');
  }
  t.deepEqual(unexpected, ['SetPlacement', 'SetPlacement']);
  const error = await grpcClient.call('SetPlacement', { placement: { ...placement, jobId: 'gone' }, token: 't' }).catch((e) => e);
  t.regex((error as Error).message, /no job gone/, 'the message crosses too');
});

test('undecodable, unknown, too large, past its deadline: each answered with its status', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  t.teardown(() => release());
  const { address } = await serve(t, {
    DropPlacement: async () => {
      await held;
      return {};
    },
  });
  const raw = new grpc.Client(address, grpc.credentials.createInsecure());
  t.teardown(() => raw.close());
  const call = (path: string, bytes: Buffer, timeoutMs = 5_000) =>
    new Promise<grpc.ServiceError | null>((resolve) => {
      raw.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
        { deadline: Date.now() + timeoutMs },
        (e) => resolve(e),
      );
    });
  const undecodable = await call(METADATA_SERVICE.GetPlacement!.path, Buffer.from([0x0a, 0x50, 0x41]));
  t.is(undecodable?.code, grpc.status.INVALID_ARGUMENT);
  t.is(undecodable?.metadata.get('satchel-code')[0], 'BAD_REQUEST');
  t.is((await call('/satchel.v1.Metadata/Nope', Buffer.alloc(0)))?.code, grpc.status.UNIMPLEMENTED);
  t.is((await call('/satchel.v1.Nothing/GetPlacement', Buffer.alloc(0)))?.code, grpc.status.UNIMPLEMENTED);
  const large = await call(METADATA_SERVICE.GetPlacement!.path, Buffer.alloc(5 * 1024 * 1024, 0x0a));
  t.is(large?.code, grpc.status.RESOURCE_EXHAUSTED);
  t.is(large?.metadata.get('satchel-code').length, 0, 'refused before any handler, as grpc-js does');
  const late = await call(METADATA_SERVICE.DropPlacement!.path, Buffer.alloc(0), 200);
  t.is(late?.code, grpc.status.DEADLINE_EXCEEDED);
  // The server still answers afterwards, on the same connection.
  t.is(await call(METADATA_SERVICE.GetPlacement!.path, Buffer.from([0x0a, 0x01, 0x6a])), null);
});

test('a port in use is UNAVAILABLE naming it; close lets a call in flight finish', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const reached = new Promise<void>((resolve) => (entered = resolve));
  const server = new UnaryServer(() => {});
  server.addService(METADATA_SERVICE, {
    GetPlacement: async () => {
      entered();
      await held;
      return placement;
    },
    SetPlacement: async () => ({}),
    DropPlacement: async () => ({}),
  } satisfies ServiceImpl<MetadataMethods>);
  const address = await server.listen('127.0.0.1', 0);
  const port = Number(address.split(':')[1]);
  const second = new UnaryServer(() => {});
  const error = await second.listen('127.0.0.1', port).catch((e: unknown) => e);
  t.true(error instanceof SatchelError && error.code === 'UNAVAILABLE' && /EADDRINUSE/.test(error.message), String(error));
  const light = new LightControlClient<MetadataMethods>('satchel.v1.Metadata', address, 5_000);
  t.teardown(() => light.close());
  const inFlight = light.call('GetPlacement', { jobId: 'j', token: 't' });
  await reached;
  const closed = server.close(5_000);
  release();
  t.is((await inFlight).epoch, 3);
  await closed;
});
