import { readFile } from 'node:fs/promises';
import test from 'ava';
import { chartJsPath, renderJobsHtml, renderShuffleHtml } from './report-html.ts';
import type { JobsReport, MachineInfo, ShuffleReport, ShuffleRow } from './shuffle-report.ts';

const machine: MachineInfo = { cpus: 8, cpu: 'Test CPU <x>', memory_bytes: 16 * 2 ** 30, node: 'v20.0.0', platform: 'linux' };

function shuffleRow(system: string, seconds: number): ShuffleRow {
  return {
    system,
    bytes: 2 ** 30,
    records: 10_000_000,
    mappers: 8,
    reducers: 8,
    concurrency: 16,
    seconds,
    phases: { map_s: seconds * 0.4, shuffle_read_s: seconds * 0.3, reduce_s: seconds * 0.6 },
    load_s: 1,
    verify_s: 1,
    ops: 128,
    op_bytes: 2 ** 31,
    p50_us: 900,
    p99_us: 4000,
    p999_us: 6000,
    max_us: 9000,
    by_op: { get: { count: 64, p50_us: 800, p99_us: 3000, p999_us: 5000, max_us: 7000 } },
    function_seconds: { read: seconds * 2, sort: seconds * 3 },
    verified: true,
  };
}

const shuffle: ShuffleReport = {
  benchmark: 'shuffle',
  date: '2026-01-02T03:04:05.000Z',
  command: 'satchel bench shuffle --note "</script><b>x</b>"',
  machine,
  options: { bytes: '1g', note: '</script><!-- <script>' },
  results: [shuffleRow('redis', 10), shuffleRow('satchel-dram', 5), shuffleRow('<script>alert(1)</script>', 7)],
  timelines: [{ system: 'redis', interval_s: 1, t: [0, 1, 2], bytes_per_s: [1e8, 2e8, 1.5e8], ops_per_s: [10, 20, 15] }],
};

const jobs: JobsReport = {
  benchmark: 'jobs',
  date: '2026-01-02T03:04:05.000Z',
  command: 'satchel bench jobs',
  machine,
  options: {},
  jobs: [
    { system: 'satchel', name: 'job-</script>-1', start_s: 0, end_s: 4, seconds: 4, verified: true },
    { system: '<script>evil</script>', name: 'job-2', start_s: 1, end_s: 3, seconds: 2, verified: true },
  ],
  samples: [
    {
      system: 'satchel',
      t: 0,
      tiers: { dram: { reserved_bytes: 2 ** 20, used_bytes: 2 ** 19 }, ssd: { reserved_bytes: 0, used_bytes: 0 } },
    },
    {
      system: 'satchel',
      t: 1,
      tiers: { dram: { reserved_bytes: 2 ** 21, used_bytes: 2 ** 20 }, ssd: { reserved_bytes: 2 ** 20, used_bytes: 10 } },
    },
  ],
  summary: [
    { system: 'satchel', reserved_over_used: 1.8, mean_reserved_bytes: 3 * 2 ** 20, mean_used_bytes: 2 ** 20, makespan_s: 4 },
    { system: '<script>evil</script>', reserved_over_used: 1, mean_reserved_bytes: 0, mean_used_bytes: 0, makespan_s: 2 },
  ],
};

function embeddedJson(html: string): unknown {
  const match = /<script type="application\/json" id="report">([\s\S]*?)<\/script>/.exec(html);
  if (!match) throw new Error('no embedded report');
  return JSON.parse(match[1]!);
}

/** The HTML with the inlined scripts and the JSON block removed: what the browser parses as markup. */
function markup(html: string): string {
  return html.replace(/<script\b[^>]*>[\s\S]*?<\/script>/g, '');
}

async function chartJsSource(): Promise<string> {
  return readFile(chartJsPath(), 'utf8');
}

for (const [name, render] of [
  ['shuffle', () => renderShuffleHtml(shuffle)],
  ['jobs', () => renderJobsHtml(jobs)],
] as const) {
  test(`${name}: a self-contained document with Chart.js inlined`, async (t) => {
    const html = await render();
    t.true(html.startsWith('<!doctype html>'));
    t.true(html.includes('Chart.js v4.'));
    t.true(html.includes(await chartJsSource()));
    t.false(/<script[^>]*\ssrc=/i.test(html), 'no external scripts');
    t.false(/<link\b/i.test(html), 'no external stylesheets');
  });

  test(`${name}: the embedded JSON round-trips and cannot close its script tag`, async (t) => {
    const html = await render();
    const block = /<script type="application\/json" id="report">([\s\S]*?)<\/script>/.exec(html)![1]!;
    t.false(block.includes('<'));
    t.deepEqual(embeddedJson(html), name === 'shuffle' ? shuffle : jobs);
  });

  test(`${name}: text in the markup is escaped`, async (t) => {
    const html = markup(await render());
    t.false(html.includes('<script'));
    t.false(html.includes('</script>'));
    t.false(html.includes('<x>'));
    t.true(html.includes('Test CPU &#60;x&#62;'));
  });
}

test('shuffle: table escapes system names, shows the ratio to redis and the command', async (t) => {
  const html = await renderShuffleHtml(shuffle);
  t.true(html.includes('<td>&#60;script&#62;alert(1)&#60;/script&#62;</td>'));
  t.true(html.includes('&lt;') || html.includes('&#60;'));
  t.true(html.includes('satchel bench shuffle --note &#34;&#60;/script&#62;&#60;b&#62;x&#60;/b&#62;&#34;'));
  t.true(html.includes('<td class="n">0.50×</td>'), 'satchel-dram at half of redis');
  t.true(html.includes('<td class="n">1.00×</td>'), 'redis against itself');
  t.true(html.includes('<td class="n">0.70×</td>'));
  t.true(html.includes('id="throughput"') && html.includes('id="phases"') && html.includes('id="function-seconds"'));
});

test('shuffle: no redis row with the same shape gives no ratio', async (t) => {
  const other = { ...shuffleRow('satchel-ssd', 3), mappers: 4 };
  const html = await renderShuffleHtml({ ...shuffle, results: [shuffleRow('redis', 10), other] });
  t.true(html.includes('<td class="n">—</td>'));
});

test('jobs: job and summary tables escape system names', async (t) => {
  const html = await renderJobsHtml(jobs);
  t.true(html.includes('<td>&#60;script&#62;evil&#60;/script&#62;</td>'));
  t.true(html.includes('<td>job-&#60;/script&#62;-1</td>'));
  t.true(html.includes('<td class="n">1.80×</td>'));
  t.true(html.includes('<td class="n">3.0</td>'), 'mean reserved in MiB');
  t.true(html.includes('id="capacity"') && html.includes('id="gantt"'));
});

test('renders are independent and the Chart.js read is shared', async (t) => {
  const [a, b] = await Promise.all([renderShuffleHtml(shuffle), renderShuffleHtml(shuffle)]);
  t.is(a, b);
});
