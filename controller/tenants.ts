import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { SatchelError } from '../proto/index.ts';

/**
 * Tenants: who may create jobs. Each has a key (shown once, when it is made; the controller keeps its SHA-256
 * only) and optional limits: bytes its jobs may reserve together (every copy counted) and jobs at once. A job
 * belongs to the tenant whose key registered it; removing a tenant ends its jobs.
 */
export interface TenantRecord {
  name: string;
  /** SHA-256 of the key, hex. */
  keyHash: string;
  /** Bytes its jobs may reserve together, every copy counted; none when absent. */
  quotaBytes?: number;
  /** Jobs it may have at once; none when absent. */
  maxJobs?: number;
  createdAt: number;
}

/** The tenant `satchel up` makes, whose key cluster.json carries as `tenantKey`. */
export const DEFAULT_TENANT = 'default';

const TENANT_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** `sk1.<tenant>.<43 characters of base64url>`: the name first, so the lookup needs no scan. */
const KEY = /^sk1\.([a-z0-9][a-z0-9-]{0,62})\.([A-Za-z0-9_-]{43})$/;

export function isTenantName(name: unknown): name is string {
  return typeof name === 'string' && TENANT_NAME.test(name);
}

/** A fresh key for tenant `name`: 256 random bits. */
export function newTenantKey(name: string): string {
  if (!isTenantName(name))
    throw new SatchelError(
      'BAD_REQUEST',
      `a tenant name is 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit; got ${JSON.stringify(name)}`,
    );
  return `sk1.${name}.${randomBytes(32).toString('base64url')}`;
}

/**
 * The default tenant's key: derived from the cluster secret, so every process holding the secret (the
 * controller, `satchel up` writing cluster.json, tests) knows it without another file to keep.
 */
export function defaultTenantKey(secret: Uint8Array): string {
  return `sk1.${DEFAULT_TENANT}.${createHmac('sha256', secret).update('satchel-tenant:default').digest('base64url')}`;
}

export function isTenantKey(key: unknown): key is string {
  return typeof key === 'string' && KEY.test(key);
}

function hashOf(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** The tenants the controller knows, by name; persisted by the caller (ControllerStore). */
export class TenantTable {
  private readonly tenants = new Map<string, TenantRecord>();

  /** The tenant a key belongs to, or null: a malformed key, an unknown tenant, or not its key. */
  byKey(key: unknown): TenantRecord | null {
    if (typeof key !== 'string') return null;
    const match = KEY.exec(key);
    if (match === null) return null;
    const tenant = this.tenants.get(match[1]!);
    if (tenant === undefined) return null;
    // Constant-time: the comparison tells nothing about how much of the key was right.
    return timingSafeEqual(hashOf(key), Buffer.from(tenant.keyHash, 'hex')) ? tenant : null;
  }

  get(name: string): TenantRecord | undefined {
    return this.tenants.get(name);
  }

  list(): TenantRecord[] {
    return [...this.tenants.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Adds a tenant; `key` when the caller chose it (the default tenant's, from cluster.json), else a fresh one. */
  add(
    name: string,
    limits: { quotaBytes?: number; maxJobs?: number } = {},
    key = newTenantKey(name),
  ): { tenant: TenantRecord; key: string } {
    if (!isTenantName(name))
      throw new SatchelError(
        'BAD_REQUEST',
        `a tenant name is 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit; got ${JSON.stringify(name)}`,
      );
    if (this.tenants.has(name)) throw new SatchelError('BAD_REQUEST', `tenant ${name} exists already`);
    if (!isTenantKey(key) || KEY.exec(key)![1] !== name) throw new SatchelError('BAD_REQUEST', `not a key of tenant ${name}`);
    const { quotaBytes, maxJobs } = limits;
    if (quotaBytes !== undefined && !(Number.isFinite(quotaBytes) && quotaBytes > 0))
      throw new SatchelError('BAD_REQUEST', 'a tenant quota is a positive number of bytes');
    if (maxJobs !== undefined && !(Number.isInteger(maxJobs) && maxJobs > 0))
      throw new SatchelError('BAD_REQUEST', 'a tenant job limit is a positive whole number');
    const tenant: TenantRecord = { name, keyHash: hashOf(key).toString('hex'), createdAt: Date.now() };
    if (quotaBytes !== undefined) tenant.quotaBytes = quotaBytes;
    if (maxJobs !== undefined) tenant.maxJobs = maxJobs;
    this.tenants.set(name, tenant);
    return { tenant, key };
  }

  /** A record loaded from the store (or the default tenant's, its key given again by deploy/). */
  restore(tenant: TenantRecord): void {
    this.tenants.set(tenant.name, tenant);
  }

  remove(name: string): TenantRecord {
    const tenant = this.tenants.get(name);
    if (tenant === undefined) throw new SatchelError('BAD_REQUEST', `no tenant ${name}`);
    this.tenants.delete(name);
    return tenant;
  }

  /** The record `key` would make for `name`, to compare with a stored one (the default tenant's key changed). */
  static hashOf(key: string): string {
    return hashOf(key).toString('hex');
  }

  /** Whether any tenant has a quota on bytes (the controller sums usage per report only then). */
  hasQuotas(): boolean {
    for (const tenant of this.tenants.values()) if (tenant.quotaBytes !== undefined) return true;
    return false;
  }

  get size(): number {
    return this.tenants.size;
  }
}
