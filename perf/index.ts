// Benchmarks: each runs Satchel and its Redis baseline in the same run. Imports client and deploy.

export { type AbuseOptions, runAbuse } from './abuse.ts';
export type { AbuseReport, AbuseRow } from './abuse-report.ts';
export { runBench } from './cli.ts';
export { type ColdstartOptions, type ColdstartReport, runColdstart } from './coldstart.ts';
export { DEFAULT_SCHEDULE, FAULT_KINDS, type FaultKind, type NemesisOptions, type NemesisResult, runNemesis } from './nemesis/run.ts';
export { TcpProxy } from './nemesis/tcp-proxy.ts';
