import net from 'node:net';
import test from 'ava';
import { addService, bindServer, ControlClient, grpc, METADATA_SERVICE } from './grpc.ts';
import { type MetadataMethods, SatchelError, type ServiceImpl } from './index.ts';

/** A metadata service whose GetPlacement refuses with `message`; counts the calls that reached it. */
async function serve(t: import('ava').ExecutionContext, message: string): Promise<{ address: string; calls: () => number }> {
  let calls = 0;
  const server = new grpc.Server();
  const impl: ServiceImpl<MetadataMethods> = {
    GetPlacement: async () => {
      calls++;
      throw new SatchelError('NO_SUCH_JOB', message);
    },
    SetPlacement: async () => ({}),
    DropPlacement: async () => ({}),
  };
  addService(server, METADATA_SERVICE, impl, () => {});
  const address = await bindServer(server, '127.0.0.1', 0);
  t.teardown(() => server.forceShutdown());
  return { address, calls: () => calls };
}

test('a request that does not decode → INVALID_ARGUMENT with satchel-code BAD_REQUEST, and the handler never runs', async (t) => {
  const { address, calls } = await serve(t, 'unused');
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  // Field 1 (job_id) claims 80 bytes and one follows: grpc-js used to answer INTERNAL, which callers read as a
  // fault of the server (UNAVAILABLE) rather than of their request.
  const error = await new Promise<grpc.ServiceError | null>((resolve) => {
    client.makeUnaryRequest(
      METADATA_SERVICE.GetPlacement!.path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from([0x0a, 0x50, 0x41]),
      { deadline: Date.now() + 5_000 },
      (e) => resolve(e),
    );
  });
  t.is(error?.code, grpc.status.INVALID_ARGUMENT);
  t.is(error?.metadata.get('satchel-code')[0], 'BAD_REQUEST');
  t.regex(error?.details ?? '', /GetPlacement: request does not decode/);
  t.is(calls(), 0);
});

test('an error message echoing a huge input is cut short, so the caller still gets the answer', async (t) => {
  // A 3 MiB message did not fit in the HTTP/2 trailers: the caller heard nothing until its deadline.
  const { address } = await serve(t, `no job ${'x'.repeat(3 * 1024 * 1024)}`);
  const client = new ControlClient<MetadataMethods>(METADATA_SERVICE, address, 5_000);
  t.teardown(() => client.close());
  const started = Date.now();
  const error = await t.throwsAsync(client.call('GetPlacement', { jobId: 'x', token: 'y' }));
  t.true(error instanceof SatchelError);
  t.is((error as SatchelError).code, 'NO_SUCH_JOB');
  t.true(error!.message.length < 2048, `${error!.message.length} characters`);
  t.regex(error!.message, /^no job x+… \(\d+ more characters\)$/);
  t.true(Date.now() - started < 4_000, 'answered, not timed out');
});

test('a closed ControlClient rejects every call with CLOSED; a bad timeout or address is BAD_REQUEST, all SatchelErrors', async (t) => {
  const { address, calls } = await serve(t, 'no such job');
  const client = new ControlClient<MetadataMethods>(METADATA_SERVICE, address, 5_000);
  t.is((await t.throwsAsync<SatchelError>(client.call('GetPlacement', { jobId: 'x', token: 'y' })))?.code, 'NO_SUCH_JOB');
  // grpc-js would throw "Deadline is too far in the future" from inside its call, uncaught, crashing the process.
  for (const timeoutMs of [2 ** 31, Number.NaN, -1, '5s' as unknown as number]) {
    const error = await t.throwsAsync(client.call('GetPlacement', { jobId: 'x', token: 'y' }, timeoutMs));
    t.true(error instanceof SatchelError, String(error));
    t.is((error as SatchelError).code, 'BAD_REQUEST', String(timeoutMs));
  }
  client.close();
  client.close(); // idempotent
  // grpc-js throws a plain Error ("Channel has been shut down") at once for a closed channel.
  for (let i = 0; i < 2; i++) {
    const error = await t.throwsAsync(client.call('GetPlacement', { jobId: 'x', token: 'y' }));
    t.true(error instanceof SatchelError, String(error));
    t.is((error as SatchelError).code, 'CLOSED');
  }
  t.is(calls(), 1);
  // An address grpc-js cannot parse (an empty one, from a forged ticket): BAD_REQUEST from the constructor.
  const thrown = t.throws(() => new ControlClient<MetadataMethods>(METADATA_SERVICE, '', 5_000));
  t.true(thrown instanceof SatchelError, String(thrown));
  t.is((thrown as SatchelError).code, 'BAD_REQUEST');
});

test('with idleMs the connection closes once unused, and the next call opens another', async (t) => {
  const { address } = await serve(t, 'no such job');
  // A proxy in front of the server counts the client's connections.
  const open = new Set<net.Socket>();
  let accepted = 0;
  const proxy = net.createServer((socket) => {
    accepted++;
    open.add(socket);
    const [host, port] = address.split(':');
    const upstream = net.connect(Number(port), host);
    socket.pipe(upstream).pipe(socket);
    const end = () => {
      open.delete(socket);
      socket.destroy();
      upstream.destroy();
    };
    socket.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of open) socket.destroy();
    proxy.close();
  });
  const via = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  const client = new ControlClient<MetadataMethods>(METADATA_SERVICE, via, 5_000, undefined, { own: true, idleMs: 1_000 });
  t.teardown(() => client.close());
  const ask = async () => ((await t.throwsAsync(client.call('GetPlacement', { jobId: 'x', token: 'y' }))) as SatchelError).code;
  t.is(await ask(), 'NO_SUCH_JOB');
  t.is(open.size, 1);
  let waited = 0;
  // grpc-js closes an idle channel's connection at its subchannel pool's next sweep (every 10 s).
  while (open.size > 0 && waited < 15_000) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    waited += 100;
  }
  t.is(open.size, 0, 'closed once unused');
  t.is(await ask(), 'NO_SUCH_JOB');
  t.is(accepted, 2);
});
