// In-cluster configuration against the simulator: the service-account files a pod would see,
// read by client-node's `KubeConfig.loadFromCluster(root)` over HTTPS, with RBAC deciding what the
// bound ServiceAccount may do.
import { AppsV1Api, ApiException, CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeelsonError } from '../../src/errors.ts';
import { startSimulator, type ServiceAccountFiles, type Simulator } from '../../src/sim/index.ts';

let sim: Simulator;
let root: string;
let files: ServiceAccountFiles;
const savedEnv = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };

const RBAC = 'rbac.authorization.k8s.io';
const objects: (KubernetesObject & Record<string, unknown>)[] = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keelson' } },
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'keelson', namespace: 'keelson' } },
  {
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRole',
    metadata: { name: 'keelson' },
    rules: [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch', 'patch'] }],
  },
  {
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name: 'keelson' },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'keelson' },
    subjects: [{ kind: 'ServiceAccount', name: 'keelson', namespace: 'keelson' }],
  },
];

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'keelson-in-cluster-'));
  sim = await startSimulator({ rbac: true, tls: true });
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfigYaml());
  const admin = KubernetesObjectApi.makeApiClient(kc);
  for (const o of objects) await admin.patch(o, undefined, undefined, 'test', true, PatchStrategy.ServerSideApply);
  files = await sim.writeServiceAccountFiles(root, 'keelson', 'keelson');
  // loadFromCluster reads these two from the environment, as in a pod.
  process.env.KUBERNETES_SERVICE_HOST = files.env.KUBERNETES_SERVICE_HOST;
  process.env.KUBERNETES_SERVICE_PORT = files.env.KUBERNETES_SERVICE_PORT;
});

afterAll(async () => {
  for (const [key, value] of [['KUBERNETES_SERVICE_HOST', savedEnv.host], ['KUBERNETES_SERVICE_PORT', savedEnv.port]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  await sim?.close();
  await rm(root, { recursive: true, force: true });
});

describe('in-cluster configuration against the simulator', () => {
  it('writes the files a pod of the ServiceAccount sees', async () => {
    expect(files.dir).toBe(path.join(root, 'var/run/secrets/kubernetes.io/serviceaccount'));
    expect(await readFile(path.join(files.dir, 'namespace'), 'utf8')).toBe('keelson');
    expect(await readFile(path.join(files.dir, 'ca.crt'), 'utf8')).toBe(sim.tls!.caPem);
    expect(await readFile(path.join(files.dir, 'token'), 'utf8')).toBe(files.token);
    expect((await stat(path.join(files.dir, 'token'))).mode & 0o777).toBe(0o600);
  });

  it('lists what the bound ClusterRole allows and gets the real 403 for the rest', async () => {
    const kc = new KubeConfig();
    kc.loadFromCluster(root);
    expect(kc.getCurrentCluster()?.server).toBe(sim.url);
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('keelson');
    const apps = kc.makeApiClient(AppsV1Api);
    expect((await apps.listDeploymentForAllNamespaces()).items).toEqual([]);

    const core = kc.makeApiClient(CoreV1Api);
    const refused = await core.listNamespacedSecret({ namespace: 'keelson' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(ApiException);
    const apiError = refused as ApiException<string>;
    expect(apiError.code).toBe(403);
    expect(JSON.parse(apiError.body).message).toBe(
      'secrets is forbidden: User "system:serviceaccount:keelson:keelson" cannot list resource "secrets" in API group "" in the namespace "keelson"',
    );
    expect(sim.requests.count({ user: 'system:serviceaccount:keelson:keelson', resource: 'deployments', verb: 'list', code: 200 })).toBe(1);
    expect(sim.requests.count({ user: 'system:serviceaccount:keelson:keelson', resource: 'secrets', code: 403 })).toBe(1);
  });

  it('needs TLS: an in-cluster client speaks HTTPS only', async () => {
    const plain = await startSimulator();
    try {
      const error = await plain.writeServiceAccountFiles(root, 'default', 'default').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeelsonError);
      expect((error as KeelsonError).code).toBe('sim_tls_required');
    } finally {
      await plain.close();
    }
  });
});
