/** Calls to the console's JSON API: reads with the access token, changes with the admin token. */
import { getAccessToken, getAdminToken } from './session.ts';
import type { ClusterInfo, JobDetail } from './types.ts';

/** An answer other than 2xx, in words: `404 NO_SUCH_JOB: no job x`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, token: string, body?: unknown): Promise<T | null> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  const init: RequestInit = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new Error(`the console did not answer: ${(error as Error).message}`);
  }
  const text = await response.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (response.ok) return parsed as T | null;
  const fields = (parsed ?? {}) as { code?: string; message?: string };
  throw new ApiError(
    response.status,
    `${response.status} ${fields.code ?? response.statusText}: ${fields.message ?? (text || 'no details')}`,
  );
}

/** A change, with the admin token from the field at the top; resolves to the parsed body (or null). */
export function adminCall<T>(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<T | null> {
  const token = getAdminToken();
  if (!token) return Promise.reject(new Error('set the admin token first (field at the top, or open the page with #token=...)'));
  return call<T>(method, path, token, body);
}

function read<T>(path: string): Promise<T | null> {
  return call<T>('GET', path, getAccessToken());
}

export const readJob = (id: string) => read<JobDetail>(`/api/jobs/${encodeURIComponent(id)}`);
export const readCluster = () => read<ClusterInfo>('/api/cluster');
