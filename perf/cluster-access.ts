/**
 * How a benchmark reaches a cluster it did not start (`--cluster-file`, or `--controller` with `--key`), and how
 * it reads a console: every `/api` and `/metrics` read carries a token (`Authorization: Bearer`), the viewer's.
 */
import { readFile } from 'node:fs/promises';
import { type ErrorCode, isErrorCode, SatchelError } from '../proto/index.ts';

/** An existing cluster, as the flags or its cluster.json give it. */
export interface ExistingCluster {
  controller: string;
  /** The tenant key jobs are registered with (cluster.json `tenantKey`, or `--key`). */
  key: string;
  /** The console's URL, without a trailing slash; absent when not given (and not needed). */
  console?: string;
  /** What reads the console (cluster.json `viewerToken`, or `--viewer-token`); present whenever `console` is. */
  viewerToken?: string;
}

/** The flags that name an existing cluster; a benchmark given none of them starts its own. */
export const EXISTING_CLUSTER_FLAGS = {
  'cluster-file': { type: 'string' },
  controller: { type: 'string' },
  console: { type: 'string' },
  key: { type: 'string' },
  'viewer-token': { type: 'string' },
} as const;

export type ExistingClusterFlagValues = Partial<Record<keyof typeof EXISTING_CLUSTER_FLAGS, string>>;

const HOST_PORT = /^[^\s:]+:\d+$/;
const CONSOLE_URL = /^https?:\/\/[^\s/]+\/?$/;

/**
 * The existing cluster the flags name, or undefined when they name none (the benchmark starts its own). With
 * `console: true` the benchmark reads the console (samples, the servers to watch), so its URL and a token to
 * read it are required too. Every missing or contradicting flag is a BAD_REQUEST naming the flags, before
 * anything starts.
 */
export async function existingCluster(
  values: ExistingClusterFlagValues,
  needs: { console: boolean; why?: string },
): Promise<ExistingCluster | undefined> {
  const file = values['cluster-file'];
  const { controller, key } = values;
  const viewerToken = values['viewer-token'];
  if (file === undefined && controller === undefined) {
    for (const flag of ['console', 'key', 'viewer-token'] as const) {
      if (values[flag] !== undefined)
        throw new SatchelError(
          'BAD_REQUEST',
          `--${flag}: only with --controller or --cluster-file (a cluster the benchmark does not start)`,
        );
    }
    return undefined;
  }
  if (key !== undefined && key.trim() === '') throw new SatchelError('BAD_REQUEST', '--key: empty');
  if (file !== undefined) {
    if (controller !== undefined || values.console !== undefined)
      throw new SatchelError('BAD_REQUEST', '--cluster-file gives the controller and the console: not with --controller or --console');
    const info = await readClusterFile(file);
    const chosenKey = key ?? info.tenantKey;
    if (chosenKey === undefined)
      throw new SatchelError('BAD_REQUEST', `--cluster-file ${file} has no tenantKey: give --key KEY (a key from satchel tenant add)`);
    if (!needs.console)
      return { controller: info.controller, key: chosenKey, console: info.console, viewerToken: viewerToken ?? info.viewerToken };
    if (info.console === undefined)
      throw new SatchelError('BAD_REQUEST', `--cluster-file ${file} has no console${needs.why ? ` (${needs.why})` : ''}`);
    const token = viewerToken ?? info.viewerToken;
    if (token === undefined)
      throw new SatchelError(
        'BAD_REQUEST',
        `--cluster-file ${file} has no viewerToken to read the console with: give --viewer-token TOKEN`,
      );
    return { controller: info.controller, key: chosenKey, console: info.console, viewerToken: token };
  }
  if (!HOST_PORT.test(controller!))
    throw new SatchelError('BAD_REQUEST', `--controller: expected HOST:PORT, got ${JSON.stringify(controller)}`);
  if (needs.console && values.console === undefined)
    throw new SatchelError(
      'BAD_REQUEST',
      `--controller and --console go together${needs.why ? ` (${needs.why})` : ''}, or give --cluster-file FILE (satchel up's cluster.json)`,
    );
  if (values.console !== undefined && !CONSOLE_URL.test(values.console))
    throw new SatchelError('BAD_REQUEST', `--console: expected http://HOST:PORT, got ${JSON.stringify(values.console)}`);
  if (key === undefined)
    throw new SatchelError(
      'BAD_REQUEST',
      "--controller needs a tenant key: --key KEY (cluster.json tenantKey), or give --cluster-file FILE (satchel up's cluster.json) instead of --controller",
    );
  if (values.console !== undefined && viewerToken === undefined) {
    throw new SatchelError(
      'BAD_REQUEST',
      '--console needs a token to read it: --viewer-token TOKEN (cluster.json viewerToken), or give --cluster-file FILE instead of --controller and --console',
    );
  }
  return { controller: controller!, key, console: values.console?.replace(/\/$/, ''), viewerToken };
}

/** What a benchmark takes from a cluster.json (`satchel up` writes it into its state folder). */
async function readClusterFile(file: string): Promise<{ controller: string; console?: string; tenantKey?: string; viewerToken?: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new SatchelError(
      'BAD_REQUEST',
      `--cluster-file: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SatchelError('BAD_REQUEST', `--cluster-file: ${file} is not JSON (expected satchel up's cluster.json)`);
  }
  const info = (parsed ?? {}) as Record<string, unknown>;
  const text$ = (field: string): string | undefined =>
    typeof info[field] === 'string' && info[field] !== '' ? (info[field] as string) : undefined;
  const controller = text$('controller');
  if (controller === undefined || !HOST_PORT.test(controller))
    throw new SatchelError('BAD_REQUEST', `--cluster-file: ${file} has no controller HOST:PORT (expected satchel up's cluster.json)`);
  const console = text$('console');
  if (console !== undefined && !CONSOLE_URL.test(console))
    throw new SatchelError('BAD_REQUEST', `--cluster-file: ${file} has a console that is not http://HOST:PORT: ${JSON.stringify(console)}`);
  return { controller, console: console?.replace(/\/$/, ''), tenantKey: text$('tenantKey'), viewerToken: text$('viewerToken') };
}

/** The header that opens a console's reads. */
export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

/**
 * GET `path` from a console with its token, as JSON. A refusal is a SatchelError with the console's code (401 and
 * 403: UNAUTHORIZED, the wrong token or none), not an error body parsed as if it were the answer.
 */
export async function consoleJson<T>(console: string, path: string, token: string): Promise<T> {
  const response = await fetch(`${console}${path}`, { headers: bearer(token) });
  if (!response.ok) {
    const body = await response.text().catch(() => '');
    let code: ErrorCode = response.status === 401 || response.status === 403 ? 'UNAUTHORIZED' : 'UNAVAILABLE';
    try {
      const said = (JSON.parse(body) as { code?: unknown }).code;
      if (typeof said === 'string' && isErrorCode(said)) code = said;
    } catch {
      // Not the console's JSON error: the status says it.
    }
    throw new SatchelError(code, `${console}${path} answered ${response.status}${body ? `: ${body.slice(0, 200)}` : ''}`);
  }
  return (await response.json()) as T;
}
