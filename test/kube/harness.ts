// What the kube client tests share: a simulator with a recording proxy in front of it (keelson's
// client talks through the proxy, so every request it sends is counted on the wire), object
// builders, and direct access to the simulator for the test's own reads and for changes made
// "outside keelson" (kubectl edit, an autoscaler), which the proxy does not count.
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createKubeClient, type KubeClient, type KubeClientDeps } from '../../src/kube/kubeClient.ts';
import { DEPLOYMENT_LABEL, type KubeObject } from '../../src/kube/types.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { startSimulator, type SimulatorOptions } from '../../src/sim/index.ts';
import { startRecordingProxy, type RecordedRequest, type RecordingProxy } from './recordingProxy.ts';

export const log = createLogger({ level: 'silent', format: 'json' });
export const CLIENT_ID = 'keelson-test-instance';

export type Simulator = Awaited<ReturnType<typeof startSimulator>>;

export interface Harness {
  sim: Simulator;
  proxy: RecordingProxy;
  client: KubeClient;
  metrics: Metrics;
  /** A fresh signal that never aborts, for writes. */
  signal: AbortSignal;
  close(): Promise<void>;
}

export async function startHarness(options: { sim?: SimulatorOptions; client?: Partial<KubeClientDeps> } = {}): Promise<Harness> {
  const sim = await startSimulator(options.sim);
  const proxy = await startRecordingProxy(sim.url);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(proxy.kubeconfig(sim.kubeconfigYaml()));
  const metrics = createMetrics();
  const client = createKubeClient({
    kubeConfig,
    log,
    metrics,
    clientId: CLIENT_ID,
    // Generous: the test machines are shared and often loaded.
    requestTimeoutMs: 10_000,
    watchBackoffMs: 50,
    watchMaxFailures: 3,
    ...options.client,
  });
  return {
    sim,
    proxy,
    client,
    metrics,
    signal: new AbortController().signal,
    close: async () => {
      client.close();
      await proxy.close();
      await sim.close();
    },
  };
}

/**
 * One harness for the enclosing describe block: started before its tests, faults reset after
 * each, closed after all. The returned object is filled in by `beforeAll`.
 */
export function useHarness(options: Parameters<typeof startHarness>[0] = {}): Harness {
  const h = {} as Harness;
  beforeAll(async () => {
    Object.assign(h, await startHarness(options));
  });
  afterEach(() => h.sim?.faults.reset());
  afterAll(async () => {
    await h.close?.();
  });
  return h;
}

export function uniqueNamespace(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export function deployment(name: string, image: string, extra: { replicas?: number; progressDeadlineSeconds?: number; namespace?: string } = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name }, ...(extra.namespace ? { namespace: extra.namespace } : {}) },
    spec: {
      replicas: extra.replicas ?? 1,
      ...(extra.progressDeadlineSeconds === undefined ? {} : { progressDeadlineSeconds: extra.progressDeadlineSeconds }),
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image }] } },
    },
  };
}

export function statefulSet(name: string, image: string, namespace?: string): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, labels: { app: name }, ...(namespace ? { namespace } : {}) },
    spec: {
      replicas: 2,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image }] } },
    },
  };
}

export function daemonSet(name: string, image: string): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, labels: { app: name } },
    spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image }] } } },
  };
}

export function configMap(name: string, extra: { namespace?: string; data?: Record<string, string>; annotations?: Record<string, string> } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, ...(extra.namespace ? { namespace: extra.namespace } : {}), ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    data: extra.data ?? { key: name },
  };
}

export function clusterRole(name: string): KubeObject {
  return { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }] };
}

export function service(name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] } };
}

const PLURALS: Record<string, string> = {
  Namespace: 'namespaces',
  ConfigMap: 'configmaps',
  Service: 'services',
  Pod: 'pods',
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
  ReplicaSet: 'replicasets',
  PodDisruptionBudget: 'poddisruptionbudgets',
  ClusterRole: 'clusterroles',
};

export function pathOf(apiVersion: string, kind: string, name: string, namespace?: string): string {
  const prefix = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const plural = PLURALS[kind];
  if (!plural) throw new Error(`harness: no plural for ${kind}`);
  return `${prefix}${namespace ? `/namespaces/${namespace}` : ''}/${plural}/${name}`;
}

/** A request straight to the simulator (not through keelson, not recorded): kubectl's stand-in. */
export async function direct(
  h: Harness,
  method: string,
  path: string,
  options: { body?: unknown; contentType?: string; query?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = new URL(path, h.sim.url);
  for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, value);
  const response = await fetch(url, {
    method,
    headers: { Authorization: 'Bearer keelson-sim', 'Content-Type': options.contentType ?? 'application/json' },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Reads an object as plain JSON from the simulator, or undefined when it does not exist. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests reach deep into objects
export async function read(h: Harness, apiVersion: string, kind: string, name: string, namespace?: string): Promise<Record<string, any> | undefined> {
  const response = await direct(h, 'GET', pathOf(apiVersion, kind, name, namespace));
  return response.status === 404 ? undefined : response.body;
}

/** Creates an object as another tool would (field manager `manager`), not through keelson. */
export async function createOutside(h: Harness, object: KubeObject, manager: string): Promise<void> {
  const ns = object.metadata.namespace;
  const path = pathOf(object.apiVersion, object.kind, object.metadata.name, ns).replace(/\/[^/]+$/, '');
  if (ns && (await read(h, 'v1', 'Namespace', ns)) === undefined) {
    await direct(h, 'POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, query: { fieldManager: manager } });
  }
  const response = await direct(h, 'POST', path, { body: object, query: { fieldManager: manager } });
  if (response.status !== 201) throw new Error(`harness: create failed: ${JSON.stringify(response.body)}`);
}

/** Requests recorded since `from` (an index into `proxy.requests`). */
export function since(h: Harness, from: number): RecordedRequest[] {
  return h.proxy.requests.slice(from);
}

export function writes(requests: readonly RecordedRequest[]): RecordedRequest[] {
  return requests.filter((r) => ['create', 'update', 'patch', 'delete', 'deletecollection'].includes(r.verb) && r.query.get('dryRun') !== 'All');
}

export function labelOf(object: Record<string, unknown> | undefined): string | undefined {
  return (object?.metadata as { labels?: Record<string, string> } | undefined)?.labels?.[DEPLOYMENT_LABEL];
}
