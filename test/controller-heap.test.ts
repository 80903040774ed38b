/**
 * `controllerHeap: 'large'` (`satchel up --controller-heap large`): the controller runs with V8's own heap
 * sizing, the metadata servers still with the control plane's `--optimize-for-size` (deploy/child-process.ts).
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { LocalCluster } from '../deploy/index.ts';

const flagsOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

test("controllerHeap 'large': the controller without --optimize-for-size, the metadata server with it", async (t) => {
  const cluster = await LocalCluster.start({ dram: 0, controllerPort: 0, consolePort: 0, controllerHeap: 'large' });
  t.teardown(() => cluster.stop());
  const controller = flagsOf(cluster.controllerPid);
  t.false(controller.includes('--optimize-for-size'), controller.join(' '));
  t.true(controller.includes('--single-threaded-gc'));
  t.true(flagsOf(cluster.metadataPid).includes('--optimize-for-size'));
});
