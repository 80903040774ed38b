// The one-minute nemesis (test/nemesis.test.ts) runs on its own after the other tests (`npm test`): it keeps
// both cores of a small machine busy, and clusters other tests started beside it took longer to come up than
// those tests allow (CI, 2026-12-03). The main config in package.json leaves it out.
import { fileURLToPath } from 'node:url';

export default {
  files: ['test/nemesis.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  // Clusters' processes and the CLIs the tests run start from dist/ (built just before), not through tsx: ~0.75 s
  // of CPU less per process (deploy/child-process.ts, test/helpers/process.ts).
  environmentVariables: { SATCHEL_ROLE_CLI: fileURLToPath(new URL('./dist/deploy/cli.js', import.meta.url)) },
  workerThreads: false,
  timeout: '60s',
};
