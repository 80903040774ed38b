import { readFileSync } from 'node:fs';
import test from 'ava';
import { chartJsPath } from '../report-html.ts';
import { checkHistory } from './checker.ts';
import type { History, HistoryOp } from './history.ts';
import {
  faultStrip,
  MAX_FAULT_ROWS,
  MAX_FAULTS_SHOWN,
  MAX_LABELLED_FAULTS,
  type NemesisChartData,
  nemesisChartData,
  renderNemesisHtml,
} from './report-html.ts';

const HOSTILE = '</script><img src=x onerror=alert(1)>';

function op(fields: Partial<HistoryOp> & Pick<HistoryOp, 'op' | 'invokeMs' | 'completeMs'>): HistoryOp {
  return { process: 'p0', job: 'r2', replicas: 2, key: 'k', outcome: 'ok', ...fields };
}

/** Three jobs for a few seconds: r2 reads null after an acked put at 2.5 s (a hostile key), r1 fails with UNAVAILABLE. */
const history: History = {
  startedAt: '2026-01-02T03:04:05.000Z',
  durationMs: 6000,
  ops: [
    op({ op: 'put', key: HOSTILE, value: 'v1', invokeMs: 100, completeMs: 110 }),
    op({ op: 'get', key: HOSTILE, result: null, invokeMs: 2500, completeMs: 2510 }),
    op({ op: 'put', job: 'r1', replicas: 1, value: 'a', invokeMs: 200, completeMs: 210 }),
    op({ op: 'get', job: 'r1', replicas: 1, outcome: 'fail', errorCode: 'UNAVAILABLE', invokeMs: 3100, completeMs: 3200 }),
    op({ op: 'incr', job: 'r3', replicas: 3, key: 'c', amount: 1, result: 1, invokeMs: 300, completeMs: 310 }),
    op({ op: 'get', job: 'r3', replicas: 3, key: 'c', result: '1', invokeMs: 5000, completeMs: 5001, final: true }),
  ],
  faults: [
    { kind: 'kill', target: 'node-<b>1</b>', startMs: 2000, endMs: 4000, note: HOSTILE },
    { kind: 'stop', target: 'node-2', startMs: 3000, endMs: 3500 },
    { kind: 'partition', target: 'controller', startMs: 4500, endMs: 4500 },
  ],
};
const report = checkHistory(history);
const html = renderNemesisHtml({ ...history, command: `satchel bench nemesis --note "${HOSTILE}"` }, report);

function embedded(text: string): NemesisChartData {
  const match = /<script type="application\/json" id="data">([\s\S]*?)<\/script>/.exec(text);
  if (!match) throw new Error('no embedded data');
  return JSON.parse(match[1]!) as NemesisChartData;
}

/** The document without its inline scripts and data: what the browser parses as markup. */
function markup(text: string): string {
  return text.replace(/<script\b[^>]*>[\s\S]*?<\/script>/g, '');
}

test('nemesis report: the run has the anomaly the page must show', (t) => {
  t.is(report.summary.byReplicas['2'].null, 1);
  t.is(report.summary.anomalies, 1);
});

test('nemesis report: a self-contained document with Chart.js inlined', (t) => {
  t.true(html.startsWith('<!doctype html>'));
  t.true(html.includes(readFileSync(chartJsPath(), 'utf8')));
  t.false(/<script[^>]*\ssrc=/i.test(html), 'no external scripts');
  t.false(/<link\b/i.test(html), 'no stylesheets to fetch');
  t.false(/<[a-z][^>]*\s(src|href)\s*=/i.test(markup(html)), 'no element with a src or href');
  t.false(/url\(/i.test(html.slice(0, html.indexOf('</style>'))), 'nothing fetched from the CSS');
});

test('nemesis report: hostile strings are escaped in the markup and cannot close the data block', (t) => {
  const page = markup(html);
  t.false(page.includes('<img'), 'no injected element');
  t.false(page.includes('</script>'));
  t.false(page.includes('<b>1</b>'));
  t.true(page.includes('&#60;/script&#62;&#60;img src=x onerror=alert(1)&#62;'), 'the key and note, as text');
  t.true(page.includes('node-&#60;b&#62;1&#60;/b&#62;'));
  const block = /<script type="application\/json" id="data">([\s\S]*?)<\/script>/.exec(html)![1]!;
  t.false(block.includes('<'));
  const strip = embedded(html).faults;
  t.is(strip.bars[0]!.target, 'node-<b>1</b>', 'the data round-trips');
  t.is(strip.bars[0]!.note, HOSTILE);
  // Exactly the three scripts we put there: the data, Chart.js and the timeline.
  t.is(html.match(/<script\b/g)!.length, 3);
});

test('nemesis report: the fault strip and anomaly markers are in the embedded data', (t) => {
  const data = embedded(html);
  t.deepEqual(
    data.faults.rows.map((r) => [r.kind, r.count]),
    [
      ['kill', 1],
      ['partition', 1],
      ['stop', 1],
    ],
    'a row per kind, sorted',
  );
  t.is(new Set(data.faults.rows.map((r) => r.color)).size, 3, 'a colour per fault kind');
  t.deepEqual(
    data.faults.bars.map((b) => [data.faults.rows[b.row]!.kind, b.target, b.start, b.end, b.lane]),
    [
      ['kill', 'node-<b>1</b>', 2, 4, 0],
      ['stop', 'node-2', 3, 3.5, 1],
      ['partition', 'controller', 4.5, 4.5, 2], // the rows above still hold their labels (4 s each)
    ],
    'a bar per fault by start; a short run labels them over the chart',
  );
  t.true(data.faults.labelled);
  t.is(data.faults.omitted, 0);
  t.deepEqual(data.markers, [{ kind: 'null', color: data.markers[0]!.color, points: [[2.5, 1]] }]);
  t.deepEqual(
    data.series.map((s) => s.replicas),
    ['1', '2', '3'],
  );
  t.is(data.series[0]!.failed[3], 1, 'the UNAVAILABLE at 3.2 s');
  t.is(data.series[1]!.ok[0], 1);
  t.is(data.bucketSeconds, 1);
  t.true(html.includes('id="timeline"'));
});

test('nemesis report: summary, fault and anomaly tables', (t) => {
  t.regex(html, /<p class="verdict fail">1 anomalies in 6 operations under 3 faults\.<\/p>/);
  t.regex(html, /<tr><td>replicas 2<\/td><td class="n">2<\/td><td class="n">100\.00 %<\/td><td class="n">0<\/td><td class="n bad">1<\/td>/);
  t.regex(html, /<tr><td>replicas 1<\/td><td class="n">2<\/td><td class="n">50\.00 %<\/td>.*<td>UNAVAILABLE 1<\/td><\/tr>/);
  t.regex(html, /<td class="n">0 \/ 1<\/td>/, 'replicas 3: its one final read answered');
  t.regex(
    html,
    /<tr><td>kill<\/td><td>node-&#60;b&#62;1&#60;\/b&#62;<\/td><td class="n">2\.00<\/td><td class="n">4\.00<\/td><td class="n">2\.00<\/td>/,
  );
  t.regex(html, /<tr><td>null<\/td><td>r2<\/td><td class="n">2<\/td><td>&#60;\/script/);
  t.true(html.includes('put &#34;v1&#34; ok [100.0–110.0 ms] by p0'), 'the acked put the null read should have seen');
});

test('nemesis report: a clean run says so', (t) => {
  const clean = { ...history, ops: history.ops.filter((o) => o.op !== 'get' || o.job !== 'r2') };
  const page = renderNemesisHtml(clean, checkHistory(clean));
  t.regex(page, /<p class="verdict pass">No anomalies in 5 operations under 3 faults\.<\/p>/);
  t.regex(page, /<h2>Anomalies<\/h2>\n<p class="empty">None\.<\/p>/);
  t.deepEqual(embedded(page).markers, []);
});

test('nemesis report: a 10-minute run of a million ops stays small', (t) => {
  const ops: HistoryOp[] = [];
  for (let i = 0; i < 1_000_000; i++) {
    const ms = (i / 1_000_000) * 600_000;
    const job = ['r1', 'r2', 'r3'][i % 3]!;
    ops.push({
      process: `p${i % 64}`,
      job,
      replicas: ((i % 3) + 1) as 1 | 2 | 3,
      op: 'put',
      key: `k${i % 500}`,
      value: `v${i}`,
      invokeMs: ms,
      completeMs: ms + 0.5,
      outcome: i % 50 === 0 ? 'info' : 'ok',
      ...(i % 50 === 0 ? { errorCode: 'TIMEOUT' } : {}),
    });
  }
  const faults = Array.from({ length: 300 }, (_, i) => ({
    kind: ['kill', 'stop', 'partition'][i % 3]!,
    target: `node-${i % 5}`,
    startMs: i * 2000,
    endMs: i * 2000 + 1500,
  }));
  const big: History = { startedAt: '2026-01-02T03:04:05.000Z', durationMs: 600_000, ops, faults };
  const page = renderNemesisHtml(big, checkHistory(big));
  t.true(page.length < 1_500_000, `${page.length} bytes`);
  const data = embedded(page);
  t.is(data.series[0]!.ok.length, 600);
  t.deepEqual(
    data.faults.rows.map((r) => [r.kind, r.count]),
    [
      ['kill', 100],
      ['partition', 100],
      ['stop', 100],
    ],
  );
  t.is(data.faults.bars.length, 300, 'a bar per fault');
  t.false(data.faults.labelled, 'too many faults to label over the chart');
  t.false(data.faults.bars.some((b) => 'lane' in b));
  t.deepEqual(data.faults.bars[299], { row: 1, start: 598, end: 599.5, target: 'node-4' }, 'partition, the 300th');
});

test('faultStrip: overlapping faults take separate label rows, later ones reuse freed rows', (t) => {
  const strip = faultStrip([
    { kind: 'a', target: 'x', startMs: 0, endMs: 10_000 },
    { kind: 'b', target: 'y', startMs: 1000, endMs: 2000 },
    { kind: 'a', target: 'z', startMs: 7000, endMs: 8000 },
    { kind: 'a', target: 'w', startMs: 12_000, endMs: 13_000 },
  ]);
  t.deepEqual(
    strip.bars.map((b) => [b.row, b.lane]),
    [
      [0, 0],
      [1, 1],
      [0, 1],
      [0, 0],
    ],
  );
  t.not(strip.rows[0]!.color, strip.rows[1]!.color);
});

test('faultStrip: past a handful of faults, bars without labels; past the cap, the rest counted', (t) => {
  const kinds = ['restart', 'freeze', 'partition', 'drain', 'controller'];
  const faults = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      kind: kinds[i % 5]!,
      target: `dram-${i % 7}`,
      startMs: (n - i) * 1000,
      endMs: (n - i) * 1000 + 700 + i,
    }));
  const few = faultStrip(faults(MAX_LABELLED_FAULTS));
  t.true(few.labelled);
  t.true(few.bars.every((b) => typeof b.lane === 'number'));
  const many = faultStrip(faults(MAX_LABELLED_FAULTS + 1));
  t.false(many.labelled);
  t.is(many.bars.length, MAX_LABELLED_FAULTS + 1);
  t.true(many.bars.every((b) => b.lane === undefined));

  const all = faults(MAX_FAULTS_SHOWN + 60);
  const capped = faultStrip(all);
  t.deepEqual(
    capped.rows.map((r) => [r.kind, r.count]),
    [...kinds].sort().map((k) => [k, all.filter((f) => f.kind === k).length]),
    'counts cover every fault, drawn or not',
  );
  t.is(capped.bars.length, MAX_FAULTS_SHOWN);
  t.is(capped.omitted, 60);
  t.true(
    capped.bars.every((b, i) => i === 0 || capped.bars[i - 1]!.start <= b.start),
    'by start',
  );
  t.is(capped.bars[0]!.start, 1, 'the earliest first (they came latest first)');
  for (const b of capped.bars) {
    const f = all.find((g) => g.startMs / 1000 === b.start)!;
    t.is(capped.rows[b.row]!.kind, f.kind);
    t.is(b.end, f.endMs / 1000);
  }
});

test('faultStrip: kinds past the row cap share the last row and keep their names', (t) => {
  const strip = faultStrip(
    Array.from({ length: MAX_FAULT_ROWS + 3 }, (_, i) => ({
      kind: `k${String(i).padStart(2, '0')}`,
      target: 'n',
      startMs: i,
      endMs: i + 1,
    })),
  );
  t.is(strip.rows.length, MAX_FAULT_ROWS);
  t.deepEqual(strip.rows.at(-1), { kind: '4 other kinds', color: strip.rows.at(-1)!.color, count: 4 });
  t.deepEqual(
    strip.bars.slice(-4).map((b) => [b.row, b.kind]),
    [15, 16, 17, 18].map((i) => [MAX_FAULT_ROWS - 1, `k${i}`]),
  );
  t.is(strip.bars[0]!.kind, undefined);
});

test('faultStrip: long targets and notes are clipped in the data (the faults table has them whole)', (t) => {
  const strip = faultStrip([{ kind: 'a', target: 'x'.repeat(500), startMs: 0, endMs: 1, note: 'n'.repeat(5000) }]);
  t.true(strip.bars[0]!.target.length <= 80);
  t.true(strip.bars[0]!.note!.length <= 160);
  t.true(strip.bars[0]!.note!.endsWith('…'));
});

test('nemesisChartData: ops per second when buckets are longer than a second', (t) => {
  const long: History = { ...history, durationMs: 4 * 3600 * 1000 };
  const data = nemesisChartData(long, checkHistory(long));
  t.is(data.bucketSeconds, 4);
  t.true(data.series[0]!.ok.length <= 3600);
  t.is(data.series[1]!.ok[0], 0.5, 'two ops in a 4 s bucket');
});

test('nemesis report: the timeline script parses, and faults past the cap are said to be left out', (t) => {
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
  t.is(scripts.length, 2, 'Chart.js and the timeline');
  t.notThrows(() => new Function(scripts[1]!), 'plain ES2017 that a browser can parse');
  t.true(scripts[1]!.includes("type: 'category'") && scripts[1]!.includes('faultStrip'), 'the strip is drawn');

  const faults = Array.from({ length: MAX_FAULTS_SHOWN + 5 }, (_, i) => ({
    kind: 'restart',
    target: `n${i % 3}`,
    startMs: i * 100,
    endMs: i * 100 + 50,
  }));
  const crowded: History = { ...history, durationMs: faults.length * 100, faults };
  const page = renderNemesisHtml(crowded, checkHistory(crowded));
  t.is(embedded(page).faults.bars.length, MAX_FAULTS_SHOWN);
  t.regex(markup(page), /the first 2,000; 5 later faults are not drawn/);
  t.regex(markup(page), /5 more faults not shown\./);
});
