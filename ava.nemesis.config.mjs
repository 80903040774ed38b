// The one-minute nemesis (test/nemesis.test.ts) runs on its own after the other tests (`npm test`): it keeps
// both cores of a small machine busy, and clusters other tests started beside it took longer to come up than
// those tests allow (CI, 2026-12-03). The main config in package.json leaves it out.
export default {
  files: ['test/nemesis.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '60s',
};
