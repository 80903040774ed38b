/**
 * `satchel bench resp --quick` as a user runs it: redis-benchmark against a one-node redis-server cluster and a
 * one-node Satchel cluster, the JSON's shape, both systems answering, nothing left behind. Never timings.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runTs } from '../test/helpers/process.ts';
import { parseCsv, type RespReport } from './resp.ts';

const CLI = 'perf/main.ts'; // satchel bench: bin/satchel.js sends it there

const leftovers = async () => (await readdir(tmpdir())).filter((name) => name.startsWith('satchel-bench-resp-'));

test('bench resp --quick --floor: redis-benchmark against redis-server, Satchel and the bare Node server, all answering, in one JSON', async (t) => {
  t.timeout(60_000);
  const dir = await mkdtemp(join(tmpdir(), 'satchel-resp-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const before = await leftovers();
  const json = join(dir, 'resp.json');
  const result = await runTs(CLI, ['bench', 'resp', '--quick', '-n', '1000', '--floor', '--json', json], { timeoutMs: 50_000 });
  t.is(result.code, 0, result.stderr);
  const report = JSON.parse(await readFile(json, 'utf8')) as RespReport;
  t.is(report.benchmark, 'resp');
  t.false(Number.isNaN(Date.parse(report.date)));
  t.is(report.command, 'satchel bench resp --quick -n 1000 --floor --json ' + json);
  t.true((report.machine as { cpus: number }).cpus > 0);
  t.like(report.options, { requests: 1000, pipeline: 16, valueBytes: 1024, nodes: 1, rounds: 1, cluster_mode: false, floor: true });
  t.regex(report.versions.redis_server, /^Redis server v=/);
  t.not(report.floor, null);
  for (const system of [report.redis, report.satchel, report.floor!]) {
    t.is(system.rounds.length, 1);
    const round = system.rounds[0]!;
    for (const row of [round.set, round.get, round.latency_get]) t.true(row.rps > 0 && row.p50_ms >= 0 && row.p99_ms >= row.p50_ms);
    t.true(system.set_rps > 0 && system.get_rps > 0 && system.get_p50_ms >= 0);
    t.true(system.keys >= 1, 'the SETs were stored');
    t.is(system.commands.length, 2);
    // Read from /proc (whole 10 ms ticks: a quick run's may round to 0).
    for (const us of [round.cpu_us_per_request.throughput, round.cpu_us_per_request.latency, system.cpu_us_per_request.throughput])
      t.true(us !== null && us >= 0, 'server CPU per request');
  }
  t.regex(report.satchel.commands[0]!, /--user job-[0-9a-f]{12} -a … -t set,get -P 16 -c 8 -d 1024 -n 1000 --csv$/);
  t.false(JSON.stringify(report).includes('v2.'), 'no token in the report');
  for (const key of ['set_rps', 'get_rps', 'get_p50'] as const) t.true(report.ratios[key] > 0 && report.floor_ratios![key] > 0, key);
  t.deepEqual(Object.keys(report.targets).sort(), ['get_p50_le_1_1x', 'get_rps_ge_0_8x', 'set_rps_ge_0_8x']);
  t.regex(result.stdout, /^satchel\/redis /m);
  t.regex(result.stdout, /^floor \(bare Node\) +[\d,]+ /m);
  t.regex(result.stdout, /^floor\/redis /m);
  t.regex(result.stdout, /^server CPU per request, µs .*: redis-server [\d.]+, [\d.]+; satchel [\d.]+, [\d.]+; floor [\d.]+, [\d.]+$/m);
  t.regex(result.stdout, /targets \(issue 18\): SET ≥ 0\.8×: (ok|MISSED); GET ≥ 0\.8×: (ok|MISSED); GET p50 ≤ 1\.1×: (ok|MISSED)/);
  t.deepEqual(await leftovers(), before, 'the redis cluster’s folder is removed');
});

test('bench resp refuses bad flags with a usage error', async (t) => {
  const nodes = await runTs(CLI, ['bench', 'resp', '--nodes', '0']);
  t.is(nodes.code, 2);
  t.regex(nodes.stderr, /--nodes: expected a whole number from 1 to 8/);
  const unknown = await runTs(CLI, ['bench', 'resp', '--pipeline', '4']);
  t.is(unknown.code, 2);
  const floor = await runTs(CLI, ['bench', 'resp', '--floor', '--nodes', '2']);
  t.is(floor.code, 2);
  t.regex(floor.stderr, /--floor: one node only/);
});

test("redis-benchmark's --csv rows by test", (t) => {
  const rows = parseCsv(
    [
      '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"',
      '"SET","131578.95","5.830","0.592","5.335","9.903","17.663","230.143"',
      '"GET","208550.58","3.567","0.440","2.807","8.415","15.135","28.639"',
      'WARNING: Could not fetch server CONFIG',
    ].join('\n'),
  );
  t.deepEqual(Object.keys(rows), ['SET', 'GET']);
  t.deepEqual(rows.GET, { rps: 208550.58, avg_ms: 3.567, p50_ms: 2.807, p95_ms: 8.415, p99_ms: 15.135, max_ms: 28.639 });
});
