/**
 * The controller store's job records go through a journal (journal.ts): durable when the call returns, in
 * LevelDB a moment later, replayed at open when the process died in between, the file emptied once LevelDB has
 * them all.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { Journal } from './journal.ts';
import type { JobRecord } from './registry.ts';
import { ControllerStore } from './store.ts';

function folder(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'satchel-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function job(id: string, epoch = 1): JobRecord {
  return {
    id,
    name: id,
    hints: {},
    tier: 'dram',
    reason: 'test',
    reservation: 1,
    createdAt: 0,
    leaseExpiresAt: 0,
    placement: { jobId: id, epoch, generations: [], blockSize: 4096, maxValueBytes: 1024, replicas: 1 },
  };
}

test('a job write is in the journal when the call returns, and in LevelDB after', async (t) => {
  const dir = folder(t);
  const store = await ControllerStore.open(join(dir, 'db'));
  await store.putJob(job('a'));
  await store.putJob(job('b'));
  await store.deleteJob('a');
  const lines = readFileSync(join(dir, 'db.journal'), 'utf8').trim().split('\n');
  t.deepEqual(
    lines.map((line) => line.split('\t').slice(0, 2).join(' ')),
    ['put job/a', 'put job/b', 'del job/a'],
  );
  await store.close();
  const again = await ControllerStore.open(join(dir, 'db'));
  t.deepEqual(
    (await again.load()).jobs.map((j) => j.id),
    ['b'],
  );
  await again.close();
});

test('writes the process died before LevelDB had are replayed at open, in order, the last write of each job winning', async (t) => {
  const dir = folder(t);
  // What a killed controller leaves: its journal, and a LevelDB that has only an older state.
  const first = await ControllerStore.open(join(dir, 'db'));
  await first.putJob(job('kept', 1));
  await first.putJob(job('gone'));
  await first.close();
  const died = await ControllerStore.open(join(dir, 'scratch'));
  await died.putJob(job('kept', 2));
  await died.putJob(job('new'));
  await died.deleteJob('gone');
  copyFileSync(join(dir, 'scratch.journal'), join(dir, 'db.journal'));
  await died.close();
  // And a last write cut short by the kill: never acknowledged, left out.
  writeFileSync(join(dir, 'db.journal'), `${readFileSync(join(dir, 'db.journal'), 'utf8')}put\tjob/torn\t{"id":"to`);

  const store = await ControllerStore.open(join(dir, 'db'));
  const jobs = (await store.load()).jobs;
  t.deepEqual(jobs.map((j) => j.id).sort(), ['kept', 'new']);
  t.is(jobs.find((j) => j.id === 'kept')?.placement.epoch, 2);
  t.is(statSync(join(dir, 'db.journal')).size, 0, 'emptied once LevelDB has the replay');
  await store.close();
});

test('the journal is emptied once LevelDB has every write and it has grown', async (t) => {
  const dir = folder(t);
  const store = await ControllerStore.open(join(dir, 'db'));
  const big = job('big');
  big.name = 'x'.repeat(70 * 1024); // past the 64 KiB at which it is emptied
  await store.putJob(big);
  t.true(statSync(join(dir, 'db.journal')).size > 70 * 1024);
  const deadline = Date.now() + 5_000;
  while (statSync(join(dir, 'db.journal')).size > 0 && Date.now() < deadline) await sleep(5);
  t.is(statSync(join(dir, 'db.journal')).size, 0);
  await store.putJob(job('small'));
  t.true(statSync(join(dir, 'db.journal')).size > 0, 'a small journal is kept until it grows');
  await store.close();
  const again = await ControllerStore.open(join(dir, 'db'));
  t.deepEqual((await again.load()).jobs.map((j) => j.id).sort(), ['big', 'small']);
  await again.close();
});

test('a write after close is refused, not lost silently', async (t) => {
  const dir = folder(t);
  const store = await ControllerStore.open(join(dir, 'db'));
  await store.close();
  await t.throwsAsync(store.putJob(job('late')));
});

test('journal lines that are not whole writes are skipped', (t) => {
  const dir = folder(t);
  // The last: a delete cut short (no newline), whose key would be cut too.
  writeFileSync(join(dir, 'j'), 'put\tjob/a\t{"id":"a"}\nnonsense\nput\tjob/b\nput\tjob/c\t{bad json}\ndel\tjob/a\ndel\tjob/ab');
  const journal = Journal.open(join(dir, 'j'));
  t.deepEqual(journal.entries(), [
    { key: 'job/a', value: '{"id":"a"}' },
    { key: 'job/a', value: null },
  ]);
  journal.close();
});

test('a journal LevelDB never catches up with is cut down to the writes it lacks, not left to grow', (t) => {
  const dir = folder(t);
  const journal = Journal.open(join(dir, 'j'));
  t.teardown(() => journal.close());
  const value = JSON.stringify({ pad: 'x'.repeat(1024) });
  for (let i = 0; i < 4200; i++) journal.append({ key: `job/${i}`, value });
  const pending = [
    { key: 'job/late', value },
    { key: 'job/0', value: null },
  ];
  journal.applied(pending);
  t.deepEqual(journal.entries(), pending);
  journal.append({ key: 'job/next', value: '1' });
  t.deepEqual(journal.entries(), [...pending, { key: 'job/next', value: '1' }]);
  journal.applied([]); // small now: kept until it grows
  t.is(journal.entries().length, 3);
});
