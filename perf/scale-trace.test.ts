import test from 'ava';
import { generateTrace, parseTrace, Random, traceToCsv } from './scale-trace.ts';

const MiB = 1024 * 1024;

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

test('Random: the same seed, the same stream; uniform and normal as they should be', (t) => {
  const a = new Random(42);
  const b = new Random(42);
  const c = new Random(43);
  const xs = Array.from({ length: 5 }, () => a.next());
  t.deepEqual(
    xs,
    Array.from({ length: 5 }, () => b.next()),
  );
  t.notDeepEqual(
    xs,
    Array.from({ length: 5 }, () => c.next()),
  );
  const r = new Random(7);
  const n = 100_000;
  let sum = 0;
  let sumSq = 0;
  let min = 1;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const u = r.next();
    min = Math.min(min, u);
    max = Math.max(max, u);
    const z = r.normal();
    sum += z;
    sumSq += z * z;
  }
  t.true(min >= 0 && max < 1);
  t.true(Math.abs(sum / n) < 0.02, `normal mean ${sum / n}`);
  t.true(Math.abs(sumSq / n - 1) < 0.03, `normal variance ${sumSq / n}`);
});

test('generateTrace: seeded, the asked number of jobs over about the asked span, the documented medians, bursts', (t) => {
  const trace = generateTrace({ jobs: 10_000, seed: 1 });
  t.deepEqual(trace, generateTrace({ jobs: 10_000, seed: 1 }), 'the same seed gives the same trace');
  t.notDeepEqual(trace.slice(0, 10), generateTrace({ jobs: 10_000, seed: 2 }).slice(0, 10));
  t.is(trace.length, 10_000);
  t.true(
    trace.every((j, i) => i === 0 || j.arriveMs >= trace[i - 1]!.arriveMs),
    'in arrival order',
  );
  // 10,000 jobs over ~1,000 s by default; bursts make the span vary from seed to seed.
  const spanS = trace.at(-1)!.arriveMs / 1000;
  t.true(spanS > 500 && spanS < 2_000, `span ${spanS} s`);
  const durationMedian = quantile(
    trace.map((j) => j.durationMs / 1000),
    0.5,
  );
  t.true(durationMedian > 50 && durationMedian < 72, `median duration ${durationMedian} s`);
  const usedMedian = quantile(
    trace.map((j) => j.usedBytes / MiB),
    0.5,
  );
  t.true(usedMedian > 210 && usedMedian < 310, `median bytes held ${usedMedian} MiB`);
  const sensitive = trace.filter((j) => j.latencySensitive).length / trace.length;
  t.true(sensitive > 0.3 && sensitive < 0.37, `latency-sensitive share ${sensitive}`);
  t.true(trace.every((j) => j.capacityHint === 0 || (j.capacityHint >= j.usedBytes && j.capacityHint <= 3 * j.usedBytes + 1)));
  t.true(trace.every((j) => j.replicas === 1 || j.replicas === 2));
  // Bursts: some 10-second window holds several times the mean arrivals.
  const perWindow = new Map<number, number>();
  for (const j of trace) perWindow.set(Math.floor(j.arriveMs / 10_000), (perWindow.get(Math.floor(j.arriveMs / 10_000)) ?? 0) + 1);
  const mean = trace.length / (spanS / 10);
  t.true(Math.max(...perWindow.values()) > 3 * mean, `busiest 10 s: ${Math.max(...perWindow.values())} against a mean of ${mean}`);
});

test('traces round-trip through CSV; a bad CSV is BAD_REQUEST naming the line and column', (t) => {
  const trace = generateTrace({ jobs: 50, seed: 9 });
  t.deepEqual(parseTrace(traceToCsv(trace)), trace);
  // Columns in another order, comments, blank lines and an extra column are fine; arrivals are sorted.
  const csv = [
    '# from a cluster log',
    'replicas,duration_ms,arrive_ms,latency_sensitive,capacity_hint,throughput_hint,used_bytes,bytes_per_s,team',
    '',
    '1,60000,5000,0,1048576,1000,524288,1000,red',
    '2,1000,0,1,0,5,10,5,blue',
  ].join('\n');
  const parsed = parseTrace(csv);
  t.deepEqual(
    parsed.map((j) => [j.arriveMs, j.replicas, j.latencySensitive]),
    [
      [0, 2, true],
      [5000, 1, false],
    ],
  );
  const bad = (text: string, message: RegExp) => {
    const error = t.throws(() => parseTrace(text));
    t.is((error as { code?: string }).code, 'BAD_REQUEST');
    t.regex(error!.message, message);
  };
  bad('', /empty/);
  bad('arrive_ms,duration_ms\n1,2\n', /header lacks latency_sensitive/);
  bad(`${traceToCsv([]).trim()}\n`, /no job/);
  bad(`${traceToCsv(trace.slice(0, 1)).trim()}\n1,0,0,0,0,1,0,0\n`, /line 3: duration_ms "0"/);
  bad(`${traceToCsv([]).trim()}\n1,1000,0,0,0,4,0,0\n`, /line 2: replicas "4"/);
  bad(`${traceToCsv([]).trim()}\nx,1000,0,0,0,1,0,0\n`, /line 2: arrive_ms "x"/);
  t.throws(() => generateTrace({ jobs: 0, seed: 1 }), { message: /at least one job/ });
});
