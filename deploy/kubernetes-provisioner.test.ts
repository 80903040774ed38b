import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import { SatchelError } from '../proto/index.ts';
import { KubernetesProvisioner } from './kubernetes-provisioner.ts';

interface Recorded {
  method: string;
  path: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: unknown;
}

const SCALE_PATH = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/statefulsets\/([^/]+)\/scale$/;

/**
 * A stand-in for the API server's StatefulSet scale subresource: records every request, serves autoscaling/v1
 * Scale objects, and, like the real one, refuses a PUT whose resourceVersion is stale with 409 Conflict.
 */
class FakeApiServer {
  readonly requests: Recorded[] = [];
  /** `<namespace>/<name>` → replicas; a missing StatefulSet is 404. */
  readonly replicas = new Map<string, number>();
  private version = 1;
  /** Answer the next requests with these statuses instead (a Status object, as the API server does). */
  failures: number[] = [];
  /** Called after a GET is answered, before the client's next request: lets a test race another writer. */
  afterGet: (() => void) | undefined;
  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeApiServer> {
    const server = createServer();
    const fake = new FakeApiServer(server);
    server.on('request', (req, res) => void fake.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  bump(key: string, replicas: number): void {
    this.replicas.set(key, replicas);
    this.version++;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push({
      method: req.method ?? '',
      path: url.pathname + url.search,
      contentType: req.headers['content-type'],
      authorization: req.headers.authorization,
      body: text ? JSON.parse(text) : undefined,
    });
    const status = (code: number, reason: string, message: string) =>
      send(res, code, { apiVersion: 'v1', kind: 'Status', status: 'Failure', reason, message, code });
    const failure = this.failures.shift();
    if (failure !== undefined)
      return status(
        failure,
        failure === 403 ? 'Forbidden' : 'InternalError',
        failure === 403 ? 'statefulsets.apps "x" is forbidden' : 'etcd is sad',
      );
    const match = SCALE_PATH.exec(url.pathname);
    if (!match) return status(404, 'NotFound', `no route ${url.pathname}`);
    const [, namespace = '', name = ''] = match;
    const key = `${namespace}/${name}`;
    const current = this.replicas.get(key);
    if (current === undefined) return status(404, 'NotFound', `statefulsets.apps "${name}" not found`);
    const scale = (replicas: number) => ({
      apiVersion: 'autoscaling/v1',
      kind: 'Scale',
      metadata: { name, namespace, resourceVersion: String(this.version) },
      spec: { replicas },
      status: { replicas },
    });
    if (req.method === 'GET') {
      send(res, 200, scale(current));
      const after = this.afterGet;
      this.afterGet = undefined;
      after?.();
      return;
    }
    if (req.method === 'PUT' || req.method === 'PATCH') {
      const body = JSON.parse(text) as { metadata?: { resourceVersion?: string }; spec?: { replicas?: number } };
      const sent = body.metadata?.resourceVersion;
      if (sent !== undefined && sent !== String(this.version))
        return status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
      const replicas = body.spec?.replicas;
      if (typeof replicas !== 'number') return status(422, 'Invalid', 'spec.replicas is required');
      this.bump(key, replicas);
      return send(res, 200, scale(replicas));
    }
    return status(405, 'MethodNotAllowed', `${req.method} not allowed`);
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't0ken' }],
    contexts: [{ name: 'c', cluster: 'test', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

async function setup(t: { teardown: (fn: () => Promise<void>) => void }, statefulSetName?: (tier: 'dram' | 'ssd' | 'hdd') => string) {
  const api = await FakeApiServer.start();
  t.teardown(() => api.close());
  const provisioner = new KubernetesProvisioner({ namespace: 'satchel', kubeConfig: kubeConfigFor(api.url), statefulSetName });
  return { api, provisioner };
}

const scalePath = (name: string) => `/apis/apps/v1/namespaces/satchel/statefulsets/${name}/scale`;

test('name is kubernetes', async (t) => {
  const { provisioner } = await setup(t);
  t.is(provisioner.name, 'kubernetes');
});

test('launch reads the scale and PUTs it back with one more replica, authenticated with the bearer token', async (t) => {
  const { api, provisioner } = await setup(t);
  api.bump('satchel/satchel-dram', 2);
  const version = '2'; // one bump
  await provisioner.launch('dram');
  t.is(api.replicas.get('satchel/satchel-dram'), 3);
  t.deepEqual(
    api.requests.map((r) => ({ method: r.method, path: r.path, authorization: r.authorization })),
    [
      { method: 'GET', path: scalePath('satchel-dram'), authorization: 'Bearer t0ken' },
      { method: 'PUT', path: scalePath('satchel-dram'), authorization: 'Bearer t0ken' },
    ],
  );
  const put = api.requests[1]!;
  t.is(put.contentType, 'application/json');
  t.like(put.body, {
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: { name: 'satchel-dram', namespace: 'satchel', resourceVersion: version },
    spec: { replicas: 3 },
  });
  t.is(api.requests[0]!.body, undefined);
});

test('launch retries on 409 Conflict when another writer scaled in between, and does not lose its write', async (t) => {
  const { api, provisioner } = await setup(t);
  api.bump('satchel/satchel-ssd', 1);
  api.afterGet = () => api.bump('satchel/satchel-ssd', 4); // e.g. kubectl scale, between our GET and PUT
  await provisioner.launch('ssd');
  t.is(api.replicas.get('satchel/satchel-ssd'), 5);
  t.deepEqual(
    api.requests.map((r) => r.method),
    ['GET', 'PUT', 'GET', 'PUT'],
  );
  t.like(api.requests[1]!.body, { spec: { replicas: 2 } }); // refused: stale resourceVersion
  t.like(api.requests[3]!.body, { spec: { replicas: 5 } });
});

test('concurrent launches both count', async (t) => {
  const { api, provisioner } = await setup(t);
  api.bump('satchel/satchel-hdd', 0);
  await Promise.all([provisioner.launch('hdd'), provisioner.launch('hdd'), provisioner.launch('hdd')]);
  t.is(api.replicas.get('satchel/satchel-hdd'), 3);
});

test('pickForRemoval names the highest ordinal of the tier StatefulSet, ignoring other pods; no request made', async (t) => {
  const { api, provisioner } = await setup(t);
  const ids = ['satchel-dram-0', 'satchel-dram-2', 'satchel-dram-1', 'satchel-ssd-5', 'other'];
  t.is(provisioner.pickForRemoval('dram', ids), 'satchel-dram-2');
  t.is(provisioner.pickForRemoval('ssd', ids), 'satchel-ssd-5');
  t.is(provisioner.pickForRemoval('hdd', ids), null);
  t.is(provisioner.pickForRemoval('dram', []), null);
  // Numeric, not lexical; names that only share a prefix are not pods of the set.
  t.is(
    provisioner.pickForRemoval('dram', [
      'satchel-dram-9',
      'satchel-dram-10',
      'satchel-dram-x-11',
      'satchel-dram-',
      'satchel-dram-012',
      'satchel-dram-3a',
    ]),
    'satchel-dram-10',
  );
  t.is(api.requests.length, 0);
});

test('remove of the highest ordinal scales down by one', async (t) => {
  const { api, provisioner } = await setup(t);
  api.bump('satchel/satchel-dram', 3);
  await provisioner.remove('dram', 'satchel-dram-2');
  t.is(api.replicas.get('satchel/satchel-dram'), 2);
  t.deepEqual(
    api.requests.map((r) => [r.method, r.path, r.authorization]),
    [
      ['GET', scalePath('satchel-dram'), 'Bearer t0ken'],
      ['PUT', scalePath('satchel-dram'), 'Bearer t0ken'],
    ],
  );
  t.like(api.requests[1]!.body, { kind: 'Scale', spec: { replicas: 2 } });
});

test('remove of any other node → BAD_REQUEST saying why, and nothing is written', async (t) => {
  const { api, provisioner } = await setup(t);
  api.bump('satchel/satchel-dram', 3);
  const error = await t.throwsAsync(provisioner.remove('dram', 'satchel-dram-1'), { instanceOf: SatchelError });
  t.is((error as SatchelError).code, 'BAD_REQUEST');
  t.regex(error!.message, /highest ordinal/);
  t.regex(error!.message, /satchel-dram-2/);
  t.deepEqual(
    api.requests.map((r) => r.method),
    ['GET'],
  );
  // Not a pod of this tier's StatefulSet at all: refused before any request.
  api.requests.length = 0;
  for (const id of ['satchel-ssd-2', 'other', 'satchel-dram-']) {
    const bad = await t.throwsAsync(provisioner.remove('dram', id), { instanceOf: SatchelError });
    t.is((bad as SatchelError).code, 'BAD_REQUEST');
  }
  // Already scaled down by someone else: the id is past the end.
  const gone = await t.throwsAsync(provisioner.remove('dram', 'satchel-dram-5'), { instanceOf: SatchelError });
  t.is((gone as SatchelError).code, 'BAD_REQUEST');
  t.deepEqual(
    api.requests.map((r) => r.method),
    ['GET'],
  );
  t.is(api.replicas.get('satchel/satchel-dram'), 3);
});

test('remove re-checks the ordinal after a conflict', async (t) => {
  const { api, provisioner } = await setup(t);
  api.bump('satchel/satchel-dram', 3);
  api.afterGet = () => api.bump('satchel/satchel-dram', 4); // a launch landed between our read and write
  const error = await t.throwsAsync(provisioner.remove('dram', 'satchel-dram-2'), { instanceOf: SatchelError });
  t.is((error as SatchelError).code, 'BAD_REQUEST');
  t.deepEqual(
    api.requests.map((r) => r.method),
    ['GET', 'PUT', 'GET'],
  );
  t.is(api.replicas.get('satchel/satchel-dram'), 4);
});

test('API errors (500, 403, 404, refused) → UNAVAILABLE with the HTTP status', async (t) => {
  const { api, provisioner } = await setup(t);
  api.bump('satchel/satchel-dram', 1);
  api.failures = [500];
  const e500 = await t.throwsAsync(provisioner.launch('dram'), { instanceOf: SatchelError });
  t.is((e500 as SatchelError).code, 'UNAVAILABLE');
  t.regex(e500!.message, /HTTP 500/);
  t.regex(e500!.message, /etcd is sad/);

  api.failures = [403];
  const e403 = await t.throwsAsync(provisioner.remove('dram', 'satchel-dram-0'), { instanceOf: SatchelError });
  t.is((e403 as SatchelError).code, 'UNAVAILABLE');
  t.regex(e403!.message, /HTTP 403/);
  t.regex(e403!.message, /forbidden/);

  // The write refused (RBAC without update on statefulsets/scale): still UNAVAILABLE, nothing changed.
  api.requests.length = 0;
  api.failures = [];
  const failPut = () => {
    api.failures = [403];
  };
  api.afterGet = failPut;
  const ePut = await t.throwsAsync(provisioner.launch('dram'), { instanceOf: SatchelError });
  t.is((ePut as SatchelError).code, 'UNAVAILABLE');
  t.regex(ePut!.message, /HTTP 403/);
  t.deepEqual(
    api.requests.map((r) => r.method),
    ['GET', 'PUT'],
  );
  t.is(api.replicas.get('satchel/satchel-dram'), 1);

  const e404 = await t.throwsAsync(provisioner.launch('hdd'), { instanceOf: SatchelError });
  t.is((e404 as SatchelError).code, 'UNAVAILABLE');
  t.regex(e404!.message, /HTTP 404/);

  const url = api.url;
  await api.close();
  const refused = new KubernetesProvisioner({ namespace: 'satchel', kubeConfig: kubeConfigFor(url) });
  const eConn = await t.throwsAsync(refused.launch('dram'), { instanceOf: SatchelError });
  t.is((eConn as SatchelError).code, 'UNAVAILABLE');
});

test('a custom statefulSetName is used for requests and for node ids', async (t) => {
  const { api, provisioner } = await setup(t, (tier) => `store-${tier}-pool`);
  api.bump('satchel/store-ssd-pool', 2);
  await provisioner.launch('ssd');
  t.deepEqual(
    api.requests.map((r) => [r.method, r.path]),
    [
      ['GET', scalePath('store-ssd-pool')],
      ['PUT', scalePath('store-ssd-pool')],
    ],
  );
  t.is(provisioner.pickForRemoval('ssd', ['satchel-ssd-7', 'store-ssd-pool-1', 'store-ssd-pool-2']), 'store-ssd-pool-2');
  t.is(provisioner.pickForRemoval('ssd', ['satchel-ssd-7']), null);
  await provisioner.remove('ssd', 'store-ssd-pool-2');
  t.is(api.replicas.get('satchel/store-ssd-pool'), 2);
});

test('bad options and tiers → BAD_REQUEST', (t) => {
  const kubeConfig = kubeConfigFor('http://127.0.0.1:1');
  t.throws(() => new KubernetesProvisioner({ namespace: '', kubeConfig }), { instanceOf: SatchelError, message: /namespace/ });
  const provisioner = new KubernetesProvisioner({ namespace: 'satchel', kubeConfig });
  const error = t.throws(() => provisioner.pickForRemoval('tape' as 'dram', ['satchel-tape-0']));
  t.is((error as SatchelError).code, 'BAD_REQUEST');
});
