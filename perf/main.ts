/**
 * `satchel bench …`: bin/satchel.js sends the `bench` command here and every other one to deploy/cli.ts, so
 * neither part imports the other's command (perf uses deploy's LocalCluster; deploy never imports perf).
 * A bad flag exits 2 with the usage, as deploy's commands do.
 */
import { stopLocalClusters, USAGE } from '../deploy/index.ts';
import { SatchelError } from '../proto/index.ts';
import { runBench } from './cli.ts';

/** A stop that hangs (a child that ignores SIGTERM is killed after 5 s each) does not keep an interrupted bench. */
const INTERRUPT_GRACE_MS = 30_000;

// Interrupted (Ctrl-C, or SIGTERM from a CI runner): the clusters the bench started are stopped and their folders
// removed before it exits; before, their state folders stayed in the temp dir. A second Ctrl-C exits at once.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nsatchel: ${signal}: stopping the clusters this benchmark started\n`);
    const code = signal === 'SIGINT' ? 130 : 143;
    setTimeout(() => process.exit(code), INTERRUPT_GRACE_MS).unref();
    void stopLocalClusters().finally(() => process.exit(code));
  });
}

runBench(process.argv.slice(3)).catch((error: unknown) => {
  if (error instanceof SatchelError && error.code === 'BAD_REQUEST') {
    process.stderr.write(`satchel: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  process.stderr.write(`satchel: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
