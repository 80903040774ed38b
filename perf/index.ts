// Benchmarks: each runs Satchel and its Redis baseline in the same run. Imports client and deploy.
export { runBench } from './cli.ts';
export { TcpProxy } from './nemesis/tcp-proxy.ts';
