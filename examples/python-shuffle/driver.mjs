// The driver of the Python word count: registers a job on a running cluster (satchel up's cluster.json), puts
// each input file as one map's input with the Node client, runs map.py for each input and then reduce.py for each
// reducer as separate Python processes handed the job's Redis URL, prints the word counts, and deregisters the job
// (which deletes its data). README.md says how to run it.
//
//   node examples/python-shuffle/driver.mjs [--cluster .satchel/cluster.json] [--reducers 2] [--ca ca.pem] FILE...
//
// PYTHON names the interpreter (default python3; it needs redis-py 4.1 or later for RedisCluster).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { Satchel } from 'satchel';

const run = promisify(execFile);
const HERE = fileURLToPath(new URL('.', import.meta.url));

const { values, positionals: files } = parseArgs({
  allowPositionals: true,
  options: {
    cluster: { type: 'string', default: '.satchel/cluster.json' },
    reducers: { type: 'string', default: '2' },
    ca: { type: 'string' },
  },
});
const reducers = Number(values.reducers);
if (files.length === 0 || !Number.isInteger(reducers) || reducers < 1) {
  console.error('usage: driver.mjs [--cluster FILE] [--reducers N] [--ca FILE] INPUT_FILE...');
  process.exit(2);
}
const info = JSON.parse(readFileSync(values.cluster, 'utf8'));
const ca = values.ca === undefined ? undefined : readFileSync(values.ca, 'utf8');

const satchel = await Satchel.connect(info.controller, { key: info.tenantKey, ...(ca === undefined ? {} : { tls: { ca } }) });
const job = await satchel.registerJob('python-wordcount', { latencySensitive: true });
try {
  if (job.redisUrl === null) throw new Error('the cluster’s nodes have no RESP front door (storage nodes without --resp-port)');
  await Promise.all(files.map((file, m) => job.put(`input/${m}`, readFileSync(file))));
  // The URL (it holds the job's token) goes in the environment, not on the command line.
  const env = { ...process.env, SATCHEL_REDIS_URL: job.redisUrl, ...(values.ca === undefined ? {} : { SATCHEL_CA: values.ca }) };
  const python = (script, ...args) => run(process.env.PYTHON ?? 'python3', [`${HERE}${script}`, ...args.map(String)], { env });
  await Promise.all(files.map((_, m) => python('map.py', m, reducers)));
  await Promise.all(Array.from({ length: reducers }, (_, r) => python('reduce.py', r, files.length)));
  const lines = [];
  for (let r = 0; r < reducers; r++) {
    const output = (await job.get(`output/${r}`))?.toString() ?? '';
    if (output) lines.push(...output.split('\n'));
  }
  lines.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  process.stdout.write(lines.length > 0 ? `${lines.join('\n')}\n` : '');
} finally {
  await job.deregister();
  satchel.close();
}
