import test from 'ava';
import { describeRestartId, metadataIndexOf, nextRestartDelay, ProcessRestarts, type RestartEvent } from './process-restarts.ts';

test('restart waits: 1 s first, doubling while the process dies within a minute of its start, at most 60 s; a minute lived starts over', (t) => {
  const now = 1_000_000;
  t.is(nextRestartDelay(undefined, undefined, now), 1_000, 'the first restart');
  t.is(nextRestartDelay(1_000, now - 5_000, now), 2_000, 'died 5 s after its restart');
  t.is(nextRestartDelay(32_000, now - 100, now), 60_000, 'capped');
  t.is(nextRestartDelay(60_000, now - 100, now), 60_000);
  t.is(nextRestartDelay(60_000, now - 60_000, now), 1_000, 'lived a minute');
});

test('a failed start is tried again, the wait doubling; an unwanted one is not', async (t) => {
  const events: RestartEvent[] = [];
  let attempts = 0;
  let wanted = true;
  const restarts = new ProcessRestarts((event) => events.push(event));
  const start = async () => {
    attempts++;
    if (attempts < 2) throw new Error('port 7000 in use');
  };
  // A node that lived long: 1 s, then the failed start's retry 2 s later.
  restarts.exited('n', 0, () => wanted, start);
  await new Promise((resolve) => setTimeout(resolve, 3_400));
  t.is(attempts, 2);
  t.like(events[0], { id: 'n', afterMs: 1_000, retryMs: 2_000 });
  t.regex(events[0]!.error!.message, /in use/);
  t.like(events[1], { id: 'n', afterMs: 2_000, error: undefined });
  // Unwanted by the time its wait is over (stopped on purpose): not started.
  wanted = false;
  restarts.exited('m', 0, () => wanted, start);
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  t.is(attempts, 2);
});

test('restart ids: the controller, a metadata server by its index, anything else a storage node', (t) => {
  t.is(describeRestartId('controller'), 'the controller');
  t.is(describeRestartId('metadata-0'), 'metadata server 0');
  t.is(describeRestartId('metadata-12'), 'metadata server 12');
  t.is(metadataIndexOf('metadata-3'), 3);
  t.is(metadataIndexOf('metadata-x'), null);
  t.is(metadataIndexOf('dram-1a2b3c'), null);
  t.is(describeRestartId('dram-1a2b3c'), 'storage node dram-1a2b3c');
});
