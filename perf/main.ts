/**
 * `satchel bench …`: bin/satchel.js sends the `bench` command here and every other one to deploy/cli.ts, so
 * neither part imports the other's command (perf uses deploy's LocalCluster; deploy never imports perf).
 * A bad flag exits 2 with the usage, as deploy's commands do.
 */
import { USAGE } from '../deploy/index.ts';
import { SatchelError } from '../proto/index.ts';
import { runBench } from './cli.ts';

runBench(process.argv.slice(3)).catch((error: unknown) => {
  if (error instanceof SatchelError && error.code === 'BAD_REQUEST') {
    process.stderr.write(`satchel: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  process.stderr.write(`satchel: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
