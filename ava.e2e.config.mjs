// `npm run test:e2e`: whole clusters (test/), and the part tests that start processes or tools or take long
// (ava.unit.config.mjs's E2E_ONLY). The one-minute nemesis runs after it on its own (ava.nemesis.config.mjs).
import { fileURLToPath } from 'node:url';
import { E2E_ONLY } from './ava.unit.config.mjs';

export default {
  files: ['test/**/*.test.ts', '!test/nemesis.test.ts', ...E2E_ONLY],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  // Clusters' processes and the CLIs the tests run start from dist/ (built just before), not through tsx: ~0.75 s
  // of CPU less per process (deploy/child-process.ts, test/helpers/process.ts). Run this config through
  // `npm run test:e2e`, which builds first; `npx ava test/x.test.ts` (package.json's config) runs the sources.
  environmentVariables: { SATCHEL_ROLE_CLI: fileURLToPath(new URL('./dist/deploy/cli.js', import.meta.url)) },
  workerThreads: false,
  timeout: '60s',
  concurrency: 2,
};
