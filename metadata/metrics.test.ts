import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { ControlClient, METADATA_SERVICE } from '../proto/grpc.ts';
import { ADMIN_SUBJECT, type MetadataMethods, SatchelError, signToken, type WirePlacement } from '../proto/index.ts';
import { promtoolCheck, sample } from '../test/helpers/promtool.ts';
import { MetadataServer, type MetadataServerOptions } from './server.ts';

const secret = randomBytes(32);
const logger = pino({ level: 'silent' });
const admin = signToken(secret, ADMIN_SUBJECT);

const placement = (jobId: string, epoch = 1): WirePlacement => ({
  jobId,
  epoch,
  generations: [{ nodes: [{ id: 'dram-1', address: '127.0.0.1:1', weight: 1 }] }],
  blockSize: 1 << 20,
  maxValueBytes: 1 << 30,
});

async function start(
  t: ExecutionContext,
  options: Partial<MetadataServerOptions> = {},
): Promise<{ server: MetadataServer; client: ControlClient<MetadataMethods> }> {
  const server = new MetadataServer({ secret, logger, metricsPort: 0, ...options });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  const client = new ControlClient<MetadataMethods>(METADATA_SERVICE, address, 5_000);
  t.teardown(() => client.close());
  return { server, client };
}

test('GET /metrics: placements held, requests by method and status, process metrics; promtool accepts it', async (t) => {
  const { server, client } = await start(t);
  t.regex(server.metricsAddress ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  await client.call('SetPlacement', { placement: placement('job-a'), token: admin });
  await client.call('SetPlacement', { placement: placement('job-b'), token: admin });
  await client.call('SetPlacement', { placement: placement('job-c'), token: admin });
  await client.call('DropPlacement', { jobId: 'job-c', token: admin });
  t.is((await client.call('GetPlacement', { jobId: 'job-a', token: signToken(secret, 'job-a') })).epoch, 1);
  await t.throwsAsync(client.call('GetPlacement', { jobId: 'job-a', token: signToken(secret, 'job-b') }), { instanceOf: SatchelError });
  await t.throwsAsync(client.call('GetPlacement', { jobId: 'job-z', token: signToken(secret, 'job-z') }), { instanceOf: SatchelError });
  await t.throwsAsync(client.call('SetPlacement', { placement: placement('job-a', 0), token: admin }), { instanceOf: SatchelError });

  const response = await fetch(server.metricsAddress!);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const at = (series: string) => sample(text, series);
  t.is(at('satchel_metadata_placements'), 2);
  t.is(at('satchel_metadata_requests_total{method="SetPlacement",status="ok"}'), 3);
  t.is(at('satchel_metadata_requests_total{method="SetPlacement",status="stale"}'), 1);
  t.is(at('satchel_metadata_requests_total{method="DropPlacement",status="ok"}'), 1);
  t.is(at('satchel_metadata_requests_total{method="GetPlacement",status="ok"}'), 1);
  t.is(at('satchel_metadata_requests_total{method="GetPlacement",status="unauthorized"}'), 1);
  t.is(at('satchel_metadata_requests_total{method="GetPlacement",status="no_such_job"}'), 1);
  t.not(at('satchel_metadata_process_cpu_user_seconds_total'), undefined, 'process metrics, with the metadata prefix');

  const check = promtoolCheck(text);
  t.is(check.code, 0, `promtool check metrics:\n${check.output}`);
});

test('the metrics server answers only GET /metrics, and closes with the server', async (t) => {
  const { server } = await start(t);
  const base = server.metricsAddress!.replace(/\/metrics$/, '');
  t.is((await fetch(`${base}/`)).status, 404);
  t.is((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status, 404);
  const text = await (await fetch(`${base}/metrics`)).text();
  t.is(sample(text, 'satchel_metadata_requests_total{method="GetPlacement",status="ok"}'), 0, 'known methods start at 0');
  await server.close();
  await t.throwsAsync(fetch(server.metricsAddress!));
});

test('without metricsPort there is no metrics server, but requests are still counted', async (t) => {
  const { server, client } = await start(t, { metricsPort: undefined });
  t.is(server.metricsAddress, null);
  await client.call('SetPlacement', { placement: placement('job-a'), token: admin });
  t.is(server.metrics.requestCount('SetPlacement', 'ok'), 1);
});
