/**
 * `satchel bench scale` as a user runs it, small and fast: 20 simulated nodes and 200 jobs of a short CSV trace at
 * high speed, against the real controller and metadata server. Every job registers and deregisters, the autoscaler
 * removes the nodes the trace's end leaves idle, and nothing the run started is left running.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { ScaleReport } from '../perf/scale-report.ts';
import { generateTrace, traceToCsv } from '../perf/scale-trace.ts';
import { finished, runTs, spawnTs } from './helpers/process.ts';

const CLI = 'perf/main.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('bench scale registers and deregisters every job of a trace against the real controller, scales, and cleans up', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'satchel-scale-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // 200 jobs over 40 simulated seconds, each 5 to 60 s long: at speed 20 the trace lasts ~5 s.
  const jobs = generateTrace({ jobs: 200, seed: 3, spanS: 40 }).map((j, i) => ({ ...j, durationMs: 5_000 + ((i * 2_750) % 55_000) }));
  const trace = join(dir, 'trace.csv');
  await writeFile(trace, traceToCsv(jobs));
  const json = join(dir, 'scale.json');
  const html = join(dir, 'scale.html');
  const run = await runTs(
    CLI,
    [
      'bench',
      'scale',
      '--nodes',
      '20',
      '--trace',
      trace,
      '--speed',
      '20',
      '--report-ms',
      '250',
      '--sample-ms',
      '250',
      '--metadata',
      '2',
      '--lookups-per-job-s',
      '1',
      '--json',
      json,
      '--html',
      html,
    ],
    { timeoutMs: 60_000 },
  );
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(await readFile(json, 'utf8')) as ScaleReport;
  const { summary: s, details: d } = report;
  t.deepEqual(Object.keys(s).sort(), [
    'bytes_moved',
    'controller_cpu_per_report_us',
    'controller_rss_mb',
    'decision_p50_ms',
    'decision_p99_ms',
    'jobs',
    'metadata_lookups_per_s',
    'migrations',
    'node_seconds_vs_peak',
    'nodes',
    'report_rate_per_s',
    'reserved_over_used',
  ]);
  t.is(s.nodes, 20);
  t.is(s.jobs, 200);
  t.is(d.registered, 200, JSON.stringify(d.failures));
  t.is(d.deregistered, 200);
  t.is(d.refused, 0);
  t.true(s.decision_p50_ms > 0 && s.decision_p50_ms <= s.decision_p99_ms);
  t.is(d.controller_decisions_logged, 200, 'the controller timed every registration in its log');
  t.true((d.controller_decision_p99_ms ?? 0) > 0);
  t.true(s.report_rate_per_s > 10, `reports/s ${s.report_rate_per_s}`);
  t.true(s.controller_cpu_per_report_us > 0);
  t.true(s.controller_rss_mb > 10 && s.controller_rss_mb < 1024);
  t.true(s.reserved_over_used > 0, 'reserved and used were sampled');
  t.true(s.metadata_lookups_per_s > 0);
  // Two metadata servers, each the first named by some jobs' tickets: each answered lookups.
  const byServer = Object.values(d.lookups_by_server ?? {});
  t.is(byServer.length, 2);
  t.true(
    byServer.every((n) => n > 0),
    `lookups by server: ${byServer}`,
  );
  t.is(
    byServer.reduce((a, b) => a + b, 0),
    d.lookups,
  );
  // The trace ends with every job gone: the autoscaler drains idle nodes, so fewer node-seconds than a peak-sized cluster.
  t.true(d.nodes_removed > 0, 'the autoscaler removed nodes');
  t.true(s.node_seconds_vs_peak > 0 && s.node_seconds_vs_peak < 1);
  t.true(report.samples.length > 5);
  t.true(report.events.some((e) => e.kind === 'drain-finished'));
  t.true(s.migrations >= 0 && s.bytes_moved >= 0);
  const page = await readFile(html, 'utf8');
  for (const id of ['nodes', 'capacity', 'latency', 'migrations']) t.true(page.includes(`id="${id}"`), id);
  // The controller and the metadata servers the run started are gone.
  t.is(report.processes.length, 3);
  for (const pid of report.processes) t.false(alive(pid), `process ${pid} outlived the run`);
});

test('bench scale interrupted (SIGINT to it alone): it stops what it started and removes its folder, exit 130', async (t) => {
  // Its temp dir (os.tmpdir() follows TMPDIR) is the test's, so what it leaves there is seen.
  const dir = await mkdtemp(join(tmpdir(), 'satchel-scale-int-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const child = spawnTs(CLI, ['bench', 'scale', '--nodes', '5', '--jobs', '5000', '--calibrate-s', '0'], { TMPDIR: dir });
  const exit = finished(child, 60_000);
  const lockOf = async (): Promise<{ children: { pid: number }[] } | null> => {
    const made = (await readdir(dir)).find((name) => name.startsWith('satchel-'));
    if (made === undefined) return null;
    return JSON.parse(await readFile(join(dir, made, 'satchel.lock'), 'utf8').catch(() => 'null'));
  };
  let lock: { children: { pid: number }[] } | null = null;
  // The lock's first record names no children yet (CI once read it so: `children` undefined).
  for (let i = 0; i < 300 && (lock?.children?.length ?? 0) < 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    lock = await lockOf().catch(() => null);
  }
  t.true((lock?.children?.length ?? 0) >= 2, 'the controller and the metadata server started');
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  child.kill('SIGINT');
  const run = await exit;
  t.is(run.code, 130, run.stderr);
  t.regex(run.stderr, /SIGINT: stopping the clusters this benchmark started/);
  t.deepEqual(
    (await readdir(dir)).filter((name) => name.startsWith('satchel-')),
    [],
    'its state folder removed',
  );
  for (const { pid } of lock?.children ?? []) t.false(alive(pid), `process ${pid} outlived the bench`);
});
