/**
 * The `satchel bench` commands that run for minutes and judge faults or limits rather than time a workload:
 * soak, nemesis, abuse, coldstart and scale. Each parses its flags, runs its driver and prints and writes its report;
 * `runBench` (cli.ts) dispatches to them.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { SatchelError } from '../proto/index.ts';
import { runAbuse } from './abuse.ts';
import { ATTACKS, type AttackName } from './abuse-protocol.ts';
import { abuseText } from './abuse-report.ts';
import { commandLine, machine, parseFlags, reportedOptions, whole } from './cli-flags.ts';
import { EXISTING_CLUSTER_FLAGS, existingCluster } from './cluster-access.ts';
import { coldstartText, runColdstart } from './coldstart.ts';
import { formatCheckSummary } from './nemesis/checker.ts';
import { renderNemesisHtml } from './nemesis/report-html.ts';
import { DEFAULT_SCHEDULE, FAULT_KINDS, type FaultKind, runNemesis } from './nemesis/run.ts';
import { runScale } from './scale.ts';
import { renderScaleHtml, type ScaleReport, scaleText, targetsOf } from './scale-report.ts';
import { parseTrace } from './scale-trace.ts';
import { runSoak } from './soak.ts';
import { soakHeader, soakRow, soakSummaryText } from './soak-report.ts';

/** `bench soak`: a long mixed load against a cluster, watching its servers for leaks interval by interval. */
export async function soakCommand(args: string[]): Promise<void> {
  const values = parseFlags(args, {
    json: { type: 'string' },
    minutes: { type: 'string' },
    'interval-seconds': { type: 'string' },
    processes: { type: 'string' },
    lanes: { type: 'string' },
    'lanes-per-job': { type: 'string' },
    'job-seconds': { type: 'string' },
    rate: { type: 'string' },
    'large-fraction': { type: 'string' },
    ...EXISTING_CLUSTER_FLAGS,
  });
  const positive = (text: string | undefined, fallback: number, flag: string, min: number, max: number) => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!(n >= min && n <= max))
      throw new SatchelError('BAD_REQUEST', `${flag}: expected a number from ${min} to ${max}, got ${JSON.stringify(text)}`);
    return n;
  };
  const cluster = await existingCluster(values, { console: true, why: 'the console lists the servers to watch' });
  const jobSeconds = positive(values['job-seconds'], 10, '--job-seconds', 0.5, 3600);
  const options = {
    minutes: positive(values.minutes, 10, '--minutes', 0.01, 10_000),
    intervalSeconds: positive(values['interval-seconds'], 60, '--interval-seconds', 1, 3600),
    processes: whole(values.processes, 4, '--processes', 1, 64),
    lanes: whole(values.lanes, 16, '--lanes', 1, 1024),
    lanesPerJob: whole(values['lanes-per-job'], 4, '--lanes-per-job', 1, 1024),
    jobSeconds,
    invocationSeconds: Math.min(2, jobSeconds / 2),
    opsPerSecond: whole(values.rate, 1000, '--rate', 0, 10_000_000),
    largeFraction: positive(values['large-fraction'], 0.02, '--large-fraction', 0, 0.25),
    keysPerLane: 32,
    jobCapacity: 32 * 1024 * 1024,
    cluster,
  };
  const status = (line: string) => process.stderr.write(`bench soak: ${line}\n`);
  let printedHeader = false;
  const report = await runSoak(
    options,
    (row, processes) => {
      if (!printedHeader) process.stdout.write(soakHeader(processes) + '\n');
      printedHeader = true;
      process.stdout.write(soakRow(row) + '\n');
    },
    status,
  );
  const full = {
    benchmark: 'soak',
    date: new Date().toISOString(),
    command: commandLine('soak', args),
    machine: machine(),
    options: reportedOptions(options),
    ...report,
  };
  if (values.json) await writeFile(values.json, JSON.stringify(full, null, 2) + '\n');
  process.stdout.write(soakSummaryText(report));
  if (values.json) process.stdout.write(`written: ${values.json}\n`);
  if (report.summary.errors > 0 || report.summary.lost > 0) process.exitCode = 1;
}

/** `bench nemesis`: faults against a whole cluster while clients record every operation; the checker judges. */
export async function nemesisCommand(args: string[]): Promise<void> {
  const values = parseFlags(args, {
    minutes: { type: 'string' },
    seconds: { type: 'string' },
    processes: { type: 'string' },
    lanes: { type: 'string' },
    rate: { type: 'string' },
    nodes: { type: 'string' },
    'node-timeout-ms': { type: 'string' },
    'job-seconds': { type: 'string' },
    ballast: { type: 'string' },
    faults: { type: 'string' },
    json: { type: 'string' },
    html: { type: 'string' },
    'keep-dir': { type: 'string' },
    history: { type: 'string' },
  });
  const kinds = (values.faults ?? DEFAULT_SCHEDULE.join(',')).split(',');
  for (const kind of kinds) {
    if (!(FAULT_KINDS as readonly string[]).includes(kind))
      throw new SatchelError('BAD_REQUEST', `--faults: expected some of ${FAULT_KINDS.join(',')}, got ${JSON.stringify(kind)}`);
  }
  const number = (text: string | undefined, flag: string, min: number, max: number): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!(n >= min && n <= max))
      throw new SatchelError('BAD_REQUEST', `${flag}: expected a number from ${min} to ${max}, got ${JSON.stringify(text)}`);
    return n;
  };
  const seconds = number(values.seconds, '--seconds', 1, 86_400) ?? (number(values.minutes, '--minutes', 0.05, 1_440) ?? 10) * 60;
  const options = {
    seconds,
    processes: whole(values.processes, 2, '--processes', 1, 64),
    lanes: whole(values.lanes, 8, '--lanes', 1, 256),
    ratePerLane: whole(values.rate, 0, '--rate', 0, 100_000),
    nodes: whole(values.nodes, 5, '--nodes', 4, 16),
    nodeTimeoutMs: whole(values['node-timeout-ms'], 1_000, '--node-timeout-ms', 1_000, 60_000),
    jobSeconds: number(values['job-seconds'], '--job-seconds', 1, 3_600) ?? 120,
    ballastPerJob: whole(values.ballast, 500, '--ballast', 0, 1_000_000),
    faults: kinds as FaultKind[],
    keepDir: values['keep-dir'],
  };
  const started = Date.now();
  const result = await runNemesis({ ...options, onProgress: (line) => process.stderr.write(`bench nemesis: ${line}\n`) });
  const command = commandLine('nemesis', args);
  process.stdout.write(`${formatCheckSummary(result.report)}\n`);
  process.stdout.write(
    `faults injected: ${Object.entries(result.faults)
      .map(([k, n]) => `${k} ${n}`)
      .join(
        ', ',
      )}; not settled after a fault: ${result.unsettled}; faults the harness could not inject: ${result.harnessErrors.length}; ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
  for (const error of result.harnessErrors.slice(0, 5)) process.stdout.write(`  ${error}\n`);
  if (values.json) {
    const { timeline: _timeline, ...report } = result.report;
    const faultList = result.history.faults;
    await writeFile(
      values.json,
      JSON.stringify(
        {
          benchmark: 'nemesis',
          date: new Date().toISOString(),
          command,
          machine: machine(),
          options,
          faults: result.faults,
          faultList,
          unsettled: result.unsettled,
          harnessErrors: result.harnessErrors,
          report,
        },
        null,
        2,
      ) + '\n',
    );
    process.stdout.write(`written: ${values.json}\n`);
  }
  if (values.history) {
    // One JSON object per line: the run (start, length, faults), then every operation. checkHistory reads it back.
    const { ops, ...run } = result.history;
    await writeFile(values.history, [JSON.stringify(run), ...ops.map((op) => JSON.stringify(op))].join('\n') + '\n');
    process.stdout.write(`written: ${values.history}\n`);
  }
  if (values.html) {
    await writeFile(
      values.html,
      renderNemesisHtml(
        { startedAt: result.history.startedAt, durationMs: result.history.durationMs, faults: result.history.faults, command },
        result.report,
      ),
    );
    process.stdout.write(`written: ${values.html}\n`);
  }
  if (result.report.summary.anomalies > 0 || result.report.summary.malformed > 0) process.exitCode = 1;
}

/** `bench abuse`: a well-behaved job alone, then under each attack in turn. */
export async function abuseCommand(args: string[]): Promise<void> {
  const values = parseFlags(args, {
    seconds: { type: 'string' },
    'sse-seconds': { type: 'string' },
    'hello-seconds': { type: 'string' },
    rate: { type: 'string' },
    scale: { type: 'string' },
    attacks: { type: 'string' },
    json: { type: 'string' },
  });
  const number = (text: string | undefined, fallback: number, flag: string, min: number, max: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!(n >= min && n <= max))
      throw new SatchelError('BAD_REQUEST', `${flag}: expected a number from ${min} to ${max}, got ${JSON.stringify(text)}`);
    return n;
  };
  const attacks = values.attacks === undefined ? [...ATTACKS] : values.attacks.split(',');
  for (const attack of attacks) {
    if (!(ATTACKS as readonly string[]).includes(attack))
      throw new SatchelError('BAD_REQUEST', `--attacks: expected some of ${ATTACKS.join(',')}, got ${JSON.stringify(attack)}`);
  }
  const options = {
    seconds: number(values.seconds, 10, '--seconds', 0.5, 3_600),
    sseSeconds: number(values['sse-seconds'], 30, '--sse-seconds', 1, 86_400),
    helloSeconds: number(values['hello-seconds'], 12, '--hello-seconds', 0.5, 3_600),
    rate: whole(values.rate, 4_000, '--rate', 10, 1_000_000),
    lanes: 8,
    scale: number(values.scale, 1, '--scale', 0.001, 10),
    attacks: attacks as AttackName[],
  };
  const report = await runAbuse(options);
  const full = {
    benchmark: 'abuse',
    date: new Date().toISOString(),
    command: commandLine('abuse', args),
    machine: machine(),
    options,
    ...report,
  };
  if (values.json) await writeFile(values.json, JSON.stringify(full, null, 2) + '\n');
  process.stdout.write(abuseText(report));
  if (values.json) process.stdout.write(`written: ${values.json}\n`);
  if (report.summary.well_behaved_failures > 0) process.exitCode = 1;
}

/** `bench coldstart`: the client's install footprint and a new process's first GET, Satchel against ioredis. */
export async function coldstartCommand(args: string[]): Promise<void> {
  const values = parseFlags(args, {
    samples: { type: 'string' },
    'client-tarball': { type: 'string' },
    'pack-dir': { type: 'string' },
    'keep-dir': { type: 'string' },
    json: { type: 'string' },
  });
  if (values['client-tarball'] !== undefined && values['pack-dir'] !== undefined)
    throw new SatchelError('BAD_REQUEST', '--client-tarball: not with --pack-dir (the tarball is what would be packed)');
  const options = {
    samples: whole(values.samples, 11, '--samples', 1, 1000),
    clientTarball: values['client-tarball'],
    packDir: values['pack-dir'],
    keepDir: values['keep-dir'],
    valueBytes: 1024,
    childTimeoutMs: 30_000,
    npmTimeoutMs: 300_000,
  };
  const report = await runColdstart(options);
  const full = {
    benchmark: 'coldstart',
    date: new Date().toISOString(),
    command: commandLine('coldstart', args),
    machine: machine(),
    options,
    ...report,
  };
  if (values.json) await writeFile(values.json, JSON.stringify(full, null, 2) + '\n');
  process.stdout.write(coldstartText(report));
  if (values.json) process.stdout.write(`written: ${values.json}\n`);
}

/**
 * `bench scale`: the real controller against simulated nodes and a job trace (scale.ts). `--speed` compresses
 * time; `--trace FILE` replaces the generated trace with a CSV one (scale-trace.ts `parseTrace`).
 */
export async function scaleCommand(args: string[]): Promise<void> {
  const values = parseFlags(args, {
    json: { type: 'string' },
    html: { type: 'string' },
    nodes: { type: 'string' },
    jobs: { type: 'string' },
    trace: { type: 'string' },
    seed: { type: 'string' },
    speed: { type: 'string' },
    'report-ms': { type: 'string' },
    'lookups-per-job-s': { type: 'string' },
    metadata: { type: 'string' },
    'sample-ms': { type: 'string' },
    'in-flight': { type: 'string' },
    'max-job-s': { type: 'string' },
    'calibrate-s': { type: 'string' },
    'span-s': { type: 'string' },
    'nodes-per-connection': { type: 'string' },
  });
  const number = (text: string | undefined, fallback: number, flag: string, min: number, max: number) => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (text.trim() === '' || !(n >= min && n <= max))
      throw new SatchelError('BAD_REQUEST', `${flag}: expected a number from ${min} to ${max}, got ${JSON.stringify(text)}`);
    return n;
  };
  // A CSV trace carries its own arrival times: a span given with it would be silently ignored.
  if (values['span-s'] !== undefined && values.trace !== undefined)
    throw new SatchelError('BAD_REQUEST', '--span-s spreads a generated trace; a --trace file carries its own arrivals');
  let trace: ReturnType<typeof parseTrace> | undefined;
  if (values.trace !== undefined) {
    const text = await readFile(values.trace, 'utf8').catch((error: unknown) => {
      throw new SatchelError('BAD_REQUEST', `--trace: cannot read ${values.trace}: ${(error as Error).message}`);
    });
    trace = parseTrace(text);
  }
  const options = {
    nodes: whole(values.nodes, 100, '--nodes', 1, 20_000),
    jobs: trace?.length ?? whole(values.jobs, 1_000, '--jobs', 1, 1_000_000),
    seed: whole(values.seed, 1, '--seed', 0, 2 ** 32 - 1),
    speed: number(values.speed, 1, '--speed', 0.1, 1000),
    reportMs: whole(values['report-ms'], 1_000, '--report-ms', 50, 60_000),
    lookupsPerJobS: number(values['lookups-per-job-s'], 0.1, '--lookups-per-job-s', 0, 1000),
    metadataServers: whole(values.metadata, 1, '--metadata', 1, 16),
    sampleMs: whole(values['sample-ms'], 1_000, '--sample-ms', 100, 60_000),
    // With renewals (24 at most) under the 64 streams of the one session to the controller.
    inFlight: whole(values['in-flight'], 16, '--in-flight', 1, 32),
    calibrateS: whole(values['calibrate-s'], 10, '--calibrate-s', 0, 600),
    maxJobS: values['max-job-s'] === undefined ? undefined : whole(values['max-job-s'], 0, '--max-job-s', 1, 86_400),
    // Arrivals of a generated trace over this many simulated seconds (default jobs / 10): 100,000 jobs over 1,000 s
    // are ten times the 10,000-job run's jobs at once, not the same load for ten times as long.
    spanS: values['span-s'] === undefined ? undefined : whole(values['span-s'], 0, '--span-s', 1, 10_000_000),
    // Simulated nodes whose report streams share one connection to the controller (1: a connection each, as real
    // nodes): 10,000 nodes with a connection each are past this machine's 20,000 open files, in both processes.
    nodesPerConnection: whole(values['nodes-per-connection'], 1, '--nodes-per-connection', 1, 64),
  };
  const result = await runScale({ ...options, ...(trace === undefined ? {} : { trace }) });
  const report: ScaleReport = {
    benchmark: 'scale',
    date: new Date().toISOString(),
    command: commandLine('scale', args),
    machine: machine(),
    options: { ...options, trace: values.trace },
    plan: result.plan,
    summary: result.summary,
    details: result.details,
    targets: targetsOf(result.summary, result.details),
    notes: result.notes,
    samples: result.samples,
    events: result.events,
    processes: result.processes,
  };
  if (values.json) await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
  if (values.html) await writeFile(values.html, await renderScaleHtml(report));
  process.stdout.write(scaleText(report));
  for (const file of [values.json, values.html]) if (file) process.stdout.write(`written: ${file}\n`);
}
