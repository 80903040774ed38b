// `npm run test:e2e`: whole clusters (test/), and the part tests that start processes or tools or take long
// (ava.unit.config.mjs's E2E_ONLY). The one-minute nemesis runs after it on its own (ava.nemesis.config.mjs).
import { E2E_ONLY } from './ava.unit.config.mjs';

export default {
  files: ['test/**/*.test.ts', '!test/nemesis.test.ts', ...E2E_ONLY],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  timeout: '60s',
  concurrency: 2,
};
