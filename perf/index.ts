// Benchmarks: each runs Satchel and its Redis baseline in the same run. Imports client and deploy.
export { runBench } from './cli.ts';
export { runColdstart, type ColdstartOptions, type ColdstartReport } from './coldstart.ts';
export { runAbuse, type AbuseOptions } from './abuse.ts';
export type { AbuseReport, AbuseRow } from './abuse-report.ts';
export { TcpProxy } from './nemesis/tcp-proxy.ts';
export { runNemesis, FAULT_KINDS, type FaultKind, type NemesisOptions, type NemesisResult } from './nemesis/run.ts';
