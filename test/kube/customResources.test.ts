// keelson's kube client and custom resources whose CRD is installed after keelson started: apply
// discovers the kind afresh although a read found it unserved a moment before; the cluster cache
// watches it; prune and teardown delete custom resources even in a process that last saw the kind
// unserved (a miss remembered for reads must not make them skip an object as if gone). Under RBAC,
// the install ClusterRole plus one rule per custom kind (docs/install.md) is all keelson needs.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createKubeClient } from '../../src/kube/kubeClient.ts';
import type { KubeObject, ObjectRef } from '../../src/kube/types.ts';
import { startSimulator } from '../../src/sim/index.ts';
import { sleepUntil } from '../helpers.ts';
import { GATEWAY_API_VERSION, httpRouteBackends, installGatewayApi } from '../sim/gatewayApi.ts';
import { configMap, log, uniqueNamespace, useHarness } from './harness.ts';

function route(name: string, weight: number): KubeObject {
  return {
    apiVersion: GATEWAY_API_VERSION,
    kind: 'HTTPRoute',
    metadata: { name },
    spec: { parentRefs: [{ name: 'edge' }], rules: [{ backendRefs: [{ name: 'web', port: 80, weight }] }] },
  };
}

describe('custom resources of a CRD installed after keelson started', () => {
  const h = useHarness();

  it('applies, watches, prunes and tears down HTTPRoutes; a remembered miss does not hide them', async () => {
    const ns = uniqueNamespace('cr');
    const routeRef: ObjectRef = { apiVersion: GATEWAY_API_VERSION, kind: 'HTTPRoute', name: 'web', namespace: ns };
    // A second keelson process that looks at the kind before it exists, and remembers the miss.
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromString(h.sim.kubeconfigYaml());
    const other = createKubeClient({ kubeConfig, log, clientId: 'other-process', requestTimeoutMs: 10_000, watchBackoffMs: 50 });
    try {
      for (const client of [h.client, other]) expect((await client.observe('cr1', [routeRef])).objects[0]?.status).toBe('NotFound');

      await installGatewayApi(h.sim);
      const applied = await h.client.apply([configMap('settings'), route('web', 100)], { namespace: ns, deploymentId: 'cr1', signal: h.signal });
      expect(applied.inventory).toContainEqual(routeRef);
      expect(httpRouteBackends(h.sim, ns, 'web')).toEqual([[{ name: 'web', port: 80, weight: 100 }]]);
      const labels = h.sim.store.get(h.sim.resources.findByKind(GATEWAY_API_VERSION, 'HTTPRoute')!, ns, 'web')?.metadata.labels;
      expect(labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': 'cr1' });

      // The shared cache mirrors the kind now: keelson sees the route labelled for its deployment.
      const kinds = [{ apiVersion: GATEWAY_API_VERSION, kind: 'HTTPRoute' }];
      await sleepUntil(async () => (await h.client.labelledRefs('cr1', kinds)).length === 1, { message: 'the cache to show the route' });
      expect(await h.client.labelledRefs('cr1', kinds)).toEqual([routeRef]);
      const again = await h.client.apply([configMap('settings'), route('web', 30)], { namespace: ns, deploymentId: 'cr1', signal: h.signal });
      expect(again.changes.find((c) => c.ref.kind === 'HTTPRoute')?.action).toBe('configured');
      expect(httpRouteBackends(h.sim, ns, 'web')?.[0]?.[0]?.weight).toBe(30);

      // Pruned by the process that remembered the kind as unserved.
      expect(await other.prune('cr1', [routeRef], { signal: h.signal })).toEqual([routeRef]);
      expect(httpRouteBackends(h.sim, ns, 'web')).toBeUndefined();
      await sleepUntil(async () => (await h.client.labelledRefs('cr1', kinds)).length === 0, { message: 'the cache to see the route pruned' });

      // Torn down, with the rest of the deployment.
      const { inventory } = await h.client.apply([configMap('settings'), route('web', 100)], { namespace: ns, deploymentId: 'cr1', signal: h.signal });
      const result = await other.teardown('cr1', inventory, { signal: h.signal, timeoutMs: 10_000 });
      expect(result.deleted).toEqual(expect.arrayContaining([routeRef, { apiVersion: 'v1', kind: 'Namespace', name: ns }]));
      expect(result.kept).toEqual([]);
      expect(httpRouteBackends(h.sim, ns, 'web')).toBeUndefined();
    } finally {
      other.close();
    }
  });
});

describe('a CRD and its custom resources in one release', () => {
  const h = useHarness();
  const crd: KubeObject = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com',
      names: { kind: 'Widget', plural: 'widgets' },
      scope: 'Namespaced',
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  };
  const widget: KubeObject = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec: { size: 3 } };

  it('applies the CRD first, then the widget into the deployment namespace; teardown removes both', async () => {
    const ns = uniqueNamespace('crd');
    const { inventory } = await h.client.apply([widget, crd], { namespace: ns, deploymentId: 'w1', signal: h.signal });
    expect(inventory.map((ref) => `${ref.kind}/${ref.namespace ?? ''}/${ref.name}`)).toEqual(['CustomResourceDefinition//widgets.example.com', `Widget/${ns}/w`]);
    const type = h.sim.resources.findByKind('example.com/v1', 'Widget');
    expect(h.sim.store.get(type!, ns, 'w')?.spec).toEqual({ size: 3 });
    const result = await h.client.teardown('w1', inventory, { signal: h.signal, timeoutMs: 10_000 });
    expect(result.kept).toEqual([]);
    expect(h.sim.resources.findByKind('example.com/v1', 'Widget')).toBeUndefined();
  });
});

describe('custom resources under RBAC: what a platform team grants keelson for a custom kind', () => {
  // deploy/kustomize/base's ClusterRole plus the rule docs/install.md tells to add per custom kind.
  const EXTRA_RULE = { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] };

  /** A ClusterRole of these rules, bound to user keelson, created by the cluster's admin. */
  async function grant(sim: Awaited<ReturnType<typeof startSimulator>>, name: string, rules: unknown[]): Promise<void> {
    const admin = async (urlPath: string, body: unknown) => {
      const res = await fetch(`${sim.url}${urlPath}`, { method: 'POST', headers: { Authorization: `Bearer ${sim.auth.adminToken}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status).toBe(201);
    };
    await admin('/apis/rbac.authorization.k8s.io/v1/clusterroles', { metadata: { name }, rules });
    await admin('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'User', name: 'keelson', apiGroup: 'rbac.authorization.k8s.io' }],
    });
  }

  async function rbacSetup(extraRules: unknown[]) {
    const sim = await startSimulator({ rbac: true });
    await installGatewayApi(sim);
    const base = parseAllDocuments(await readFile(path.join(import.meta.dirname, '..', '..', 'deploy', 'kustomize', 'base', 'clusterrole.yaml'), 'utf8'))[0]!.toJS() as { rules: unknown[] };
    await grant(sim, 'keelson', [...base.rules, ...extraRules]);
    sim.auth.addToken('keelson-token', 'keelson');
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromString(sim.kubeconfigYaml({ token: 'keelson-token' }));
    const client = createKubeClient({ kubeConfig, log, clientId: 'rbac-test', requestTimeoutMs: 10_000, watchBackoffMs: 50, watchMaxFailures: 2 });
    return { sim, client, close: async () => { client.close(); await sim.close(); } };
  }

  it('with get, list, watch, create, patch and delete on the plural in its group: apply, prune and teardown work; list on the group\'s other kinds lets teardown remove the namespace', async () => {
    const { sim, client, close } = await rbacSetup([EXTRA_RULE]);
    try {
      const signal = new AbortController().signal;
      const ns = uniqueNamespace('rbac');
      const { inventory } = await client.apply([configMap('settings'), route('web', 100)], { namespace: ns, deploymentId: 'r1', signal });
      expect(httpRouteBackends(sim, ns, 'web')).toHaveLength(1);
      const routeRef = inventory.find((ref) => ref.kind === 'HTTPRoute')!;
      expect(await client.prune('r1', [routeRef], { signal })).toEqual([routeRef]);
      expect(httpRouteBackends(sim, ns, 'web')).toBeUndefined();
      const again = await client.apply([configMap('settings'), route('web', 100)], { namespace: ns, deploymentId: 'r1', signal });
      // The namespace keelson created goes only once nothing is left in it, which keelson checks
      // by listing every namespaced kind the cluster serves: one it may not list keeps it.
      const first = await client.teardown('r1', again.inventory, { signal, timeoutMs: 10_000 });
      expect(first.deleted.map((ref) => ref.kind).sort()).toEqual(['ConfigMap', 'HTTPRoute']);
      expect(first.kept).toEqual([{ ref: { apiVersion: 'v1', kind: 'Namespace', name: ns }, reason: 'it still holds gateways keelson may not list' }]);
      expect(httpRouteBackends(sim, ns, 'web')).toBeUndefined();
      await grant(sim, 'keelson-list', [{ apiGroups: ['gateway.networking.k8s.io'], resources: ['*'], verbs: ['list'] }]);
      const second = await client.teardown('r1', again.inventory, { signal, timeoutMs: 10_000 });
      expect(second).toEqual({ deleted: [{ apiVersion: 'v1', kind: 'Namespace', name: ns }], kept: [] });
    } finally {
      await close();
    }
  });

  it('without that rule, the apply fails naming the refused resource and group', async () => {
    const { client, close } = await rbacSetup([]);
    try {
      const error = await client.apply([route('web', 100)], { namespace: uniqueNamespace('norbac'), deploymentId: 'r2', signal: new AbortController().signal }).catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(/httproutes.*gateway\.networking\.k8s\.io|gateway\.networking\.k8s\.io.*httproutes/);
    } finally {
      await close();
    }
  });
});
