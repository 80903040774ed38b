import http2 from 'node:http2';
import test from 'ava';
import { CONTROLLER_SERVICE, REPORT_NODES } from './control.ts';
import type { NodeReport, NodeReportReply } from './control-types.ts';
import { SatchelError } from './errors.ts';
import { MessageStreamClient } from './message-stream.ts';
import { UnaryServer } from './unary-server.ts';

const report = (nodeId: string, ops: number) => ({ nodeId, token: 't', ops, jobs: [] }) as unknown as NodeReport;

async function serve(t: import('ava').ExecutionContext, handler?: (request: NodeReport) => Promise<NodeReportReply>) {
  const server = new UnaryServer(() => {});
  server.addService(CONTROLLER_SERVICE, {} as never);
  if (handler !== undefined) server.addStream(REPORT_NODES, handler as (request: unknown) => Promise<unknown>);
  const address = await server.listen('127.0.0.1', 0);
  t.teardown(() => server.close(100));
  return address;
}

test('each report on the stream gets its own reply, in order, many in flight', async (t) => {
  const seen: number[] = [];
  const address = await serve(t, async (request) => {
    seen.push(request.ops);
    // Later requests answered sooner would show a reply matched to the wrong request.
    await new Promise((resolve) => setTimeout(resolve, request.ops % 3));
    return { unknown: false, leaseMs: request.ops * 10 };
  });
  const client = new MessageStreamClient<NodeReport, NodeReportReply>(REPORT_NODES, address);
  t.teardown(() => client.close());
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => client.send(report('n', i + 1), 5_000)));
  t.deepEqual(
    replies.map((r) => r.leaseMs),
    Array.from({ length: 50 }, (_, i) => (i + 1) * 10),
  );
  t.deepEqual(
    seen,
    Array.from({ length: 50 }, (_, i) => i + 1),
    'run one at a time, in order',
  );
  for (let i = 0; i < 20; i++) t.is((await client.send(report('n', 7), 5_000)).leaseMs, 70);
  t.false(client.unimplemented);
});

test("a handler's error fails that report with its code; the next report goes on a new stream", async (t) => {
  const address = await serve(t, async (request) => {
    if (request.nodeId === 'bad') throw new SatchelError('UNAUTHORIZED', 'not the admin');
    return { unknown: false, leaseMs: 1 };
  });
  const client = new MessageStreamClient<NodeReport, NodeReportReply>(REPORT_NODES, address);
  t.teardown(() => client.close());
  t.is((await client.send(report('ok', 1), 5_000)).leaseMs, 1);
  const error = await t.throwsAsync(client.send(report('bad', 1), 5_000));
  t.true(error instanceof SatchelError);
  t.is((error as SatchelError).code, 'UNAUTHORIZED');
  t.is((await client.send(report('ok', 1), 5_000)).leaseMs, 1);
});

test('a server without the stream: UNAVAILABLE and unimplemented, so the caller uses the unary call', async (t) => {
  const address = await serve(t);
  const client = new MessageStreamClient<NodeReport, NodeReportReply>(REPORT_NODES, address);
  t.teardown(() => client.close());
  const error = await t.throwsAsync(client.send(report('n', 1), 5_000));
  t.is((error as SatchelError).code, 'UNAVAILABLE');
  t.true(client.unimplemented);
});

test('no reply in time: TIMEOUT; nobody listening: UNAVAILABLE; closed: CLOSED', async (t) => {
  const address = await serve(t, () => new Promise(() => {}));
  const client = new MessageStreamClient<NodeReport, NodeReportReply>(REPORT_NODES, address);
  t.is(((await t.throwsAsync(client.send(report('n', 1), 100))) as SatchelError).code, 'TIMEOUT');
  client.close();
  t.is(((await t.throwsAsync(client.send(report('n', 1), 100))) as SatchelError).code, 'CLOSED');
  const nowhere = new MessageStreamClient<NodeReport, NodeReportReply>(REPORT_NODES, '127.0.0.1:1');
  t.teardown(() => nowhere.close());
  t.is(((await t.throwsAsync(nowhere.send(report('n', 1), 2_000))) as SatchelError).code, 'UNAVAILABLE');
});

test('closing the server cancels the open streams at once; the client fails over to a new stream', async (t) => {
  const server = new UnaryServer(() => {});
  server.addStream(REPORT_NODES, async () => ({ unknown: false, leaseMs: 1 }));
  const address = await server.listen('127.0.0.1', 0);
  const client = new MessageStreamClient<NodeReport, NodeReportReply>(REPORT_NODES, address);
  t.teardown(() => client.close());
  await client.send(report('n', 1), 5_000);
  const began = Date.now();
  await server.close(10_000);
  t.true(Date.now() - began < 2_000, `closed in ${Date.now() - began} ms, not after the grace`);
  t.is(((await t.throwsAsync(client.send(report('n', 1), 2_000))) as SatchelError).code, 'UNAVAILABLE');
});

test('a compressed or oversized message on the stream ends it with BAD_REQUEST; the handler never runs', async (t) => {
  const { connect } = await import('node:http2');
  let runs = 0;
  const address = await serve(t, async () => {
    runs++;
    return { unknown: false, leaseMs: 1 };
  });
  for (const [what, bytes] of [
    ['compressed', Buffer.from([1, 0, 0, 0, 0])],
    ['oversized', Buffer.from([0, 0x7f, 0xff, 0xff, 0xff])],
  ] as const) {
    const session = connect(`http://${address}`);
    t.teardown(() => session.destroy());
    const stream = session.request({ ':method': 'POST', ':path': REPORT_NODES.path, 'content-type': 'application/grpc', te: 'trailers' });
    const trailers = new Promise<Record<string, unknown>>((resolve) => stream.on('trailers', (headers) => resolve(headers)));
    stream.resume();
    stream.write(bytes);
    const status = await trailers;
    t.is(status['satchel-code'], 'BAD_REQUEST', what);
    t.is(status['grpc-status'], '3', what);
  }
  t.is(runs, 0);
});

test("clients on shared sessions: streams on one connection, which one client's failure or close leaves open", async (t) => {
  const address = await serve(t, async (request) => {
    if (request.ops === 0) throw new SatchelError('UNAUTHORIZED', 'not the admin');
    return { unknown: false, leaseMs: request.ops };
  });
  const opened: http2.ClientHttp2Session[] = [];
  const shared = {
    session() {
      const last = opened.at(-1);
      if (last !== undefined && !last.destroyed && !last.closed) return last;
      const session = http2.connect(`http://${address}`);
      session.on('error', () => {});
      opened.push(session);
      return session;
    },
  };
  t.teardown(() => {
    for (const session of opened) session.destroy();
  });
  const a = new MessageStreamClient<NodeReport, NodeReportReply>(REPORT_NODES, address, undefined, shared);
  const b = new MessageStreamClient<NodeReport, NodeReportReply>(REPORT_NODES, address, undefined, shared);
  t.is((await a.send(report('a', 1), 5_000)).leaseMs, 1);
  t.is((await b.send(report('b', 2), 5_000)).leaseMs, 2);
  const error = await t.throwsAsync(a.send(report('a', 0), 5_000));
  t.is((error as SatchelError).code, 'UNAUTHORIZED');
  t.is((await b.send(report('b', 3), 5_000)).leaseMs, 3, "the other client's stream went on");
  t.is((await a.send(report('a', 4), 5_000)).leaseMs, 4, 'a new stream on the same connection');
  a.close();
  t.is((await b.send(report('b', 5), 5_000)).leaseMs, 5);
  t.is(opened.length, 1);
  t.false(opened[0]?.destroyed);
});
