/**
 * `satchel tenant add|list|remove`: the admin's calls to the controller (AddTenant, ListTenants, RemoveTenant),
 * with the controller address and admin token from a cluster's cluster.json, or given as flags.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CONTROLLER_SERVICE, ControlClient } from '../proto/grpc.ts';
import { type ControllerMethods, SatchelError, type TenantInfo } from '../proto/index.ts';
import { parseBytes, parseCount } from './options.ts';

export const TENANT_USAGE = `  tenant add NAME [--quota SIZE] [--max-jobs N]   a tenant and its key (printed once: keep it)
  tenant list             every tenant, its limits, jobs and reserved bytes
  tenant remove NAME      the tenant's key stops working and its jobs are deregistered
    --state-dir DIR         the cluster's folder, for its cluster.json (default ./.satchel)
    --controller HOST:PORT --admin-token TOKEN   instead of cluster.json
    --tls-ca FILE           the controller serves TLS: check it against this CA (PEM)
    --json                  print JSON
`;

export async function tenantCommand(args: string[], out: (text: string) => void = (t) => process.stdout.write(t)): Promise<void> {
  const { values: flags, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      'state-dir': { type: 'string' },
      controller: { type: 'string' },
      'admin-token': { type: 'string' },
      'tls-ca': { type: 'string' },
      quota: { type: 'string' },
      'max-jobs': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const [action, name, ...extra] = positionals;
  if (extra.length > 0) throw new SatchelError('BAD_REQUEST', `tenant: unexpected ${JSON.stringify(extra.join(' '))}`);
  if (action !== 'add' && action !== 'list' && action !== 'remove')
    throw new SatchelError('BAD_REQUEST', 'tenant: expected add, list or remove');
  if (action !== 'list' && name === undefined) throw new SatchelError('BAD_REQUEST', `tenant ${action}: which tenant? (NAME)`);
  if (action !== 'add' && (flags.quota !== undefined || flags['max-jobs'] !== undefined))
    throw new SatchelError('BAD_REQUEST', '--quota and --max-jobs go with tenant add');
  const { controller, token } = await adminOf(flags);
  const ca = flags['tls-ca'] === undefined ? undefined : await readFile(flags['tls-ca'], 'utf8');
  const client = new ControlClient<ControllerMethods>(CONTROLLER_SERVICE, controller, 10_000, ca === undefined ? undefined : { ca });
  try {
    if (action === 'add') {
      const quotaBytes = flags.quota === undefined ? undefined : parseBytes(flags.quota, '--quota');
      const maxJobs = flags['max-jobs'] === undefined ? undefined : parseCount(flags['max-jobs'], '--max-jobs', 1_000_000);
      const reply = await client.call('AddTenant', {
        token,
        name: name!,
        ...(quotaBytes === undefined ? {} : { quotaBytes }),
        ...(maxJobs === undefined ? {} : { maxJobs }),
      });
      if (flags.json === true) return out(JSON.stringify({ ...reply.tenant, key: reply.key }) + '\n');
      out(
        `tenant ${name} added${limitsText(reply.tenant!)}\n  key ${reply.key}\n  (shown once: the controller keeps only its hash. Satchel.connect(controller, { key }))\n`,
      );
    } else if (action === 'list') {
      const { tenants } = await client.call('ListTenants', { token });
      if (flags.json === true) return out(JSON.stringify(tenants) + '\n');
      out(`${'TENANT'.padEnd(24)} ${'JOBS'.padStart(6)} ${'MAX JOBS'.padStart(9)} ${'RESERVED'.padStart(16)} ${'QUOTA'.padStart(16)}\n`);
      for (const t of tenants) {
        out(
          `${t.name.padEnd(24)} ${String(t.jobs).padStart(6)} ${(t.maxJobs === 0 ? '-' : String(t.maxJobs)).padStart(9)} ${String(t.reservedBytes).padStart(16)} ${(t.quotaBytes === 0 ? '-' : String(t.quotaBytes)).padStart(16)}\n`,
        );
      }
    } else {
      const { jobsDeregistered } = await client.call('RemoveTenant', { token, name: name! });
      if (flags.json === true) return out(JSON.stringify({ name, jobsDeregistered }) + '\n');
      out(`tenant ${name} removed; ${jobsDeregistered} of its jobs deregistered\n`);
    }
  } finally {
    client.close();
  }
}

function limitsText(t: TenantInfo): string {
  const limits = [t.quotaBytes > 0 ? `quota ${t.quotaBytes} bytes` : '', t.maxJobs > 0 ? `at most ${t.maxJobs} jobs` : ''].filter(Boolean);
  return limits.length === 0 ? '' : ` (${limits.join(', ')})`;
}

/** The controller and admin token: from the flags, or from the cluster's cluster.json. */
async function adminOf(flags: {
  'state-dir'?: string;
  controller?: string;
  'admin-token'?: string;
}): Promise<{ controller: string; token: string }> {
  if (flags.controller !== undefined || flags['admin-token'] !== undefined) {
    if (flags.controller === undefined || flags['admin-token'] === undefined)
      throw new SatchelError('BAD_REQUEST', '--controller and --admin-token go together');
    return { controller: flags.controller, token: flags['admin-token'] };
  }
  const path = join(flags['state-dir'] ?? '.satchel', 'cluster.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SatchelError(
      'BAD_REQUEST',
      `cannot read ${path} (is a cluster up there? --state-dir DIR, or --controller and --admin-token): ${(error as Error).message}`,
      { cause: error },
    );
  }
  const file = JSON.parse(text) as { controller?: unknown; adminToken?: unknown };
  if (typeof file.controller !== 'string' || typeof file.adminToken !== 'string')
    throw new SatchelError('BAD_REQUEST', `${path} has no controller and adminToken`);
  return { controller: file.controller, token: file.adminToken };
}
