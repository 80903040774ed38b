/**
 * The Python shuffle of examples/python-shuffle (issue 18): a word count whose map and reduce functions are
 * separate /usr/bin/python3 processes speaking to the job through redis-py's RedisCluster and its redisUrl. The
 * Node driver registers a job over two nodes and puts the generated input; the maps, then the reduces, run as
 * processes; their output is checked against the counts computed here, and the native client reads the same
 * intermediate keys the maps wrote (hash-tagged per reducer). The README's driver.mjs runs too, against the
 * cluster's cluster.json.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import test from 'ava';
import { Satchel } from '../client/index.ts';
import { LocalCluster } from '../deploy/index.ts';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3'; // Debian's, with python3-redis (.ci/ensure-tools); pyenv's python3 has no redis
const EXAMPLE = fileURLToPath(new URL('../examples/python-shuffle/', import.meta.url));
const DRIVER = join(EXAMPLE, 'driver.mjs');
/** No __pycache__ left in examples/ by the functions' import of shuffle_common. */
const NO_BYTECODE = { PYTHONDONTWRITEBYTECODE: '1' };

let cluster: LocalCluster;
let satchel: Satchel;

test.before(async () => {
  cluster = await LocalCluster.start({ dram: 2, ssd: 0, hdd: 0 });
  satchel = await Satchel.connect(cluster.controller, { key: cluster.tenantKey });
});

test.after.always(async () => {
  satchel?.close();
  await cluster?.stop();
});

type Counts = Map<string, number>;

/** A seeded generator (mulberry32): the same input every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** `maps` inputs of skewed words (a few frequent, many rare; some not ASCII), the last one a single word. */
function generateInputs(maps: number, wordsEach: number): string[] {
  const next = random(18);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const vocabulary = Array.from({ length: 300 }, (_, i) =>
    Array.from({ length: 2 + (i % 7) }, () => letters[Math.floor(next() * letters.length)]).join(''),
  );
  vocabulary.push('naïve', 'größe', '日本', 'café');
  const inputs = Array.from({ length: maps - 1 }, () => {
    const words = Array.from({ length: wordsEach }, () => vocabulary[Math.floor(next() ** 2 * vocabulary.length)]!);
    return words.map((w, i) => (i % 12 === 11 ? `${w}\n` : `${w} `)).join('');
  });
  // A map with one word: every other reducer gets an empty part from it (an empty value, still a written key).
  inputs.push('solitary\n');
  return inputs;
}

function count(text: string): Counts {
  const counts: Counts = new Map();
  for (const word of text.split(/\s+/)) if (word) counts.set(word, (counts.get(word) ?? 0) + 1);
  return counts;
}

/** The example's partition: CRC-32 of the word's UTF-8 bytes mod the reducers (shuffle_common.py). */
const partitionOf = (word: string, reducers: number) => crc32(Buffer.from(word, 'utf8')) % reducers;

/** The example's encoding: "word\tcount" lines sorted by word (code points: every word here is in the BMP). */
function encode(counts: Counts, keep: (word: string) => boolean = () => true): string {
  return [...counts]
    .filter(([word]) => keep(word))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([word, n]) => `${word}\t${n}`)
    .join('\n');
}

function python(script: string, args: (string | number)[], url: string, env: Record<string, string> = {}) {
  return run(PYTHON, [join(EXAMPLE, script), ...args.map(String)], {
    env: { ...process.env, ...NO_BYTECODE, SATCHEL_REDIS_URL: url, ...env },
    timeout: 60_000,
  });
}

test('map.py and reduce.py as /usr/bin/python3 processes count the words; the native client reads their intermediate keys', async (t) => {
  const MAPS = 4;
  const REDUCERS = 3;
  // Over two nodes: the functions' RedisCluster clients follow the slot map across them.
  const job = await satchel.registerJob('python-shuffle', { peakThroughput: 1.5e9 });
  t.teardown(() => job.deregister().catch(() => {}));
  const url = job.redisUrl!;
  t.regex(url, /^redis:\/\//);
  const inputs = generateInputs(MAPS, 5_000);
  await Promise.all(inputs.map((text, m) => job.put(`input/${m}`, text)));

  // The maps, each its own process, at once.
  const maps = await Promise.all(inputs.map((_, m) => python('map.py', [m, REDUCERS], url)));
  maps.forEach(({ stdout }, m) => {
    t.like(JSON.parse(stdout), { map: m, words: [...count(inputs[m]!).values()].reduce((a, b) => a + b, 0) });
  });

  // Their output, read by the native client: each map's counts of each reducer's words under {shuffle-r}/map-m,
  // the parts of one reducer in one slot.
  for (let m = 0; m < MAPS; m++) {
    const counts = count(inputs[m]!);
    for (let r = 0; r < REDUCERS; r++) {
      const part = await job.get(`{shuffle-${r}}/map-${m}`);
      t.not(part, null, `map ${m}'s part for reducer ${r}`);
      t.is(
        part!.toString(),
        encode(counts, (w) => partitionOf(w, REDUCERS) === r),
        `{shuffle-${r}}/map-${m}`,
      );
    }
  }
  t.is((await job.get(`{shuffle-${partitionOf('solitary', REDUCERS) === 0 ? 1 : 0}}/map-${MAPS - 1}`))?.length, 0, 'an empty part');

  // The reduces, each its own process, after the maps.
  const reduces = await Promise.all(Array.from({ length: REDUCERS }, (_, r) => python('reduce.py', [r, MAPS], url)));
  const total = count(inputs.join(' '));
  for (let r = 0; r < REDUCERS; r++) {
    t.like(JSON.parse(reduces[r]!.stdout), { reducer: r });
    const output = (await job.get(`output/${r}`))?.toString();
    t.is(
      output,
      encode(total, (w) => partitionOf(w, REDUCERS) === r),
      `output/${r}`,
    );
  }
  // Together the outputs are the whole count, each word in exactly one of them.
  const merged: Counts = new Map();
  for (let r = 0; r < REDUCERS; r++)
    for (const line of ((await job.get(`output/${r}`))?.toString() ?? '').split('\n').filter(Boolean)) {
      const [word, n] = line.split('\t');
      t.false(merged.has(word!), `${word} in two outputs`);
      merged.set(word!, Number(n));
    }
  t.is(encode(merged), encode(total));
  t.true(total.has('日本') && total.has('größe'), 'words beyond ASCII went through');

  // A reducer whose maps are not all done says so and exits 2, rather than writing a partial count.
  await job.delete('{shuffle-0}/map-1');
  const early = await python('reduce.py', [0, MAPS], url, { SATCHEL_WAIT_SECONDS: '0' }).then(
    () => null,
    (error: { code: number; stderr: string }) => error,
  );
  t.is(early?.code, 2);
  t.regex(early!.stderr, /reducer 0: only 3 of 4 maps wrote their part/);
});

test('the README’s driver.mjs runs the Python word count against cluster.json and prints the counts', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'satchel-python-shuffle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const files = ['the quick brown fox\njumps over the lazy dog\n', 'the dog sleeps\n', 'fox\n'];
  await Promise.all(files.map((text, i) => writeFile(join(dir, `part-${i}.txt`), text)));
  const { stdout } = await run(
    process.execPath,
    [DRIVER, '--cluster', join(cluster.stateDir, 'cluster.json'), '--reducers', '2', ...files.map((_, i) => join(dir, `part-${i}.txt`))],
    { env: { ...process.env, ...NO_BYTECODE, PYTHON }, timeout: 60_000 },
  );
  t.is(stdout, `${encode(count(files.join(' ')))}\n`);
  const jobs = (await (
    await fetch(`${cluster.info.console}/api/jobs`, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })
  ).json()) as { name: string }[];
  t.false(
    jobs.some((job) => job.name === 'python-wordcount'),
    'the driver deregistered its job',
  );
});
