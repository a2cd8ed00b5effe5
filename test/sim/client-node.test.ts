// The same operations through @kubernetes/client-node 2.x, plus watch semantics (bookmarks, 410
// for compacted resourceVersions) and fault injection.
import net from 'node:net';
import { AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderOptions, Watch, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { sleepUntil } from '../helpers.ts';

let sim: Simulator;
let kc: KubeConfig;
let objects: KubernetesObjectApi;
let apps: AppsV1Api;
let core: CoreV1Api;

beforeAll(async () => {
  sim = await startSimulator({ timeScale: 20 });
  kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfigYaml());
  objects = KubernetesObjectApi.makeApiClient(kc);
  apps = kc.makeApiClient(AppsV1Api);
  core = kc.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await sim?.close();
});

function deployment(name: string, replicas: number, extra: Record<string, string> = {}, image = 'nginx:1.27'): KubernetesObject & Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default', labels: { app: name, ...extra } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'main', image }] } },
    },
  };
}

const apply = (obj: KubernetesObject, manager = 'keelson', force = false) => objects.patch(obj, undefined, undefined, manager, force, PatchStrategy.ServerSideApply);

async function readyReplicas(name: string): Promise<number> {
  const d = await apps.readNamespacedDeployment({ name, namespace: 'default' });
  return d.status?.readyReplicas ?? 0;
}

describe('client-node against the simulator', () => {
  it('server-side applies, updates and prunes fields; conflicts need force', async () => {
    const created = (await apply(deployment('cn-web', 2, { team: 'a' }))) as V1Deployment;
    expect(created.metadata?.uid).toBeTruthy();
    expect(created.spec?.progressDeadlineSeconds).toBe(600);
    const updated = (await apply(deployment('cn-web', 3))) as V1Deployment;
    expect(updated.metadata?.labels).toEqual({ app: 'cn-web' });
    expect(updated.metadata?.generation).toBe(2);
    const conflicting = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'cn-web', namespace: 'default' }, spec: { replicas: 5 } };
    const refused = await apply(conflicting, 'intruder').then(() => undefined, (error: unknown) => error as { code: number; body: string });
    expect(refused?.code).toBe(409);
    const status = JSON.parse(refused!.body);
    expect(status.reason).toBe('Conflict');
    expect(status.details.causes).toEqual([{ reason: 'FieldManagerConflict', message: 'conflict with "keelson"', field: '.spec.replicas' }]);
    const forced = (await apply(conflicting, 'intruder', true)) as V1Deployment;
    expect(forced.spec?.replicas).toBe(5);
  });

  it('rejects a stale resourceVersion on update with 409 Conflict', async () => {
    const cm = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'cn-cm' }, data: { a: '1' } } });
    await core.replaceNamespacedConfigMap({ name: 'cn-cm', namespace: 'default', body: { ...cm, data: { a: '2' } } });
    const stale = await core.replaceNamespacedConfigMap({ name: 'cn-cm', namespace: 'default', body: { ...cm, data: { a: '3' } } }).catch((e: { code: number; body: string }) => e);
    expect((stale as { code: number }).code).toBe(409);
    expect(JSON.parse((stale as { body: string }).body).message).toContain('the object has been modified');
  });

  it('scales through the scale subresource and reaches 0 ready replicas', async () => {
    await apply(deployment('cn-scale', 2));
    await sleepUntil(async () => (await readyReplicas('cn-scale')) === 2, { message: 'cn-scale ready' });
    const scale = await apps.readNamespacedDeploymentScale({ name: 'cn-scale', namespace: 'default' });
    expect(scale.spec?.replicas).toBe(2);
    expect(scale.status?.selector).toBe('app=cn-scale');
    await apps.patchNamespacedDeploymentScale({ name: 'cn-scale', namespace: 'default', body: { spec: { replicas: 0 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await sleepUntil(async () => {
      const d = await apps.readNamespacedDeployment({ name: 'cn-scale', namespace: 'default' });
      return d.spec?.replicas === 0 && (d.status?.readyReplicas ?? 0) === 0 && (d.status?.replicas ?? 0) === 0;
    }, { message: 'cn-scale at 0' });
    const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=cn-scale' });
    expect(pods.items).toHaveLength(0);
  });

  it('watches a rollout to completion and deletes with cascading', async () => {
    const events: string[] = [];
    const watch = new Watch(kc);
    const list = await apps.listNamespacedDeployment({ namespace: 'default' });
    const controller = await watch.watch(
      '/apis/apps/v1/namespaces/default/deployments',
      { resourceVersion: list.metadata?.resourceVersion, fieldSelector: 'metadata.name=cn-watch' },
      (type, obj: V1Deployment) => events.push(`${type}:${obj.status?.availableReplicas ?? 0}`),
      () => undefined,
    );
    await apply(deployment('cn-watch', 2));
    await sleepUntil(() => events.includes('MODIFIED:2'), { message: 'watch to see 2 available' });
    expect(events[0]).toBe('ADDED:0');
    await objects.delete({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'cn-watch', namespace: 'default' } });
    await sleepUntil(() => events.some((e) => e.startsWith('DELETED')), { message: 'DELETED event' });
    await sleepUntil(async () => (await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=cn-watch' })).items.length === 0 &&
      (await apps.listNamespacedReplicaSet({ namespace: 'default', labelSelector: 'app=cn-watch' })).items.length === 0, { message: 'dependents collected' });
    controller.abort();
  });

  it('lists with label selectors, field selectors and pagination', async () => {
    for (const [name, tier] of [['sel-a', 'web'], ['sel-b', 'db'], ['sel-c', 'cache']]) {
      await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name, labels: { tier: tier!, sel: 'yes' } } } });
    }
    const names = async (labelSelector: string) => (await core.listNamespacedConfigMap({ namespace: 'default', labelSelector })).items.map((i) => i.metadata?.name);
    expect(await names('tier in (web,db)')).toEqual(['sel-a', 'sel-b']);
    expect(await names('sel,tier notin (web)')).toEqual(['sel-b', 'sel-c']);
    expect(await names('sel=yes,tier!=db')).toEqual(['sel-a', 'sel-c']);
    expect((await core.listNamespacedConfigMap({ namespace: 'default', fieldSelector: 'metadata.name=sel-b' })).items.map((i) => i.metadata?.name)).toEqual(['sel-b']);
    const page1 = await core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'sel', limit: 2 });
    expect(page1.items).toHaveLength(2);
    expect(page1.metadata?.remainingItemCount).toBe(1);
    const page2 = await core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'sel', limit: 2, _continue: page1.metadata?._continue });
    expect(page2.items.map((i) => i.metadata?.name)).toEqual(['sel-c']);
    expect(page2.metadata?._continue).toBeFalsy();
  });

  it('answers 404 for missing namespaces and unknown groups', async () => {
    const err = await core.createNamespacedConfigMap({ namespace: 'nope', body: { metadata: { name: 'x' } } }).catch((e: { code: number; body: string }) => e);
    expect((err as { code: number }).code).toBe(404);
    expect(JSON.parse((err as { body: string }).body).message).toBe('namespaces "nope" not found');
    const res = await fetch(`${sim.url}/apis/example.com/v1/widgets`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect((await res.json()).kind).toBe('Status');
  });
});

describe('watch semantics', () => {
  it('sends ERROR 410 Expired for a compacted resourceVersion', async () => {
    const before = sim.store.resourceVersion;
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'w-410' } } });
    sim.store.compact();
    const got: { type: string; code?: number; reason?: string }[] = [];
    let ended = false;
    await new Watch(kc).watch('/api/v1/namespaces/default/configmaps', { resourceVersion: String(before) }, (type, obj: { code?: number; reason?: string }) => got.push({ type, code: obj.code, reason: obj.reason }), () => {
      ended = true;
    });
    await sleepUntil(() => ended, { message: 'watch to end' });
    expect(got).toEqual([{ type: 'ERROR', code: 410, reason: 'Expired' }]);
  });

  it('sends BOOKMARK events when asked', async () => {
    const types: string[] = [];
    const controller = await new Watch(kc).watch('/api/v1/namespaces/default/secrets', { allowWatchBookmarks: true, resourceVersion: String(sim.store.resourceVersion) }, (type) => types.push(type), () => undefined);
    await sleepUntil(() => types.includes('BOOKMARK'), { timeoutMs: 12_000, message: 'a bookmark' });
    controller.abort();
  });
});

describe('fault injection', () => {
  it('error rate 1.0 answers 503s, reset serves again', async () => {
    sim.faults.setErrorRate(1, [503]);
    const err = await core.listNamespace().catch((e: { code: number }) => e);
    expect((err as { code: number }).code).toBe(503);
    sim.faults.reset();
    expect((await core.listNamespace()).items.map((n) => n.metadata?.name)).toContain('kube-system');
  });

  it('latency delays answers', async () => {
    sim.faults.setLatency(300);
    const start = Date.now();
    await core.listNamespace();
    expect(Date.now() - start).toBeGreaterThanOrEqual(290);
    sim.faults.reset();
  });

  it('pause refuses connections and resume serves on the same port', async () => {
    await sim.faults.pause();
    // a fresh TCP connection, not fetch: fetch may reuse a pooled keep-alive socket that the pause
    // closed, and report that instead of the refusal
    const refused = await new Promise<string | undefined>((resolve) => {
      const socket = net.connect(sim.port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(undefined);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
    }).finally(() => sim.faults.resume());
    expect(refused).toBe('ECONNREFUSED');
    // served again on the same port (a pooled socket the pause closed may fail once first)
    const version = await sleepUntil(async () => ((await (await fetch(`${sim.url}/version`)).json()) as { minor: string }).minor);
    expect(version).toBe('32');
  });

  it('dropWatches ends open watch streams', async () => {
    let done = false;
    let events = 0;
    await new Watch(kc).watch('/api/v1/namespaces/default/configmaps', {}, () => events++, () => {
      done = true;
    });
    await sleepUntil(() => events > 0, { message: 'initial events' });
    expect(done).toBe(false);
    sim.faults.dropWatches();
    await sleepUntil(() => done, { message: 'watch to end' });
  });
});
