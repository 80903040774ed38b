/**
 * Metadata sharded by job (issue 20): each job's placement on two of three metadata servers, the ones its ticket
 * names; changes and deregistration reach those two; a handle whose first server is down asks the second; a
 * server back on its address gets its jobs' placements again.
 */
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { pino } from 'pino';
import { type RegisteredJob, Satchel } from '../client/index.ts';
import { MetadataServer } from '../metadata/index.ts';
import { ControlClient, METADATA_SERVICE } from '../proto/grpc.ts';
import { decodeTicket, encodeTicket, type MetadataMethods, SatchelError } from '../proto/index.ts';
import { startStorageNode } from '../storage-node/index.ts';
import { Controller } from './server.ts';
import { defaultTenantKey } from './tenants.ts';

const logger = pino({ level: 'silent' });

/** The job's placement epoch at `address`, or the error code it answered. */
async function lookup(address: string, jobId: string, token: string): Promise<number | string> {
  const client = new ControlClient<MetadataMethods>(METADATA_SERVICE, address);
  try {
    return (await client.call('GetPlacement', { jobId, token })).epoch;
  } catch (error) {
    if (error instanceof SatchelError) return error.code;
    throw error;
  } finally {
    client.close();
  }
}

/** A controller, three metadata servers (by address), one DRAM node and a connected Satchel, all torn down after. */
async function startCluster(t: import('ava').ExecutionContext) {
  const secret = randomBytes(32);
  const controller = new Controller({ secret, logger });
  const address = await controller.listen(0, '127.0.0.1');
  t.teardown(() => controller.close());
  const servers = new Map<string, MetadataServer>();
  for (let i = 0; i < 3; i++) {
    const server = new MetadataServer({ secret, logger, controller: address });
    servers.set(await server.listen(0, '127.0.0.1'), server);
  }
  t.teardown(() => Promise.all([...servers.values()].map((s) => s.close())));
  const node = await startStorageNode({ tier: 'dram', capacity: 1 << 26, secret, logger, controller: address });
  t.teardown(() => node.close());
  while (controller.metadataAddresses.length < 3) await new Promise((resolve) => setTimeout(resolve, 20));
  const satchel = await Satchel.connect(address, { key: defaultTenantKey(secret) });
  t.teardown(() => satchel.close());
  return { secret, address, servers, satchel };
}

test('each job on two of three metadata servers: the ticket names them, they alone hold it, a handle fails over, a restarted server gets its jobs back', async (t) => {
  t.timeout(60_000);
  const { secret, address, servers, satchel } = await startCluster(t);

  const jobs: RegisteredJob[] = [];
  for (let i = 0; i < 12; i++) jobs.push(await satchel.registerJob(`shard-${i}`, { capacity: 1 << 20 }));
  t.teardown(() => Promise.all(jobs.map((job) => job.deregister().catch(() => {}))));
  const owned = new Map<string, number>([...servers.keys()].map((a) => [a, 0]));
  for (const job of jobs) {
    const ticket = decodeTicket(job.ticket);
    t.is(ticket.metadata.length, 2, 'two copies');
    for (const [server] of servers) {
      const answer = await lookup(server, ticket.job, ticket.token);
      if (ticket.metadata.includes(server)) {
        t.is(answer, 1, `${server} holds ${ticket.job}`);
        owned.set(server, owned.get(server)! + 1);
      } else t.is(answer, 'NO_SUCH_JOB', `${server} does not hold ${ticket.job}`);
    }
  }
  t.true(
    [...owned.values()].every((n) => n > 0),
    `every server holds some jobs: ${[...owned.values()]}`,
  );

  // A handle with no placement in its ticket looks it up: its first server down, it asks the second.
  const first = jobs[0]!;
  const ticket = decodeTicket(first.ticket);
  const [down, other] = ticket.metadata as [string, string];
  await servers.get(down)!.close();
  servers.delete(down);
  const handle = await Satchel.attach(encodeTicket({ ...ticket, placement: undefined }));
  t.teardown(() => handle.close());
  await handle.put('k', Buffer.from('v'));
  t.deepEqual(await handle.get('k'), Buffer.from('v'));
  t.is(await lookup(other, ticket.job, ticket.token), 1);

  // Back on its address with nothing: the controller sends it the placements it holds, no others.
  const restarted = new MetadataServer({ secret, logger, controller: address });
  servers.set(await restarted.listen(Number(down.split(':')[1]), '127.0.0.1'), restarted);
  const deadline = Date.now() + 20_000;
  while ((await lookup(down, ticket.job, ticket.token)) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.is(await lookup(down, ticket.job, ticket.token), 1, 'its job again');
  for (const job of jobs) {
    const theirs = decodeTicket(job.ticket);
    if (!theirs.metadata.includes(down)) t.is(await lookup(down, theirs.job, theirs.token), 'NO_SUCH_JOB');
  }

  // Deregistered: gone from both owners.
  const last = jobs.pop()!;
  const gone = decodeTicket(last.ticket);
  await last.deregister();
  for (const server of gone.metadata) t.is(await lookup(server, gone.job, gone.token), 'NO_SUCH_JOB', `${server} dropped it`);
});

test('a dead metadata server: no registration fails for it, new jobs go to the others, and to it again once it is back', async (t) => {
  t.timeout(60_000);
  const { secret, address, servers, satchel } = await startCluster(t);

  const [dead] = [...servers.keys()] as [string];
  await servers.get(dead)!.close();
  servers.delete(dead);
  const jobs: RegisteredJob[] = [];
  t.teardown(() => Promise.all(jobs.map((job) => job.deregister().catch(() => {}))));
  // Rendezvous would give the dead server two jobs in three: each registers all the same.
  for (let i = 0; i < 12; i++) jobs.push(await satchel.registerJob(`around-${i}`, { capacity: 1 << 20 }));
  for (const job of jobs) {
    const ticket = decodeTicket(job.ticket);
    t.false(ticket.metadata.includes(dead), `${ticket.job} not given the dead server`);
    for (const server of ticket.metadata) t.is(await lookup(server, ticket.job, ticket.token), 1, `${server} holds ${ticket.job}`);
    await job.put('k', Buffer.from(ticket.job));
    t.deepEqual(await job.get('k'), Buffer.from(ticket.job));
  }

  // Back (it registers again): new jobs are given it again.
  const restarted = new MetadataServer({ secret, logger, controller: address });
  servers.set(await restarted.listen(Number(dead.split(':')[1]), '127.0.0.1'), restarted);
  const deadline = Date.now() + 20_000;
  let given = false;
  for (let i = 0; !given && Date.now() < deadline; i++) {
    const job = await satchel.registerJob(`back-${i}`, { capacity: 1 << 20 });
    jobs.push(job);
    given = decodeTicket(job.ticket).metadata.includes(dead);
  }
  t.true(given, 'a job given the server once it registered again');
});
