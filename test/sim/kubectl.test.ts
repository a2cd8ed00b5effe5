// Conformance: the real kubectl (1.32, chosen by the dispatcher from /version) against the
// simulator. Each test gets its own kubeconfig and discovery cache in a temp dir.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { typeOf } from '../../src/sim/resources.ts';
import { sleepUntil } from '../helpers.ts';
import { kubectl, type Kubectl } from './kubectl.ts';

let sim: Simulator;
let root: string;

beforeAll(async () => {
  sim = await startSimulator({ timeScale: 20, podStartupDelayMs: 1000 });
  root = await mkdtemp(path.join(os.tmpdir(), 'keelson-kubectl-'));
});

afterAll(async () => {
  await sim?.close();
  await rm(root, { recursive: true, force: true });
});

const kubectlFor = (name: string) => kubectl(sim, root, name);

async function manifest(name: string, text: string): Promise<string> {
  const file = path.join(root, `${name}-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, text);
  return file;
}

function deployment(name: string, opts: { replicas?: number; image?: string; extraLabel?: boolean; deadline?: number } = {}): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  labels:
    app: ${name}
${opts.extraLabel ? '    team: blue\n' : ''}spec:
  replicas: ${opts.replicas ?? 2}
${opts.deadline ? `  progressDeadlineSeconds: ${opts.deadline}\n` : ''}  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: main
        image: ${opts.image ?? 'nginx:1.27'}
        ports: [{containerPort: 80}]
`;
}

function service(name: string, port: number): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: ${port}, targetPort: 80}]
`;
}

async function getJson(k: Kubectl, args: string[]): Promise<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await k([...args, '-o', 'json']);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

describe('kubectl against the simulator', () => {
  it('apply --server-side creates, updates and removes dropped fields of a Deployment and a Service', async () => {
    const k = await kubectlFor('apply');
    const first = await manifest('apply', `${deployment('shop', { extraLabel: true })}---\n${service('shop', 8080)}`);
    const created = await k(['apply', '--server-side', '-f', first]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toContain('deployment.apps/shop serverside-applied');
    expect(created.stdout).toContain('service/shop serverside-applied');
    let d = await getJson(k, ['get', 'deploy', 'shop']);
    expect(d.metadata.labels).toEqual({ app: 'shop', team: 'blue' });
    expect(d.metadata.generation).toBe(1);
    expect(d.spec.strategy.rollingUpdate).toEqual({ maxSurge: '25%', maxUnavailable: '25%' });

    const second = await manifest('apply', `${deployment('shop', { replicas: 3, image: 'nginx:1.28' })}---\n${service('shop', 9090)}`);
    const updated = await k(['apply', '--server-side', '-f', second]);
    expect(updated.code).toBe(0);
    d = await getJson(k, ['get', 'deploy', 'shop']);
    expect(d.metadata.labels).toEqual({ app: 'shop' }); // team was dropped from the applied file
    expect(d.spec.replicas).toBe(3);
    expect(d.spec.template.spec.containers[0].image).toBe('nginx:1.28');
    expect(d.metadata.generation).toBe(2);
    const svc = await getJson(k, ['get', 'svc', 'shop']);
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 9090, protocol: 'TCP', targetPort: 80 }]);
    expect(svc.spec.clusterIP).toMatch(/^10\.96\./);
  });

  it('refuses a second field manager’s conflicting apply unless --force-conflicts', async () => {
    const k = await kubectlFor('conflict');
    expect((await k(['apply', '--server-side', '-f', await manifest('c', deployment('owned', { replicas: 2 }))])).code).toBe(0);
    const other = await manifest('c2', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: owned}\nspec:\n  replicas: 4\n');
    const refused = await k(['apply', '--server-side', '--field-manager', 'other', '-f', other]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas');
    expect(refused.stderr).toContain('--force-conflicts');
    expect((await getJson(k, ['get', 'deploy', 'owned'])).spec.replicas).toBe(2);
    const forced = await k(['apply', '--server-side', '--field-manager', 'other', '--force-conflicts', '-f', other]);
    expect(forced.code).toBe(0);
    const d = await getJson(k, ['get', 'deploy', 'owned', '--show-managed-fields']);
    expect(d.spec.replicas).toBe(4);
    const other_ = d.metadata.managedFields.find((m: { manager: string }) => m.manager === 'other');
    expect(other_.fieldsV1).toEqual({ 'f:spec': { 'f:replicas': {} } });
  });

  it('get deploy prints READY, UP-TO-DATE and AVAILABLE columns', async () => {
    const k = await kubectlFor('get');
    expect((await k(['apply', '--server-side', '-f', await manifest('g', deployment('cols', { replicas: 2 }))])).code).toBe(0);
    const out = await sleepUntil(async () => {
      const r = await k(['get', 'deploy', 'cols']);
      return /cols\s+2\/2\s+2\s+2\s+\S+/.test(r.stdout) ? r.stdout : undefined;
    }, { message: 'cols to show 2/2 ready' });
    expect(out.split('\n')[0]).toMatch(/^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE$/);
  });

  it('rollout status succeeds for a healthy image and fails at the progress deadline for an unpullable one', async () => {
    const k = await kubectlFor('rollout');
    expect((await k(['apply', '--server-side', '-f', await manifest('r', deployment('healthy', { replicas: 3 }))])).code).toBe(0);
    const ok = await k(['rollout', 'status', 'deploy/healthy', '--timeout=30s']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('deployment "healthy" successfully rolled out');

    // 30 simulated seconds of deadline pass in ~1.5 s at timeScale 20.
    expect((await k(['apply', '--server-side', '-f', await manifest('r2', deployment('broken', { image: 'example.com/doesnotexist:1', deadline: 30 }))])).code).toBe(0);
    const failed = await k(['rollout', 'status', 'deploy/broken', '--timeout=30s']);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain('deployment "broken" exceeded its progress deadline');
    const pods = await k(['get', 'pods', '-l', 'app=broken']);
    expect(pods.stdout).toMatch(/ErrImagePull|ImagePullBackOff/);
  });

  it('get events shows what the controllers and the kubelet recorded for a rollout, a crash loop and an unpullable image', async () => {
    const k = await kubectlFor('events');
    expect((await k(['apply', '--server-side', '-f', await manifest('e', deployment('evented', { replicas: 1 }))])).code).toBe(0);
    expect((await k(['rollout', 'status', 'deploy/evented', '--timeout=30s'])).code).toBe(0);
    expect((await k(['set', 'image', 'deploy/evented', 'main=example.com/crashloop:2'])).code).toBe(0);
    expect((await k(['apply', '--server-side', '-f', await manifest('u', deployment('unpulled', { replicas: 1, image: 'example.com/doesnotexist:1' }))])).code).toBe(0);
    const reasons = async (kind: string, name: string): Promise<string[]> =>
      ((await getJson(k, ['get', 'events', '--field-selector', `involvedObject.kind=${kind}`])).items as { reason: string; involvedObject: { name: string } }[])
        .filter((e) => e.involvedObject.name.startsWith(name))
        .map((e) => e.reason);
    await sleepUntil(async () => (await reasons('Pod', 'evented')).includes('BackOff'), { message: 'a crash-looping pod backs off' });
    await sleepUntil(async () => (await reasons('Pod', 'unpulled')).includes('BackOff'), { message: 'an unpullable image backs off' });
    expect(new Set(await reasons('Deployment', 'evented'))).toEqual(new Set(['ScalingReplicaSet']));
    expect(await reasons('ReplicaSet', 'evented')).toContain('SuccessfulCreate');
    expect(await reasons('Pod', 'evented')).toEqual(expect.arrayContaining(['Scheduled', 'Pulling', 'Pulled', 'Created', 'Started', 'BackOff']));
    expect(await reasons('Pod', 'unpulled')).toEqual(expect.arrayContaining(['Scheduled', 'Pulling', 'Failed', 'BackOff']));
    const table = await k(['get', 'events']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/Normal\s+ScalingReplicaSet\s+deployment\/evented\s+Scaled up replica set evented-\w+ from 0 to 1/);
    expect(table.stdout).toMatch(/Warning\s+BackOff\s+pod\/evented-/);
  });

  it('scale --replicas=0 brings ready replicas to 0', async () => {
    const k = await kubectlFor('scale');
    expect((await k(['apply', '--server-side', '-f', await manifest('s', deployment('shrink', { replicas: 2 }))])).code).toBe(0);
    expect((await k(['rollout', 'status', 'deploy/shrink', '--timeout=30s'])).code).toBe(0);
    const scaled = await k(['scale', 'deploy/shrink', '--replicas=0']);
    expect(scaled.code).toBe(0);
    expect(scaled.stdout).toContain('deployment.apps/shrink scaled');
    await sleepUntil(async () => {
      const d = await getJson(k, ['get', 'deploy', 'shrink']);
      return d.spec.replicas === 0 && (d.status.readyReplicas ?? 0) === 0 && (d.status.replicas ?? 0) === 0 && d.status.observedGeneration === d.metadata.generation;
    }, { message: 'shrink to have 0 ready replicas' });
    expect((await k(['get', 'pods', '-l', 'app=shrink', '-o', 'name'])).stdout.trim()).toBe('');
  });

  it('delete removes the Deployment, its ReplicaSets and its Pods', async () => {
    const k = await kubectlFor('delete');
    expect((await k(['apply', '--server-side', '-f', await manifest('d', deployment('gone', { replicas: 2 }))])).code).toBe(0);
    expect((await k(['rollout', 'status', 'deploy/gone', '--timeout=30s'])).code).toBe(0);
    expect(sim.store.list(typeOf('Pod'), 'default').filter((p) => p.metadata.labels?.app === 'gone')).toHaveLength(2);
    const deleted = await k(['delete', 'deploy', 'gone']);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain('deployment.apps "gone" deleted');
    await sleepUntil(() => sim.store.list(typeOf('ReplicaSet'), 'default').every((rs) => rs.metadata.labels?.app !== 'gone')
      && sim.store.list(typeOf('Pod'), 'default').every((p) => p.metadata.labels?.app !== 'gone'), { message: 'dependents to be collected' });
    const missing = await k(['get', 'deploy', 'gone']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('deployments.apps "gone" not found');
  });

  it('answers unknown kinds and missing namespaces like a real server', async () => {
    const k = await kubectlFor('errors');
    const unknown = await k(['get', 'cronjobs']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("the server doesn't have a resource type \"cronjobs\"");
    const noNs = await k(['apply', '--server-side', '-n', 'nowhere', '-f', await manifest('n', service('lost', 80))]);
    expect(noNs.code).not.toBe(0);
    expect(noNs.stderr).toContain('namespaces "nowhere" not found');
  });

  it('decodes no protobuf body it has no schema for, and says to send JSON', async () => {
    const k = await kubectlFor('protobuf');
    const created = await k(['create', 'namespace', 'from-protobuf']);
    expect(created.code).not.toBe(0);
    expect(created.stderr.trim()).toBe('Error from server (UnsupportedMediaType): the simulator cannot decode Namespace (v1) from protobuf - send it as application/json');
    const applied = await k(['apply', '-f', '-'], 'apiVersion: v1\nkind: Namespace\nmetadata: {name: from-json}\n');
    expect(applied.stdout).toContain('namespace/from-json created');
  });
});
