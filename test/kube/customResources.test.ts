// keelson's kube client and custom resources whose CRD is installed after keelson started: apply
// discovers the kind afresh although a read found it unserved a moment before; the cluster cache
// watches it; prune and teardown delete custom resources even in a process that last saw the kind
// unserved (a miss remembered for reads must not make them skip an object as if gone).
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { createKubeClient } from '../../src/kube/kubeClient.ts';
import type { KubeObject, ObjectRef } from '../../src/kube/types.ts';
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
