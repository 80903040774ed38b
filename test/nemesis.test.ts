/**
 * The short nemesis (perf/nemesis/run.ts): a minute of faults of every kind against a whole cluster of
 * processes while clients record every operation, judged by the history checker. `satchel bench nemesis
 * --minutes 10` is the long one (perf/RESULTS.md).
 */
import test from 'ava';
import { DEFAULT_SCHEDULE, runNemesis } from '../perf/index.ts';

test('a minute of restarts, freezes, partitions, drains and controller kills: no acknowledged write lost, null, stale or wrong; counters exact', async (t) => {
  t.timeout(300_000);
  const result = await runNemesis({ seconds: 60, processes: 2, lanes: 6, onProgress: (line) => t.log(line) });
  const { summary } = result.report;
  for (const replicas of ['1', '2', '3'] as const) {
    const s = summary.byReplicas[replicas];
    t.log(
      `replicas ${replicas}: ${s.ops} ops, availability ${((s.availability ?? 0) * 100).toFixed(2)} %, errors ${JSON.stringify(s.errors)}, final reads unread ${s.finalUnread}/${s.finalReads}`,
    );
    t.true(s.ops > 1_000, `replicas ${replicas} did work`);
    t.is(s.null, 0, `replicas ${replicas}: no acknowledged key read as null`);
    t.is(s.stale, 0, `replicas ${replicas}: no stale read`);
    t.is(s.wrong, 0, `replicas ${replicas}: no wrong value`);
    t.is(s.lost, 0, `replicas ${replicas}: every acknowledged write read back at the end`);
    t.is(s.countersOff, 0, `replicas ${replicas}: counters exact`);
    // With one copy, keys of a restarted node fail with UNAVAILABLE, nothing else.
    if (replicas === '1')
      t.is(
        s.otherFailures,
        Object.entries(s.errors)
          .filter(([code]) => code === 'TIMEOUT')
          .reduce((n, [, c]) => n + c, 0),
      );
    else t.true((s.availability ?? 0) > 0.99, `replicas ${replicas}: available through every fault`);
  }
  t.is(summary.malformed, 0);
  for (const kind of DEFAULT_SCHEDULE) t.true((result.faults[kind] ?? 0) >= 1, `a ${kind} fault`);
  t.true((result.faults.controller ?? 0) >= 1, 'the controller killed while copies were made');
});
