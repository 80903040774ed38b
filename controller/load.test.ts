import test from 'ava';
import type { ControllerContext } from './context.ts';
import { targetNodes } from './load.ts';
import { ClusterRegistry, type JobRecord } from './registry.ts';

/** A context with `nodes` registered (tier, and CPU from their last report) and nothing else. */
function contextOf(nodes: { id: string; tier: string; cpu: number }[]): ControllerContext {
  const registry = new ClusterRegistry();
  for (const { id, tier } of nodes) {
    registry.nodes.set(id, { id, tier, address: `127.0.0.1:${id.length}`, capacity: 1e9, bandwidth: 1e9, registeredAt: 0 });
  }
  const stats = new Map(nodes.map((n) => [n.id, { cpu: n.cpu, bytesInPerSec: 0, bytesOutPerSec: 0 }]));
  return { registry, stats, options: {} } as unknown as ControllerContext;
}

test('targetNodes leaves out a hot node while its tier has a cool one, and keeps a tier whose nodes are all hot', (t) => {
  const ctx = contextOf([
    { id: 'dram-hot', tier: 'dram', cpu: 0.95 },
    { id: 'dram-cool', tier: 'dram', cpu: 0.2 },
    { id: 'ssd-hot-1', tier: 'ssd', cpu: 0.99 },
    { id: 'ssd-hot-2', tier: 'ssd', cpu: 0.9 },
    { id: 'hdd-cool', tier: 'hdd', cpu: 0 },
  ]);
  t.deepEqual(
    targetNodes(ctx).map((n) => n.id),
    ['dram-cool', 'ssd-hot-1', 'ssd-hot-2', 'hdd-cool'],
  );
  ctx.registry.nodes.get('dram-cool')!.draining = true;
  t.deepEqual(
    targetNodes(ctx).map((n) => n.id),
    ['dram-hot', 'ssd-hot-1', 'ssd-hot-2', 'hdd-cool'],
    'a draining node is no cool node to prefer',
  );
});

test('placeableNodes: every node but the draining and the lost, with the bytes reserved on it', (t) => {
  const ctx = contextOf([
    { id: 'a', tier: 'dram', cpu: 0 },
    { id: 'b', tier: 'dram', cpu: 0 },
    { id: 'c', tier: 'ssd', cpu: 0 },
  ]);
  ctx.registry.nodes.get('b')!.lost = true;
  const nodes = [
    { id: 'a', address: '127.0.0.1:1', weight: 3 },
    { id: 'b', address: '127.0.0.1:1', weight: 1 },
  ];
  const job = { id: 'job', reservation: 400, placement: { jobId: 'job', epoch: 1, generations: [{ nodes }] } };
  ctx.registry.jobs.set('job', job as unknown as JobRecord);
  t.deepEqual(ctx.registry.placeableNodes(), [
    { id: 'a', tier: 'dram', address: '127.0.0.1:1', capacity: 1e9, bandwidth: 1e9, reserved: 300 },
    { id: 'c', tier: 'ssd', address: '127.0.0.1:1', capacity: 1e9, bandwidth: 1e9, reserved: 0 },
  ]);
});
