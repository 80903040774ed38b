// `npm run test:unit`: the tests beside the code that need no process, no system tool and no whole cluster —
// under 30 s on a 2-core machine. .ci/no-processes.mjs (through .ci/unit-worker.mjs) makes starting a process an error here, so a test that
// needs one fails loudly and belongs in E2E_ONLY (run by `npm run test:e2e`, ava.e2e.config.mjs, with test/).
export const PARTS = ['proto', 'client', 'controller', 'metadata', 'storage-node', 'deploy', 'perf'];

/**
 * Part tests that run in the e2e tier: they start processes or tools (promtool, tsc, kubeconform, npm), start
 * real servers, or take more than a few seconds (fuzzers, limits under load). What stays is the logic alone:
 * codecs, placement maths, engines, the client against the fake node, the checker.
 */
export const E2E_ONLY = [
  'proto/decoder-fuzz.test.ts', // 1,000,000 frames: ~10 s
  'proto/resp-parser-fuzz.test.ts', // 1,000,000 RESP inputs against the model: ~10 s
  'client/job.test.ts', // an in-process cluster per test: ~10 s
  'client/replication.test.ts', // nodes lost and restored: ~10 s
  'client/typings.test.ts', // runs tsc over the published typings
  'metadata/metrics.test.ts', // promtool
  'storage-node/metrics.test.ts', // promtool
  'storage-node/fuzz.test.ts', // frames over TCP against running nodes: ~15 s
  'storage-node/limits.test.ts', // limits under load: ~15 s
  'storage-node/output-limits.test.ts', // a child process measures RSS
  'storage-node/engine-conformance.test.ts', // every engine through the suite, the HDD emulated: ~7 s
  'perf/soak-driven.test.ts', // forks the soak's baseline process
  'deploy/kubernetes/manifests.test.ts', // kubeconform / the YAML against a schema
  'perf/coldstart.test.ts', // npm pack and install
  'perf/resp.test.ts', // redis-server, redis-benchmark and a cluster
  // Whole-process memory and collections: worker threads share one process, so other files' allocations blur them.
  'storage-node/heap-trim.test.ts',
  'storage-node/idle-gc.test.ts',
  // Real servers started in-process (storage nodes, a controller, metadata servers): seconds each.
  'client/edges.test.ts',
  'client/coordination.test.ts',
  'controller/server.test.ts',
  'controller/copies.test.ts',
  'controller/metadata-shards.test.ts',
  'controller/console-backend.test.ts',
  'metadata/server.test.ts',
  'storage-node/server.test.ts',
  'storage-node/announcements.test.ts',
  'storage-node/small-values.test.ts',
  'storage-node/disk/disk-engine.test.ts',
  'deploy/kubernetes-provisioner.test.ts',
];

export default {
  files: [...PARTS.map((part) => `${part}/**/*.test.ts`), ...E2E_ONLY.map((file) => `!${file}`)],
  extensions: { ts: 'module' },
  // Worker threads, not processes: a test file costs ~1 s less to start, which is most of this tier's time
  // (25 s against 55 s on 2 cores). Each thread registers tsx itself (.ci/unit-worker.mjs).
  require: ['./.ci/unit-worker.mjs'],
  workerThreads: true,
  timeout: '30s',
  concurrency: 4,
};
