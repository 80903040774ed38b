import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { addService, bindServer, CONTROLLER_SERVICE, grpc } from '../proto/grpc.ts';
import {
  type ControllerMethods,
  type ErrorCode,
  HEADER_SIZE,
  type NodeReport,
  Op,
  type RegisterNodeRequest,
  SatchelError,
  type ServiceImpl,
  Status,
  signToken,
} from '../proto/index.ts';
import { connect } from '../test/helpers/node-session.ts';
import { eventually } from '../test/helpers/raw-client.ts';
import { ControllerLink, REGISTER_RETRY } from './controller-link.ts';
import { DramEngine } from './dram-engine.ts';
import { StorageServer } from './server.ts';

const secret = randomBytes(32);
const logger = pino({ level: 'silent' });
const node = { id: 'dram-link', tier: 'dram' as const, address: '127.0.0.1:1', capacity: 1024, bandwidth: 1e9, bootId: 'boot-link' };

/**
 * A controller stand-in whose RegisterNode answers each call in turn with the next of `answers` (an error code,
 * or 'ok'; past the end, 'ok'), recording when each call came.
 */
async function controller(t: ExecutionContext, answers: (ErrorCode | 'ok')[]): Promise<{ address: string; calls: number[] }> {
  const calls: number[] = [];
  const server = new grpc.Server();
  const impl = {
    RegisterNode: async (request: RegisterNodeRequest) => {
      t.is(request.node!.bootId, node.bootId);
      const answer = answers[calls.length] ?? 'ok';
      calls.push(performance.now());
      if (answer !== 'ok') throw new SatchelError(answer, `refused with ${answer}`);
      return { nodeId: request.node!.id, leaseMs: 0 };
    },
  } as unknown as ServiceImpl<ControllerMethods>;
  addService(server, CONTROLLER_SERVICE, impl, () => {});
  const address = await bindServer(server, '127.0.0.1', 0);
  t.teardown(() => void server.forceShutdown());
  return { address, calls };
}

function link(t: ExecutionContext, address: string): ControllerLink {
  const made = new ControllerLink({ controller: address, secret, logger, node });
  t.teardown(() => made.close());
  return made;
}

const cases: { name: string; answers: (ErrorCode | 'ok')[]; attempts: number; calls: number; fails?: ErrorCode }[] = [
  { name: 'registered at the first call', answers: ['ok'], attempts: 20, calls: 1 },
  { name: 'UNAVAILABLE (a controller not up yet) is retried', answers: ['UNAVAILABLE', 'UNAVAILABLE'], attempts: 20, calls: 3 },
  { name: 'TIMEOUT (a slow controller) is retried', answers: ['TIMEOUT', 'UNAVAILABLE', 'TIMEOUT'], attempts: 20, calls: 4 },
  { name: 'any other refusal fails at once', answers: ['BAD_REQUEST'], attempts: 20, calls: 1, fails: 'BAD_REQUEST' },
  { name: 'UNAUTHORIZED fails at once', answers: ['UNAVAILABLE', 'UNAUTHORIZED'], attempts: 20, calls: 2, fails: 'UNAUTHORIZED' },
  {
    name: "the last attempt's error once attempts are used up",
    answers: ['UNAVAILABLE', 'UNAVAILABLE', 'TIMEOUT'],
    attempts: 3,
    calls: 3,
    fails: 'TIMEOUT',
  },
  { name: 'one attempt (a report told "unknown node"): no retry', answers: ['UNAVAILABLE'], attempts: 1, calls: 1, fails: 'UNAVAILABLE' },
];
for (const c of cases) {
  test(`registration: ${c.name}`, async (t) => {
    const { address, calls } = await controller(t, c.answers);
    const registering = link(t, address).register(c.attempts);
    if (c.fails === undefined) await t.notThrowsAsync(registering);
    else t.is((await t.throwsAsync(registering, { instanceOf: SatchelError }))?.code, c.fails);
    t.is(calls.length, c.calls);
    // Each wait is at least half its ceiling (200 ms, doubling): jittered, never none.
    for (let i = 1; i < calls.length; i++) {
      const floor = Math.min(REGISTER_RETRY.capMs, REGISTER_RETRY.baseMs * 2 ** (i - 1)) / 2;
      t.true(calls[i]! - calls[i - 1]! >= floor - 5, `wait ${i}: ${(calls[i]! - calls[i - 1]!).toFixed(0)} ms, at least ${floor}`);
    }
  });
}

test('registration: nothing listening yet, then a controller on the address: registered once it is up', async (t) => {
  // A port that was free a moment ago: the first calls find nothing there (UNAVAILABLE).
  const probe = new grpc.Server();
  const port = Number((await bindServer(probe, '127.0.0.1', 0)).split(':')[1]);
  await new Promise<void>((resolve) => probe.tryShutdown(() => resolve()));
  const registering = link(t, `127.0.0.1:${port}`).register(20);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const calls: number[] = [];
  const server = new grpc.Server();
  addService(
    server,
    CONTROLLER_SERVICE,
    {
      RegisterNode: async () => {
        calls.push(1);
        return { nodeId: node.id, leaseMs: 0 };
      },
    } as unknown as ServiceImpl<ControllerMethods>,
    () => {},
  );
  await bindServer(server, '127.0.0.1', port);
  t.teardown(() => void server.forceShutdown());
  await t.notThrowsAsync(registering);
  t.is(calls.length, 1);
});

test("each report's JobUsage carries the job's own requests: ops, bytes in and out, service time", async (t) => {
  const reports: NodeReport[] = [];
  const grpcServer = new grpc.Server();
  addService(
    grpcServer,
    CONTROLLER_SERVICE,
    {
      ReportNode: async (report: NodeReport) => {
        reports.push(report);
        return { unknown: false, leaseMs: 0 };
      },
    } as unknown as ServiceImpl<ControllerMethods>,
    () => {},
  );
  const address = await bindServer(grpcServer, '127.0.0.1', 0);
  t.teardown(() => void grpcServer.forceShutdown());
  const server = new StorageServer({ id: node.id, engine: new DramEngine(1024 * 1024), secret, logger });
  const dataAddress = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  const c = connect(t, dataAddress, signToken(secret, 'job-a'));
  t.is((await c.request({ op: Op.PUT, epoch: 1, key: 'k', value: Buffer.alloc(100) })).status, Status.OK);
  t.is((await c.request({ op: Op.GET, epoch: 1, key: 'k' })).status, Status.OK);
  const reporting = new ControllerLink({ controller: address, secret, logger, node, reportEveryMs: 50 });
  t.teardown(() => reporting.close());
  reporting.attach(server);
  reporting.startReporting();
  await eventually(() => reports.length > 0, 5_000, 'a report');
  const usage = reports[0]!.jobs.find((j) => j.jobId === 'job-a');
  t.like(usage, { ops: 2, bytesIn: 2 * HEADER_SIZE + 2 + 100, bytesOut: 2 * HEADER_SIZE + 100 });
  t.true((usage?.serviceUs ?? 0) > 0);
});

test("a report carries the process's CPU, unless the node shares its process (reportCpu: false)", async (t) => {
  const reports: NodeReport[] = [];
  const grpcServer = new grpc.Server();
  const impl = {
    ReportNode: async (report: NodeReport) => {
      reports.push(report);
      return { unknown: false, leaseMs: 0 };
    },
  };
  addService(grpcServer, CONTROLLER_SERVICE, impl as unknown as ServiceImpl<ControllerMethods>, () => {});
  const address = await bindServer(grpcServer, '127.0.0.1', 0);
  t.teardown(() => void grpcServer.forceShutdown());
  const server = new StorageServer({ id: node.id, engine: new DramEngine(1024 * 1024), secret, logger });
  const cpuOf = async (reportCpu: boolean | undefined) => {
    reports.length = 0;
    const reporting = new ControllerLink({ controller: address, secret, logger, node, reportEveryMs: 200, reportCpu });
    t.teardown(() => reporting.close());
    reporting.attach(server);
    reporting.startReporting();
    const before = process.cpuUsage();
    // Busy until this process has used 120 ms of CPU (CPU time, not wall time: a loaded machine shares the core).
    while (process.cpuUsage(before).user < 120_000);
    await eventually(() => reports.length > 0, 5_000, 'a report');
    reporting.close();
    return reports[0]!.cpu;
  };
  t.true((await cpuOf(undefined)) > 0.05, 'a busy process reports its CPU');
  t.is(await cpuOf(false), 0, 'a node sharing its process reports none');
});
