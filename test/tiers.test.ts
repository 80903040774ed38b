// Jobs land on the tier their hints ask for, and a DRAM job that outgrows DRAM spills onto SSD.
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';
import { pattern } from './helpers/assert.ts';

const MiB = 1024 * 1024;

test('hints place jobs on DRAM, SSD and HDD; each tier stores and serves; DRAM spills onto SSD when full', async (t) => {
  const cluster = await LocalCluster.start({
    dram: 1,
    ssd: 1,
    hdd: 1,
    dramCapacity: 8 * MiB,
    ssdCapacity: 256 * MiB,
    hddCapacity: 256 * MiB,
  });
  t.teardown(() => cluster.stop());
  const satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
  t.teardown(() => satchel.close());
  const tierOf = async (id: string) =>
    (
      (await (
        await fetch(`${cluster.info.console}/api/jobs/${id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
      ).json()) as { tier: string; reason: string }
    ).tier;
  const hints = {
    dram: { latencySensitive: true, capacity: 4 * MiB },
    ssd: { latencySensitive: false, capacity: 32 * MiB, peakThroughput: 100 * MiB },
    hdd: { capacity: 200 * MiB, peakThroughput: 100_000 }, // within what the cluster holds: more is refused
  };
  for (const [tier, hint] of Object.entries(hints)) {
    const job = await satchel.registerJob(`on-${tier}`, hint);
    t.teardown(() => job.deregister().catch(() => {}));
    t.is(await tierOf(job.id), tier);
    const big = pattern(3 * MiB + 5, 7); // blocks, and large values in the disk engines' segment files
    await job.put('small', 'tiny');
    await job.put('big', big);
    t.is((await job.get('small'))?.toString(), 'tiny', tier);
    t.true((await job.get('big'))?.equals(big), tier);
  }

  // 12 MB into a job whose DRAM node holds 8 MiB: it grows onto the SSD node and every key stays readable.
  const spilling = await satchel.registerJob('spilling', hints.dram);
  t.teardown(() => spilling.deregister().catch(() => {}));
  for (let i = 0; i < 120; i++) await spilling.put(`k${i}`, pattern(100_000, i));
  for (let i = 0; i < 120; i++) t.true((await spilling.get(`k${i}`))?.equals(pattern(100_000, i)), `k${i}`);
  const detail = (await (
    await fetch(`${cluster.info.console}/api/jobs/${spilling.id}`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
  ).json()) as {
    placement: { generations: { nodes: { id: string }[] }[] };
  };
  const tiers = new Set(
    detail.placement.generations.flatMap((g) => g.nodes.map((n) => cluster.info.nodes.find((x) => x.id === n.id)?.tier)),
  );
  t.true(tiers.has('dram') && tiers.has('ssd'), `tiers: ${[...tiers].join(', ')}`);
});
