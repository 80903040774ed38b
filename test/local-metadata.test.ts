/**
 * `satchel up --metadata 3`: a LocalCluster with three metadata servers, each job's placement on two of them
 * (the controller's `--metadata-copies`), the ticket naming those two; a function attaching while one of them is
 * killed and restarted still finds the job, and the restarted server is refilled.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { type ClusterInfoFile, LocalCluster } from '../deploy/index.ts';
import { ControlClient, METADATA_SERVICE } from '../proto/grpc.ts';
import { decodeTicket, encodeTicket, type MetadataMethods } from '../proto/index.ts';
import { eventually } from './helpers/raw-client.ts';

test('three metadata servers, two copies per job: the ticket names them, an attach rides out one killed and restarted', async (t) => {
  t.timeout(60_000);
  const cluster = await LocalCluster.start({ dram: 1, ssd: 0, hdd: 0, metadata: 3, metadataCopies: 2 });
  t.teardown(() => cluster.stop());
  const file = JSON.parse(readFileSync(join(cluster.stateDir, 'cluster.json'), 'utf8')) as ClusterInfoFile;
  t.is(new Set(file.metadata).size, 3, 'cluster.json lists three metadata servers');
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const job = await satchel.registerJob('sharded', { capacity: 1 << 20 });
  t.teardown(() => job.deregister().catch(() => {}));
  await job.put('k', Buffer.from('v'));
  const ticket = decodeTicket(job.ticket);
  t.is(ticket.metadata.length, 2);
  t.true(ticket.metadata.every((m) => file.metadata.includes(m)));

  // The job's first server killed: a function whose ticket has no placement looks it up at the second.
  const first = file.metadata.indexOf(ticket.metadata[0]!);
  const bare = encodeTicket({ ...ticket, placement: undefined });
  process.kill(cluster.metadataPids[first]!, 'SIGKILL');
  const during = await Satchel.attach(bare);
  t.teardown(() => during.close());
  t.deepEqual(await during.get('k'), Buffer.from('v'));

  // Back on its port (restartMetadata restarts a process killed by PID), it is refilled with the job.
  await cluster.restartMetadata('SIGKILL', first);
  t.is(cluster.info.metadata[first], ticket.metadata[0], 'the same address');
  const client = new ControlClient<MetadataMethods>(METADATA_SERVICE, ticket.metadata[0]!);
  t.teardown(() => client.close());
  await eventually(
    () =>
      client.call('GetPlacement', { jobId: ticket.job, token: ticket.token }).then(
        (p) => p.epoch >= 1,
        () => false,
      ),
    20_000,
    'the restarted server holds the job',
  );
  const after = await Satchel.attach(bare);
  t.teardown(() => after.close());
  t.deepEqual(await after.get('k'), Buffer.from('v'));
});
