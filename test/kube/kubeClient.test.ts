// The Kubernetes client against keelson's simulated API server (src/sim): real HTTP, real
// client-node, real watches. Each test uses a namespace of its own.
import { randomBytes } from 'node:crypto';
import { KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TerminalError, TransientError } from '../../src/errors.ts';
import { createKubeClient, type KubeClient } from '../../src/kube/kubeClient.ts';
import { DEPLOYMENT_LABEL, type KubeObject } from '../../src/kube/types.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { startSimulator } from '../../src/sim/index.ts';
import { sleepUntil } from '../helpers.ts';

type Simulator = Awaited<ReturnType<typeof startSimulator>>;

const log = createLogger({ level: 'silent', format: 'json' });

function uniqueNamespace(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

function labels(id: string, app: string): Record<string, string> {
  return { app, [DEPLOYMENT_LABEL]: id };
}

function deployment(name: string, image: string, id: string, extra: { replicas?: number; progressDeadlineSeconds?: number } = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: labels(id, name) },
    spec: {
      replicas: extra.replicas ?? 1,
      ...(extra.progressDeadlineSeconds === undefined ? {} : { progressDeadlineSeconds: extra.progressDeadlineSeconds }),
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: labels(id, name) }, spec: { containers: [{ name, image }] } },
    },
  };
}

function statefulSet(name: string, image: string, id: string): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, labels: labels(id, name) },
    spec: {
      replicas: 2,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: labels(id, name) }, spec: { containers: [{ name, image }] } },
    },
  };
}

function daemonSet(name: string, image: string, id: string): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, labels: labels(id, name) },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: labels(id, name) }, spec: { containers: [{ name, image }] } },
    },
  };
}

function configMap(name: string, id?: string): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, ...(id ? { labels: { [DEPLOYMENT_LABEL]: id } } : {}) }, data: { key: name } };
}

function service(name: string, id: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels: { [DEPLOYMENT_LABEL]: id } },
    spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
  };
}

interface Harness {
  sim: Simulator;
  kc: KubeConfig;
  client: KubeClient;
  metrics: Metrics;
  objects: KubernetesObjectApi;
}

async function harness(options: Parameters<typeof startSimulator>[0] = {}): Promise<Harness> {
  const sim = await startSimulator(options);
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfigYaml());
  const metrics = createMetrics();
  const client = createKubeClient({ kubeConfig: kc, log, metrics, requestTimeoutMs: 1_000, watchBackoffMs: 50, watchMaxFailures: 3 });
  return { sim, kc, client, metrics, objects: KubernetesObjectApi.makeApiClient(kc) };
}

/** Reads an object as plain JSON, or undefined when it does not exist. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests reach deep into objects
async function read(h: Harness, apiVersion: string, kind: string, name: string, namespace?: string): Promise<Record<string, any> | undefined> {
  try {
    const obj = await h.objects.read({ apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } });
    return JSON.parse(JSON.stringify(obj));
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}

async function counter(metrics: Metrics, labels: { verb: string; outcome: string }): Promise<number> {
  const data = await metrics.kubeRequests.get();
  return data.values.find((v) => v.labels.verb === labels.verb && v.labels.outcome === labels.outcome)?.value ?? 0;
}

describe('kube client against the simulator', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await harness({ podStartupDelayMs: 200 });
  });

  afterEach(() => {
    h.sim.faults.reset();
  });

  afterAll(async () => {
    await h?.sim.close();
  });

  describe('apply', () => {
    it('creates the namespace and the objects in dependency order, with the namespace set', async () => {
      const ns = uniqueNamespace('apply');
      const refs = await h.client.apply([deployment('web', 'shop:1', 'd1'), service('web', 'd1'), configMap('settings', 'd1')], { namespace: ns });

      expect(refs.map((r) => `${r.kind}/${r.namespace}/${r.name}`)).toEqual([
        `ConfigMap/${ns}/settings`,
        `Service/${ns}/web`,
        `Deployment/${ns}/web`,
      ]);
      const namespace = await read(h, 'v1', 'Namespace', ns);
      expect(namespace?.metadata.labels['app.kubernetes.io/managed-by']).toBe('keelson');
      const cm = await read(h, 'v1', 'ConfigMap', 'settings', ns);
      const svc = await read(h, 'v1', 'Service', 'web', ns);
      const deploy = await read(h, 'apps/v1', 'Deployment', 'web', ns);
      // One resourceVersion counter for the whole store: creation order is visible in it.
      expect(Number(cm?.metadata.resourceVersion)).toBeLessThan(Number(svc?.metadata.resourceVersion));
      expect(Number(svc?.metadata.resourceVersion)).toBeLessThan(Number(deploy?.metadata.resourceVersion));
      const managers = (deploy?.metadata.managedFields as { manager: string; operation: string }[]).map((m) => `${m.manager}:${m.operation}`);
      expect(managers).toContain('keelson:Apply');
    });

    it('is idempotent: applying the same objects again changes no spec', async () => {
      const ns = uniqueNamespace('idem');
      const objects = [deployment('web', 'shop:1', 'd2'), configMap('settings', 'd2')];
      await h.client.apply(objects, { namespace: ns });
      const before = await read(h, 'apps/v1', 'Deployment', 'web', ns);
      const refs = await h.client.apply(objects, { namespace: ns });
      const after = await read(h, 'apps/v1', 'Deployment', 'web', ns);
      expect(refs).toHaveLength(2);
      expect(after?.metadata.generation).toBe(before?.metadata.generation);
      expect(after?.spec.template.spec.containers[0].image).toBe('shop:1');
    });

    it('counts requests in the metrics', async () => {
      const before = await counter(h.metrics, { verb: 'apply', outcome: 'ok' });
      await h.client.apply([configMap('counted', 'd3')], { namespace: uniqueNamespace('metrics') });
      expect(await counter(h.metrics, { verb: 'apply', outcome: 'ok' })).toBeGreaterThanOrEqual(before + 2);
    });
  });

  describe('verify', () => {
    it('resolves once a healthy Deployment is available', async () => {
      const ns = uniqueNamespace('healthy');
      const refs = await h.client.apply([deployment('web', 'shop:1', 'v1', { replicas: 2 }), configMap('c', 'v1')], { namespace: ns });
      const progress: string[] = [];
      const result = await h.client.verify(refs, { onProgress: (m) => progress.push(m) });
      expect(result.message).toBe(`1 workload is Current: Deployment ${ns}/web.`);
      const deploy = await read(h, 'apps/v1', 'Deployment', 'web', ns);
      expect(deploy?.status.availableReplicas).toBe(2);
    });

    it('fails on an ErrImagePull that persists for three grace periods', async () => {
      // At real-time speed the simulated kubelet reports ErrImagePull for 5 s before backing off.
      const ns = uniqueNamespace('errpull');
      const refs = await h.client.apply([deployment('web', 'shop:unpullable', 'v6')], { namespace: ns });
      const error = await h.client.verify(refs, { failFastGraceMs: 300 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TerminalError);
      expect((error as Error).message).toMatch(/pod web-[a-z0-9-]+: container web is waiting: ErrImagePull \(.*shop:unpullable/);
    });

    it('fails fast naming CrashLoopBackOff for a crash-looping image', async () => {
      const ns = uniqueNamespace('crash');
      const refs = await h.client.apply([deployment('web', 'shop:crashloop', 'v3')], { namespace: ns });
      const error = await h.client.verify(refs, { failFastGraceMs: 300 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TerminalError);
      expect((error as Error).message).toMatch(/pod web-[a-z0-9-]+: container web is waiting: CrashLoopBackOff/);
    });

    it('ends promptly with an AbortError when the signal aborts', async () => {
      const ns = uniqueNamespace('abort');
      const refs = await h.client.apply([deployment('web', 'shop:doesnotexist', 'v4')], { namespace: ns });
      const controller = new AbortController();
      let progressed = false;
      const verifying = h.client.verify(refs, { signal: controller.signal, failFastGraceMs: 600_000, onProgress: () => (progressed = true) });
      const outcome = verifying.then(() => 'resolved', (e: unknown) => e);
      await sleepUntil(() => progressed, { message: 'verify reported progress' });
      const abortedAt = Date.now();
      controller.abort();
      const error = await outcome;
      expect((error as Error).name).toBe('AbortError');
      expect(Date.now() - abortedAt).toBeLessThan(500);
    });

    it('rides out dropped watch streams', async () => {
      const ns = uniqueNamespace('drop');
      const slow = await harness({ podStartupDelayMs: 1_500 });
      try {
        const refs = await slow.client.apply([deployment('web', 'shop:1', 'v5')], { namespace: ns });
        let progressed = false;
        const verifying = slow.client.verify(refs, { onProgress: () => (progressed = true) });
        await sleepUntil(() => progressed, { message: 'verify reported progress' });
        slow.sim.faults.dropWatches();
        const result = await verifying;
        expect(result.message).toContain('is Current');
      } finally {
        await slow.sim.close();
      }
    });
  });

  describe('stop, prune and live status', () => {
    it('scales Deployments and StatefulSets to 0 ready replicas and reports DaemonSets', async () => {
      const ns = uniqueNamespace('stop');
      const refs = await h.client.apply([deployment('web', 'shop:1', 's1', { replicas: 2 }), statefulSet('db', 'db:1', 's1'), daemonSet('agent', 'agent:1', 's1')], { namespace: ns });
      await h.client.verify(refs, {});
      const result = await h.client.scaleToZero('s1', ns);
      expect(result.scaled.map((r) => r.kind).sort()).toEqual(['Deployment', 'StatefulSet']);
      expect(result.unscalable.map((r) => `${r.kind}/${r.name}`)).toEqual(['DaemonSet/agent']);
      const deploy = await read(h, 'apps/v1', 'Deployment', 'web', ns);
      const sts = await read(h, 'apps/v1', 'StatefulSet', 'db', ns);
      expect(deploy?.spec.replicas).toBe(0);
      expect(deploy?.status.readyReplicas ?? 0).toBe(0);
      expect(sts?.spec.replicas).toBe(0);
      expect(sts?.status.readyReplicas ?? 0).toBe(0);
    });

    it('prunes labelled objects that are no longer rendered and leaves the others', async () => {
      const ns = uniqueNamespace('prune');
      const kept = await h.client.apply([configMap('keep', 'p1'), service('svc', 'p1')], { namespace: ns });
      await h.client.apply([configMap('gone', 'p1'), configMap('foreign', 'other'), configMap('unlabelled')], { namespace: ns });
      const deleted = await h.client.prune('p1', ns, kept);
      expect(deleted).toEqual([{ apiVersion: 'v1', kind: 'ConfigMap', name: 'gone', namespace: ns }]);
      await sleepUntil(async () => (await read(h, 'v1', 'ConfigMap', 'gone', ns)) === undefined, { message: 'pruned ConfigMap deleted' });
      expect(await read(h, 'v1', 'ConfigMap', 'keep', ns)).toBeDefined();
      expect(await read(h, 'v1', 'Service', 'svc', ns)).toBeDefined();
      expect(await read(h, 'v1', 'ConfigMap', 'foreign', ns)).toBeDefined();
      expect(await read(h, 'v1', 'ConfigMap', 'unlabelled', ns)).toBeDefined();
      expect(await read(h, 'v1', 'Namespace', ns)).toBeDefined();
    });

    it('lists the health of every labelled object', async () => {
      const ns = uniqueNamespace('live');
      const refs = await h.client.apply([deployment('web', 'shop:1', 'l1'), configMap('settings', 'l1'), configMap('other', 'l2')], { namespace: ns });
      await h.client.verify(refs, {});
      const live = await h.client.liveStatus('l1', ns);
      const byKind = Object.fromEntries(live.map((o) => [`${o.kind}/${o.name}`, o]));
      expect(Object.keys(byKind).sort()).toEqual(['ConfigMap/settings', 'Deployment/web']);
      expect(byKind['Deployment/web']).toMatchObject({ namespace: ns, status: 'Current', apiVersion: 'apps/v1' });
      expect(byKind['Deployment/web']?.message).toContain('available');
    });
  });

  describe('error classification', () => {
    it('ends verify with a TransientError when the server stays unreachable', async () => {
      const ns = uniqueNamespace('gone');
      const slow = await harness({ podStartupDelayMs: 60_000 });
      try {
        const refs = await slow.client.apply([deployment('web', 'shop:1', 'e4')], { namespace: ns });
        let progressed = false;
        const outcome = slow.client.verify(refs, { onProgress: () => (progressed = true) }).catch((e: unknown) => e);
        await sleepUntil(() => progressed, { message: 'verify reported progress' });
        await slow.sim.faults.pause();
        const error = await outcome;
        expect(error).toBeInstanceOf(TransientError);
        expect((error as TransientError).code).toBe('kube_unavailable');
      } finally {
        await slow.sim.close();
      }
    });

    it('turns 503s into a TransientError', async () => {
      h.sim.faults.setErrorRate(1, [503]);
      const error = await h.client.apply([configMap('x', 'e1')], { namespace: uniqueNamespace('e503') }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransientError);
      expect((error as TransientError).code).toBe('kube_unavailable');
      expect(await counter(h.metrics, { verb: 'get', outcome: 'transient' })).toBeGreaterThan(0);
    });

    it('turns an invalid object into a TerminalError naming it and quoting the server', async () => {
      const ns = uniqueNamespace('invalid');
      const bad = deployment('web', 'shop:1', 'e2');
      (bad.spec as { selector: unknown }).selector = { matchLabels: { app: 'something-else' } };
      const error = await h.client.apply([bad], { namespace: ns }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TerminalError);
      expect((error as TerminalError).code).toBe('kube_rejected');
      expect((error as Error).message).toContain(`Deployment ${ns}/web`);
      expect((error as Error).message).toContain('does not match template');
    });

    it('turns a paused server into a TransientError', async () => {
      await h.sim.faults.pause();
      try {
        const error = await h.client.apply([configMap('x', 'e3')], { namespace: uniqueNamespace('paused') }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TransientError);
      } finally {
        await h.sim.faults.resume();
      }
    });
  });
});

describe('on a fast clock', () => {
  let fast: Harness;

  beforeAll(async () => {
    // 100 simulated seconds per real second: the simulated kubelet reports ErrImagePull for 5
    // simulated seconds before ImagePullBackOff, and progress deadlines pass quickly.
    fast = await harness({ timeScale: 100 });
  });

  afterAll(async () => {
    await fast?.sim.close();
  });

    it('fails fast naming the pod and ImagePullBackOff for an unpullable image', async () => {
      const ns = uniqueNamespace('pull');
      const refs = await fast.client.apply([deployment('web', 'shop:doesnotexist', 'v2')], { namespace: ns });
      const started = Date.now();
      const error = await fast.client.verify(refs, { failFastGraceMs: 300 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TerminalError);
      expect((error as TerminalError).code).toBe('rollout_failed');
      expect((error as Error).message).toMatch(
        new RegExp(`^Deployment ${ns}/web failed: pod web-[a-z0-9]+-[a-z0-9]+: container web is waiting: ImagePullBackOff \\(.*shop:doesnotexist.*\\)\\.$`),
      );
      expect(Date.now() - started).toBeLessThan(15_000);
    });


  it('fails verification when the Deployment exceeds its progress deadline', async () => {
    const ns = uniqueNamespace('deadline');
    const refs = await fast.client.apply([deployment('web', 'shop:doesnotexist', 'pd', { progressDeadlineSeconds: 5 })], { namespace: ns });
    // A grace period longer than the test: only the deadline can end this.
    const error = await fast.client.verify(refs, { failFastGraceMs: 600_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as TerminalError).code).toBe('rollout_failed');
    expect((error as Error).message).toContain(`Deployment ${ns}/web failed: Deployment exceeded its progress deadline`);
  });
});
