/**
 * `bench soak`'s driven processes (the client processes and the baseline, both through soak-protocol.ts
 * `answerDriver`), run as the driver runs them: here the baseline, which needs no cluster. Forks: e2e tier.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import type { SoakWorkerConfig, ToDriver } from './soak-protocol.ts';

const FLOOR = fileURLToPath(new URL('./soak-floor.ts', import.meta.url));
const CONFIG: SoakWorkerConfig = {
  worker: 0,
  controller: '',
  key: '',
  lanes: 2,
  lanesPerJob: 1,
  jobSeconds: 1,
  invocationSeconds: 1,
  opsPerSecond: 200,
  tiers: ['dram'],
  keysPerLane: 1,
  largeFraction: 0,
  jobCapacity: 0,
};

function started(t: ExecutionContext): { child: ChildProcess; next: () => Promise<ToDriver>; exited: Promise<number | null> } {
  const child = fork(FLOOR, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv });
  t.teardown(() => child.kill('SIGKILL'));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, next: () => new Promise<ToDriver>((resolve) => child.once('message', resolve)), exited };
}

test('the baseline is ticked like a soak client: its round trips as floor, then a final on stop, and it exits', async (t) => {
  const { child, next, exited } = started(t);
  child.send({ start: CONFIG });
  t.deepEqual(await next(), { ready: true });
  await new Promise((resolve) => setTimeout(resolve, 500));
  child.send({ tick: 1 });
  const tick = await next();
  if (!('stats' in tick)) return t.fail(JSON.stringify(tick));
  t.deepEqual(Object.keys(tick.stats.ops), ['floor']);
  const samples = Object.values(tick.stats.ops.floor ?? {}).reduce((n, c) => n + c, 0);
  // 200/s for 0.5 s: about 100.
  t.true(samples >= 30 && samples <= 200, `${samples} round trips`);
  child.send({ stop: true });
  t.true('final' in (await next()));
  t.is(await exited, 0);
});

test('a driven process whose driver vanished without a stop exits instead of running its lanes for ever', async (t) => {
  const { child, next, exited } = started(t);
  child.send({ start: CONFIG });
  t.deepEqual(await next(), { ready: true });
  child.disconnect();
  const code = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running after 10 s'), 10_000))]);
  t.is(code, 1);
});
