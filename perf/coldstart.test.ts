/**
 * `satchel bench coldstart` as a user runs it, with two samples per system: the repository packed and installed
 * into an empty project, ioredis into another, a new process per first GET; the JSON's shape, and its sizes
 * against `du -sb`. Needs the npm registry (npm's cache makes a repeat quick): skipped, saying so, without it.
 */

import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { ROOT, runTs } from '../test/helpers/process.ts';
import { type ColdstartReport, SYSTEMS } from './coldstart.ts';

const run = promisify(execFile);

const CLI = 'perf/main.ts'; // satchel bench: bin/satchel.js sends it there

async function registry(): Promise<string | null> {
  try {
    await run('npm', ['ping'], { timeout: 15_000 });
    return null;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    return (e.stderr?.trim().split('\n').at(-1) ?? e.message).slice(0, 200);
  }
}

const unreachable = await registry();
const title = 'bench coldstart: install footprint and cold first GET, Satchel against ioredis, in one JSON';
if (unreachable !== null) console.log(`perf/coldstart.test.ts: skipped, the npm registry is unreachable (npm ping: ${unreachable})`);

(unreachable === null ? test : test.skip)(unreachable === null ? title : `${title} (skipped: npm registry unreachable)`, async (t) => {
  t.timeout(150_000);
  const dir = await mkdtemp(join(tmpdir(), 'satchel-coldstart-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const json = join(dir, 'coldstart.json');
  const keep = join(dir, 'projects');
  const result = await runTs(CLI, ['bench', 'coldstart', '--samples', '2', '--keep-dir', keep, '--json', json], { timeoutMs: 140_000 });
  t.is(result.code, 0, result.stderr);
  const report = JSON.parse(await readFile(json, 'utf8')) as ColdstartReport & { benchmark: string; options: { samples: number } };
  t.is(report.benchmark, 'coldstart');
  t.is(report.options.samples, 2);
  t.regex(report.client.tarball, /^satchel-.*\.tgz$/);
  t.true(report.client.tarball_bytes > 0 && (report.client.unpacked_bytes ?? 0) > report.client.tarball_bytes);
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
  t.is(report.ioredis_version, lock.packages['node_modules/ioredis']!.version, 'the version the repository locks');

  for (const system of SYSTEMS) {
    const f = report.footprint[system];
    t.is(f.package, system === 'satchel' ? 'satchel' : 'ioredis', 'the child imported the package by this name');
    t.true(f.packages >= 1 && f.node_modules.files > 0);
    t.true(f.node_modules.file_bytes > 0 && f.node_modules.du_bytes > f.node_modules.file_bytes && f.node_modules.allocated_bytes > 0);
    t.is(f.native_modules, f.native.length);
    // The same figure du gives for the project kept.
    const du = await run('du', ['-sb', join(keep, `${system}-project`, 'node_modules')]);
    t.is(f.node_modules.du_bytes, Number(du.stdout.split('\t')[0]), `${system}: du -sb`);

    const c = report.cold_first_get[system];
    t.is(c.samples, 2);
    for (const spread of [c.spawn_to_value_ms, c.in_process_ms, c.wall_ms]) t.true(spread.median > 0 && spread.p90 >= spread.median);
    t.true(c.wall_ms.median >= c.in_process_ms.median * 0.5, "the wall time holds the child's own");
    for (const phase of ['boot', 'import', 'connect', 'first_get'] as const) t.true(c.breakdown_ms[phase] >= 0, phase);
    t.is(c.warmup.system, system);
  }
  t.is(report.footprint.ioredis.native_modules, 0);
  for (const key of ['file_bytes', 'du_bytes', 'allocated_bytes', 'packages'] as const) t.true(report.footprint.ratio[key] > 0, key);
  t.deepEqual(Object.keys(report.footprint.targets).sort(), ['satchel_bytes_le_1x_ioredis', 'satchel_zero_native_modules']);
  t.is(report.footprint.targets.satchel_zero_native_modules, report.footprint.satchel.native_modules === 0);
  t.true(report.cold_first_get.ratio.spawn_to_value_median > 0);
  t.is(report.cold_first_get.value_bytes, 1024);
  t.is(report.samples.length, 4);
  t.deepEqual(report.samples.map((s) => s.system).sort(), ['ioredis', 'ioredis', 'satchel', 'satchel']);
  // The child scripts ran from inside each project.
  t.true((await readdir(join(keep, 'satchel-project'))).includes('coldstart-satchel.mjs'));

  t.regex(result.stdout, /node_modules bytes \(du -sb\)/);
  t.regex(result.stdout, /targets \(issue 16\): satchel ≤ 1\.0× ioredis on disk: (ok|MISSED); zero native modules: (ok|MISSED)/);
});

test('bench coldstart refuses a tarball and a folder to pack together, and a missing tarball', async (t) => {
  const both = await runTs(CLI, ['bench', 'coldstart', '--client-tarball', 'x.tgz', '--pack-dir', '.']);
  t.is(both.code, 2);
  t.regex(both.stderr, /--client-tarball: not with --pack-dir/);
  const samples = await runTs(CLI, ['bench', 'coldstart', '--samples', '0']);
  t.is(samples.code, 2);
  t.regex(samples.stderr, /--samples: expected a whole number from 1/);
  const missing = await runTs(CLI, ['bench', 'coldstart', '--client-tarball', '/nonexistent/satchel.tgz']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--client-tarball: cannot read \/nonexistent\/satchel.tgz/);
});
