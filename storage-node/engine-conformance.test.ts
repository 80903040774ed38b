import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DiskEngine } from './disk/disk-engine.ts';
import { DramEngine } from './dram-engine.ts';
import type { StorageEngine } from './engine.ts';
import { engineConformance } from './engine-conformance.suite.ts';

engineConformance('dram', async (capacity) => new DramEngine(capacity));

for (const tier of ['ssd', 'hdd'] as const) {
  engineConformance(
    tier,
    async (capacity) => DiskEngine.open({ tier, capacity, path: await mkdtemp(path.join(os.tmpdir(), `satchel-${tier}-`)) }),
    async (engine: StorageEngine) => rm((engine as DiskEngine).path, { recursive: true, force: true }),
  );
}
