/**
 * Which metadata servers hold a job's placement (issue 20: metadata sharded by job). Each job's placement lives
 * on `copies` of the servers, the ones scoring highest for the job under rendezvous hashing (as keys go to nodes,
 * placement.ts): the controller picks them when the job registers and records them with the job, tickets carry
 * them, and clients ask only them. A lookup that does not know them (a storage node answering a stale
 * `redisUrl`) asks every server in the same order, so the owners come first while the servers are the same.
 */
import { hashKey, mix } from './placement.ts';

/** Every server, the job's highest-scoring first. */
export function metadataOrder(jobId: string, servers: readonly string[]): string[] {
  const job = hashKey(jobId);
  return servers
    .map((server) => ({ server, score: mix(job ^ hashKey(server)) }))
    .sort((a, b) => b.score - a.score || (a.server < b.server ? -1 : 1))
    .map((s) => s.server);
}

/** The `copies` servers (all of them when fewer) that hold the job's placement. */
export function metadataOwners(jobId: string, servers: readonly string[], copies: number): string[] {
  return metadataOrder(jobId, servers).slice(0, Math.max(1, copies));
}
