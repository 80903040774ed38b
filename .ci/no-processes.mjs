// Loaded into every worker of `npm run test:unit` (ava.unit.config.mjs): a unit test may not start a process or
// need a tool from the system, so any attempt to is an error naming the test's file, and the test belongs in
// the e2e tier instead.
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

for (const name of ['spawn', 'spawnSync', 'fork', 'exec', 'execSync', 'execFile', 'execFileSync']) {
  childProcess[name] = () => {
    throw new Error(`a unit test started a process (child_process.${name}): move the test to the e2e tier (ava.unit.config.mjs)`);
  };
}
// ESM importers (`import { spawn } from 'node:child_process'`) see the replaced functions too.
syncBuiltinESMExports();
