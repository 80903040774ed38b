/**
 * The manifests in this folder cannot be applied here (no cluster), so this checks what can go wrong without one:
 * YAML that does not parse, satchel flags the CLI does not know (a pod that exits with status 2 on start), and
 * names and ports that must agree across files (Services, the secret, RBAC, the provisioner's StatefulSet naming,
 * each storage node's data and RESP ports).
 */

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import { parseAllDocuments } from 'yaml';
import { advertisedAddress, TIERS, type Tier } from '../../proto/index.ts';
import { CONTROL_PLANE_V8_FLAGS, STORAGE_NODE_ENV, STORAGE_NODE_V8_FLAGS } from '../child-process.ts';
import { KubernetesProvisioner } from '../kubernetes-provisioner.ts';
import { parseBytes } from '../options.ts';

// Kubernetes objects are plain parsed YAML, checked field by field: `any` below.
type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: any;
  [key: string]: any;
};

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const NAMESPACE = 'satchel';
const SECRET_NAME = 'satchel-secret';
const SECRET_KEY = 'secret';
const SUBCOMMANDS = ['controller', 'metadata', 'storage-node'] as const;
/** Added to `satchel controller` in the same change as the Kubernetes provisioner; checked as soon as help lists them. */
const PENDING_CONTROLLER_FLAGS = ['--provisioner', '--namespace'];

const deployReadme = readFileSync(join(HERE, '..', 'README.md'), 'utf8');
const files = readdirSync(HERE)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

interface Loaded {
  file: string;
  object: K8sObject;
}

function load(): { loaded: Loaded[]; errors: string[] } {
  const loaded: Loaded[] = [];
  const errors: string[] = [];
  for (const file of files) {
    for (const [i, doc] of parseAllDocuments(readFileSync(join(HERE, file), 'utf8')).entries()) {
      for (const e of [...doc.errors, ...doc.warnings]) errors.push(`${file} document ${i}: ${e.message}`);
      const object = doc.toJS() as K8sObject | null;
      if (object !== null) loaded.push({ file, object });
    }
  }
  return { loaded, errors };
}

const { loaded, errors: parseErrors } = load();
const objects = loaded.map((l) => l.object);
const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
const named = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);

/** The satchel help text, split into each command's section (from its line to the next command's). */
async function helpSections(): Promise<Map<string, string>> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'deploy/cli.ts', 'help'], { cwd: REPO });
  const sections = new Map<string, string>();
  let current: string | undefined;
  for (const line of stdout.split('\n')) {
    const start = /^ {2}([a-z][\w-]*)/.exec(line);
    if (start) {
      current = start[1]!;
      sections.set(current, (sections.get(current) ?? '') + line + '\n');
    } else if (current !== undefined) {
      sections.set(current, sections.get(current) + line + '\n');
    }
  }
  return sections;
}
let help = new Map<string, string>();
test.before(async () => {
  help = await helpSections();
});
const flagsIn = (text: string) => new Set(text.match(/--[a-z][a-z0-9-]*/g) ?? []);

interface SatchelContainer {
  owner: K8sObject;
  pod: any;
  container: any;
  subcommand: string;
  tokens: string[];
}

/** Every container that runs satchel: the image's entrypoint (`node bin/satchel.js`) with args, or a command naming it. */
function satchelContainers(): SatchelContainer[] {
  const found: SatchelContainer[] = [];
  for (const owner of objects) {
    const pod = owner.spec?.template?.spec;
    if (!pod) continue;
    for (const container of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
      const command: string[] = (container.command ?? []).map(String);
      const args: string[] = (container.args ?? []).map(String);
      let tokens: string[] | undefined;
      if (command.length > 0) {
        const at = command.findIndex((c) => /(^|\/)satchel(\.js)?$/.test(c));
        if (at >= 0) tokens = [...command.slice(at + 1), ...args];
      } else if (/^([^/]+\/)*satchel(:|@|$)/.test(String(container.image))) {
        tokens = args;
      }
      if (tokens) found.push({ owner, pod, container, subcommand: tokens[0] ?? '', tokens: tokens.slice(1) });
    }
  }
  return found;
}
const containers = satchelContainers();

function flag(c: SatchelContainer, name: string): string | undefined {
  const at = c.tokens.indexOf(name);
  return at >= 0 ? c.tokens[at + 1] : undefined;
}

/** A Kubernetes quantity (2Gi, 1536Mi, 500M) in bytes. */
function quantity(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(text));
  if (!match) throw new Error(`not a quantity: ${text}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

/** A container port by number or name. */
function containerPort(container: any, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return (container.ports ?? []).find((p: any) => p.name === port)?.containerPort;
}

const only = (c: SatchelContainer[], subcommand: string) => c.filter((x) => x.subcommand === subcommand);

test('every YAML document parses and names its apiVersion, kind and metadata.name; namespaced ones are in satchel', (t) => {
  t.true(files.length >= 7, `files: ${files.join(', ')}`);
  t.deepEqual(parseErrors, []);
  for (const { file, object } of loaded) {
    const where = `${file}: ${object.kind}/${object.metadata?.name}`;
    t.is(typeof object.apiVersion, 'string', where);
    t.is(typeof object.kind, 'string', where);
    t.is(typeof object.metadata?.name, 'string', where);
    t.truthy(object.metadata.name, where);
    if (!['Namespace', 'Kustomization'].includes(object.kind)) t.is(object.metadata.namespace, NAMESPACE, where);
  }
  t.truthy(named('Namespace', NAMESPACE));
});

test('the kustomization lists every other manifest', (t) => {
  const kustomization = ofKind('Kustomization')[0];
  t.truthy(kustomization);
  t.deepEqual([...(kustomization!.resources as string[])].sort(), files.filter((f) => f !== 'kustomization.yaml').sort());
});

test('every satchel container uses a known subcommand and only flags its help section lists', (t) => {
  t.deepEqual(containers.map((c) => c.subcommand).sort(), ['controller', 'metadata', 'storage-node', 'storage-node', 'storage-node']);
  for (const c of containers) {
    const where = `${c.owner.kind}/${c.owner.metadata.name} ${c.container.name}`;
    t.true((SUBCOMMANDS as readonly string[]).includes(c.subcommand), `${where}: ${c.subcommand}`);
    const known = flagsIn(help.get(c.subcommand) ?? '');
    t.true(known.size > 0, `no help section for ${c.subcommand}`);
    const used = c.tokens.filter((token) => token.startsWith('--'));
    t.is(new Set(used).size, used.length, `${where}: a flag is given twice`);
    for (const f of used) {
      // Every flag of these commands takes a value.
      const value = flag(c, f);
      t.true(value !== undefined && !value.startsWith('--'), `${where}: ${f} has no value`);
      if (c.subcommand === 'controller' && PENDING_CONTROLLER_FLAGS.includes(f) && !known.has(f)) {
        t.log(`note: \`satchel controller\` help does not list ${f} yet (being added with the Kubernetes provisioner); not checked`);
        continue;
      }
      t.true(known.has(f), `${where}: ${f} is not in \`satchel help\` for ${c.subcommand}`);
    }
    // Anything that is not a flag is the value of the flag before it.
    c.tokens.forEach((token, i) => {
      if (!token.startsWith('--')) t.true(i > 0 && c.tokens[i - 1]!.startsWith('--'), `${where}: stray argument ${token}`);
    });
  }
});

test('the cluster secret: every satchel container reads --secret-file from the satchel-secret Secret key the README creates', (t) => {
  t.true(containers.length > 0);
  for (const c of containers) {
    const where = `${c.owner.metadata.name}`;
    const file = flag(c, '--secret-file');
    t.truthy(file, where);
    const mount = (c.container.volumeMounts ?? []).find((m: any) => m.mountPath === dirname(file!));
    t.truthy(mount, `${where}: nothing mounted at ${dirname(file!)}`);
    const volume = (c.pod.volumes ?? []).find((v: any) => v.name === mount.name);
    t.is(volume?.secret?.secretName, SECRET_NAME, where);
    t.is(volume.secret.defaultMode, 0o440, `${where}: the secret should be readable by its user and group only`);
    t.deepEqual(
      (volume.secret.items as any[]).find((i) => i.path === basename(file!)),
      { key: SECRET_KEY, path: basename(file!) },
      `${where}: ${basename(file!)} is not key ${SECRET_KEY} of the Secret`,
    );
  }
  const readme = readFileSync(join(HERE, 'README.md'), 'utf8');
  t.regex(readme, new RegExp(`create secret generic ${SECRET_NAME} --from-literal=${SECRET_KEY}=`));
});

test('controller: Deployment, Service on its ports, advertised by Service name, Kubernetes provisioner in its namespace', (t) => {
  const [controller] = only(containers, 'controller');
  t.truthy(controller);
  const c = controller!;
  t.is(c.owner.kind, 'Deployment');
  t.is(c.owner.spec.replicas, 1);
  const service = named('Service', c.owner.metadata.name);
  t.truthy(service, 'a Service named like the Deployment');
  t.is(flag(c, '--advertise'), `${service!.metadata.name}.${NAMESPACE}.svc.cluster.local`);
  const byPort = (port: number) => (service!.spec.ports as any[]).find((p) => p.port === port);
  for (const [port, name] of [
    [Number(flag(c, '--port')), 'grpc'],
    [Number(flag(c, '--console-port')), 'console'],
  ] as const) {
    t.truthy(byPort(port), `Service port ${port}`);
    t.is(byPort(port).name, name);
    t.is(containerPort(c.container, byPort(port).targetPort), port);
  }
  t.deepEqual([Number(flag(c, '--port')), Number(flag(c, '--console-port'))], [7070, 7071]);
  for (const [k, v] of Object.entries(service!.spec.selector as Record<string, string>)) t.is(c.owner.spec.template.metadata.labels[k], v);
  t.is(flag(c, '--provisioner'), 'kubernetes');
  t.is(flag(c, '--namespace'), NAMESPACE);
  t.is(flag(c, '--host'), '0.0.0.0');
  t.is(containerPort(c.container, c.container.readinessProbe.tcpSocket.port), Number(flag(c, '--port')));
  // --state-dir is on a volume
  t.true((c.container.volumeMounts as any[]).some((m) => m.mountPath === flag(c, '--state-dir')));
});

test("RBAC: the controller's service account may read and replace statefulsets/scale, and read statefulsets and pods", (t) => {
  const deployment = only(containers, 'controller')[0]!.owner;
  const account = deployment.spec.template.spec.serviceAccountName as string;
  t.truthy(named('ServiceAccount', account));
  const binding = ofKind('RoleBinding').find((b) =>
    (b.subjects as any[]).some((s) => s.kind === 'ServiceAccount' && s.name === account && s.namespace === NAMESPACE),
  );
  t.truthy(binding, 'a RoleBinding for the controller ServiceAccount');
  t.is(binding!.roleRef.kind, 'Role');
  const role = named('Role', binding!.roleRef.name);
  t.truthy(role);
  const allows = (group: string, resource: string, verb: string) =>
    (role!.rules as any[]).some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
  // The provisioner GETs and PUTs (update) the scale subresource; patch for kubectl-style tooling.
  for (const verb of ['get', 'update', 'patch']) t.true(allows('apps', 'statefulsets/scale', verb), `statefulsets/scale ${verb}`);
  for (const verb of ['get', 'list']) {
    t.true(allows('apps', 'statefulsets', verb), `statefulsets ${verb}`);
    t.true(allows('', 'pods', verb), `pods ${verb}`);
  }
  t.false(
    (role!.rules as any[]).some((r) => r.verbs.includes('*') || r.resources.includes('*')),
    'no wildcards',
  );
});

test('metadata: Deployment + Service, advertised by Service name, dials the controller Service', (t) => {
  const [metadata] = only(containers, 'metadata');
  t.truthy(metadata);
  const m = metadata!;
  const service = named('Service', m.owner.metadata.name);
  t.truthy(service);
  t.is(flag(m, '--advertise'), `${service!.metadata.name}.${NAMESPACE}.svc.cluster.local`);
  t.is(flag(m, '--port'), '7072');
  t.true((service!.spec.ports as any[]).some((p) => p.port === 7072 && containerPort(m.container, p.targetPort) === 7072));
  t.is(containerPort(m.container, m.container.readinessProbe.tcpSocket.port), 7072);
});

test('storage: one StatefulSet per tier, named as the provisioner expects, each with a headless Service and its tier', (t) => {
  const statefulSets = ofKind('StatefulSet');
  t.deepEqual(statefulSets.map((s) => s.metadata.name).sort(), ['satchel-dram', 'satchel-hdd', 'satchel-ssd']);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'none', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'c', cluster: 'none', user: 'u' }],
    currentContext: 'c',
  });
  const provisioner = new KubernetesProvisioner({ namespace: NAMESPACE, kubeConfig }); // default naming
  const controller = only(containers, 'controller')[0]!;
  const controllerAddress = `${flag(controller, '--advertise')}:${flag(controller, '--port')}`;
  const seen = new Set<Tier>();
  for (const set of statefulSets) {
    const name = set.metadata.name;
    const nodes = only(containers, 'storage-node').filter((c) => c.owner === set);
    t.is(nodes.length, 1, name);
    const node = nodes[0]!;
    const tier = flag(node, '--tier') as Tier;
    t.true(TIERS.includes(tier), `${name}: --tier ${tier}`);
    seen.add(tier);
    // The provisioner's default name for this tier is this StatefulSet: its pods' ids are what it picks.
    t.is(provisioner.pickForRemoval(tier, [`${name}-0`, `${name}-1`]), `${name}-1`, `${name} is not satchel-${tier}`);
    t.is(set.spec.template.spec.nodeSelector?.['satchel.io/tier'], tier, `${name}: nodeSelector`);
    t.is(set.spec.replicas, undefined, `${name}: replicas belongs to the controller, not to kubectl apply`);

    const service = named('Service', set.spec.serviceName);
    t.truthy(service, `${name}: serviceName ${set.spec.serviceName} is not a Service`);
    t.is(service!.spec.clusterIP, 'None', `${name}: its Service is not headless`);
    for (const [k, v] of Object.entries(service!.spec.selector as Record<string, string>))
      t.is(set.spec.template.metadata.labels[k], v, `${name}: Service selector`);
    for (const [k, v] of Object.entries(set.spec.selector.matchLabels as Record<string, string>))
      t.is(set.spec.template.metadata.labels[k], v, `${name}: selector`);

    // Identity: pod name as node id, pod DNS name under the headless Service as its address.
    t.is(flag(node, '--id'), '$(POD_NAME)');
    t.is(flag(node, '--advertise'), `$(POD_NAME).${set.spec.serviceName}.${NAMESPACE}.svc.cluster.local`);
    const env = new Map((node.container.env as any[]).map((e) => [e.name, e]));
    t.deepEqual(env.get('POD_NAME')?.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
    for (const [k, v] of Object.entries(STORAGE_NODE_ENV)) t.is(env.get(k)?.value, v, `${name}: ${k}`);
    t.is(flag(node, '--controller'), controllerAddress);
    t.is(flag(node, '--host'), '0.0.0.0');
    t.is(flag(node, '--port'), '7000');
    t.true((service!.spec.ports as any[]).some((p) => p.port === 7000 && containerPort(node.container, p.targetPort) === 7000));
    t.is(containerPort(node.container, node.container.readinessProbe.tcpSocket.port), 7000);
    // Redis clients: the RESP front door on a fixed port, in the container and the Service, announced under the
    // node's advertised name as the data port is (a job's redisUrl, CLUSTER SLOTS and MOVED name it); under TLS
    // the certificate deploy/README.md makes names every pod of the Service.
    t.is(flag(node, '--resp-port'), '6379', `${name}: --resp-port`);
    const resp = (service!.spec.ports as any[]).find((p) => p.port === 6379);
    t.is(resp?.name, 'resp', `${name}: Service port 6379`);
    t.is(containerPort(node.container, resp.targetPort), 6379, `${name}: container port resp`);
    t.is(
      advertisedAddress('0.0.0.0:6379', flag(node, '--advertise')),
      `$(POD_NAME).${set.spec.serviceName}.${NAMESPACE}.svc.cluster.local:6379`,
    );
    t.true(deployReadme.includes(`DNS:*.${set.spec.serviceName}.${NAMESPACE}.svc.cluster.local`), `${name}: the TLS certificate's names`);

    const capacity = parseBytes(flag(node, '--capacity')!, '--capacity');
    const mounts = node.container.volumeMounts as any[];
    if (tier === 'dram') {
      // Values are in process memory: the limit must hold them.
      t.true(quantity(node.container.resources.limits.memory) > capacity, `${name}: memory limit ≤ --capacity`);
      t.true(quantity(node.container.resources.requests.memory) > capacity, `${name}: memory request ≤ --capacity`);
      const memory = (set.spec.template.spec.volumes as any[]).find((v) => v.emptyDir?.medium === 'Memory');
      t.truthy(memory, `${name}: no memory-backed volume`);
      t.truthy(memory.emptyDir.sizeLimit);
      t.true(mounts.some((m) => m.name === memory.name));
      t.is(flag(node, '--path'), undefined);
    } else {
      const path = flag(node, '--path');
      t.truthy(path, `${name}: --path`);
      const claim = (set.spec.volumeClaimTemplates as any[] | undefined)?.find((v) =>
        mounts.some((m) => m.name === v.metadata.name && path!.startsWith(m.mountPath + '/')),
      );
      t.truthy(claim, `${name}: --path ${path} is not inside a volumeClaimTemplate's mount`);
      t.truthy(claim.spec.storageClassName);
      t.true(quantity(claim.spec.resources.requests.storage) > capacity, `${name}: volume smaller than --capacity`);
    }
  }
  t.deepEqual([...seen].sort(), [...TIERS].sort());
});

test('metadata and storage nodes dial the controller Service; only the controller gets an API token', (t) => {
  const controller = only(containers, 'controller')[0]!;
  const address = `${flag(controller, '--advertise')}:${flag(controller, '--port')}`;
  for (const c of [...only(containers, 'metadata'), ...only(containers, 'storage-node')]) {
    t.is(flag(c, '--controller'), address, c.owner.metadata.name);
    t.is(c.pod.automountServiceAccountToken, false, c.owner.metadata.name);
  }
});

test("every satchel container runs node with its role's V8 flags, as satchel up does (child-process.ts)", (t) => {
  const roles = containers.filter((c) => ['controller', 'metadata', 'storage-node'].includes(c.subcommand));
  t.true(roles.length >= 5);
  for (const c of roles) {
    const node: string[] = (c.container.command ?? []).map(String);
    const wanted = c.subcommand === 'storage-node' ? STORAGE_NODE_V8_FLAGS : CONTROL_PLANE_V8_FLAGS;
    for (const v8Flag of wanted) t.true(node.includes(v8Flag), `${c.owner.metadata?.name}: ${v8Flag}`);
  }
});
