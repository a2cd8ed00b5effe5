// Drift by server-side-apply dry-run and live health after a rollout, against the simulator.
// Changes "outside keelson" are made straight on the simulator, as kubectl and an autoscaler
// would make them (their own field managers, merge patches, the scale subresource).
import { describe, expect, it } from 'vitest';
import type { Observation } from '../../src/kube/observe.ts';
import { sleepUntil } from '../helpers.ts';
import { CLIENT_ID, configMap, deployment, direct, pathOf, since, uniqueNamespace, useHarness } from './harness.ts';

describe('diff and live health', () => {
  const h = useHarness({ sim: { podStartupDelayMs: 200 } });

  function kubectlSetImage(ns: string, image: string) {
    return direct(h, 'PATCH', pathOf('apps/v1', 'Deployment', 'web', ns), {
      body: { spec: { template: { spec: { containers: [{ name: 'web', image }] } } } },
      contentType: 'application/strategic-merge-patch+json',
      query: { fieldManager: 'kubectl-set' },
    });
  }

  describe('diff', () => {
    it('finds no drift right after apply, and a changed field when kubectl changes it, naming the path', async () => {
      const ns = uniqueNamespace('drift');
      const objects = [deployment('web', 'shop:1', { replicas: 2 }), configMap('settings')];
      await h.client.apply(objects, { namespace: ns, deploymentId: 'dr1', signal: h.signal });
      expect(await h.client.diff(objects, { namespace: ns, deploymentId: 'dr1', signal: h.signal })).toEqual([]);

      await kubectlSetImage(ns, 'shop:hotfix');
      await direct(h, 'PATCH', pathOf('v1', 'ConfigMap', 'settings', ns), { body: { data: { key: 'edited' } }, contentType: 'application/merge-patch+json', query: { fieldManager: 'kubectl-edit' } });
      await sleepUntil(async () => (await h.client.diff(objects, { namespace: ns, deploymentId: 'dr1', signal: h.signal })).length === 2, { message: 'both edits seen' });
      const drifted = await h.client.diff(objects, { namespace: ns, deploymentId: 'dr1', signal: h.signal });
      expect(drifted).toEqual([
        { ref: { apiVersion: 'v1', kind: 'ConfigMap', name: 'settings', namespace: ns }, reason: 'changed', paths: ['.data.key'] },
        { ref: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns }, reason: 'changed', paths: ['.spec.template.spec.containers[name="web"].image'] },
      ]);

      // Repaired by apply, which reports what it changed.
      const repaired = await h.client.apply(objects, { namespace: ns, deploymentId: 'dr1', signal: h.signal });
      expect(repaired.changes.map((c) => c.action)).toEqual(['configured', 'configured']);
      expect(await h.client.diff(objects, { namespace: ns, deploymentId: 'dr1', signal: h.signal })).toEqual([]);
    });

    it('does not count replicas an autoscaler set through the scale subresource', async () => {
      const ns = uniqueNamespace('hpa');
      const objects = [deployment('web', 'shop:1', { replicas: 2 })];
      await h.client.apply(objects, { namespace: ns, deploymentId: 'dr2', signal: h.signal });
      const scaled = await direct(h, 'PATCH', `${pathOf('apps/v1', 'Deployment', 'web', ns)}/scale`, {
        body: { spec: { replicas: 5 } },
        contentType: 'application/merge-patch+json',
        query: { fieldManager: 'horizontal-pod-autoscaler' },
      });
      expect(scaled.status).toBe(200);
      await sleepUntil(async () => (await h.client.observe('dr2', [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns }])).objects.length === 1);
      expect(await h.client.diff(objects, { namespace: ns, deploymentId: 'dr2', signal: h.signal })).toEqual([]);
    });

    it('reports a deleted object as missing', async () => {
      const ns = uniqueNamespace('missing');
      const objects = [configMap('a'), configMap('b')];
      await h.client.apply(objects, { namespace: ns, deploymentId: 'dr3', signal: h.signal });
      await direct(h, 'DELETE', pathOf('v1', 'ConfigMap', 'b', ns));
      await sleepUntil(async () => (await h.client.diff(objects, { namespace: ns, deploymentId: 'dr3', signal: h.signal })).length === 1, { message: 'deletion seen' });
      expect(await h.client.diff(objects, { namespace: ns, deploymentId: 'dr3', signal: h.signal })).toEqual([
        { ref: { apiVersion: 'v1', kind: 'ConfigMap', name: 'b', namespace: ns }, reason: 'missing', paths: [] },
      ]);
    });

    it('costs no request when nothing changed since it last looked', async () => {
      const ns = uniqueNamespace('cheap');
      const objects = [configMap('a'), configMap('b')];
      await h.client.apply(objects, { namespace: ns, deploymentId: 'dr4', signal: h.signal });
      await h.client.diff(objects, { namespace: ns, deploymentId: 'dr4', signal: h.signal });
      const from = h.proxy.requests.length;
      expect(await h.client.diff(objects, { namespace: ns, deploymentId: 'dr4', signal: h.signal })).toEqual([]);
      expect(since(h, from).filter((r) => r.verb !== 'watch')).toEqual([]);
    });
  });

  describe('observe and subscribeHealth', () => {
    it("follows a healthy deployment that starts crash-looping outside keelson, naming the pod and reason, and its recovery", async () => {
      const ns = uniqueNamespace('live');
      const { inventory } = await h.client.apply([deployment('web', 'shop:1'), configMap('c')], { namespace: ns, deploymentId: 'lh1', signal: h.signal });
      await h.client.verify(inventory, {});
      const from = h.proxy.requests.length;
      const observed = await h.client.observe('lh1', inventory);
      expect(observed.status).toBe('Current');
      expect(since(h, from).filter((r) => r.verb !== 'watch')).toEqual([]);

      const seen: Observation[] = [];
      const unsubscribe = h.client.subscribeHealth('lh1', inventory, (o) => seen.push(o));
      try {
        await sleepUntil(() => seen.at(-1)?.status === 'Current', { message: 'first observation' });
        await kubectlSetImage(ns, 'shop:crashloop');
        const failed = await sleepUntil(() => seen.find((o) => o.status === 'Failed'), { message: 'crash loop observed', timeoutMs: 20_000 });
        expect(failed.message).toMatch(new RegExp(`^Deployment ${ns}/web: pod web-[a-z0-9]+-[a-z0-9]+: container web is waiting: CrashLoopBackOff`));
        await kubectlSetImage(ns, 'shop:1');
        await sleepUntil(() => seen.at(-1)?.status === 'Current', { message: 'recovery observed', timeoutMs: 20_000 });
      } finally {
        unsubscribe();
      }
      const count = seen.length;
      await kubectlSetImage(ns, 'shop:2');
      await sleepUntil(async () => (await h.client.observe('lh1', inventory)).status === 'Current', { message: 'rolled again' });
      expect(seen).toHaveLength(count);
    });

    it('reads an object of a kind the cluster no longer serves as missing, asking discovery at most once a minute', async () => {
      const ns = uniqueNamespace('unserved');
      const { inventory } = await h.client.apply([configMap('a')], { namespace: ns, deploymentId: 'lh3', signal: h.signal });
      const widget = { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', namespace: ns };
      const discovery = () => h.sim.requests.records({ client: CLIENT_ID }).filter((r) => r.path?.startsWith('/apis/example.com')).length;
      const before = discovery();
      for (let i = 0; i < 5; i++) {
        const observation = await h.client.observe('lh3', [...inventory, widget]);
        expect(observation.objects.find((o) => o.kind === 'Widget')?.status).toBe('NotFound');
      }
      expect(discovery() - before).toBeLessThanOrEqual(1);
    });

    it('reports a missing object', async () => {
      const ns = uniqueNamespace('obsmissing');
      const { inventory } = await h.client.apply([configMap('a')], { namespace: ns, deploymentId: 'lh2', signal: h.signal });
      await direct(h, 'DELETE', pathOf('v1', 'ConfigMap', 'a', ns));
      const observation = await sleepUntil(async () => {
        const o = await h.client.observe('lh2', inventory);
        return o.status === 'NotFound' ? o : undefined;
      });
      expect(observation.message).toBe(`ConfigMap ${ns}/a: The object does not exist.`);
    });
  });
});
