import test from 'ava';
import { METADATA_SERVICE, SatchelError, addService, bindServer, ControlClient, grpc, type MetadataMethods, type ServiceImpl } from './index.ts';

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
    client.makeUnaryRequest(METADATA_SERVICE.GetPlacement!.path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0x50, 0x41]), { deadline: Date.now() + 5_000 }, (e) => resolve(e));
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
