// The inventory verbs after apply, against the simulator: prune exactly the stale refs, stop the
// workloads of an inventory in any namespace, and tear a deployment down (idempotently).
import { describe, expect, it } from 'vitest';
import type { ObjectRef } from '../../src/kube/types.ts';
import { sleepUntil } from '../helpers.ts';
import {
  clusterRole,
  configMap,
  createOutside,
  daemonSet,
  deployment,
  direct,
  labelOf,
  read,
  service,
  since,
  statefulSet,
  uniqueNamespace,
  useHarness,
  writes,
} from './harness.ts';

describe('prune, stop and teardown', () => {
  const h = useHarness({ sim: { podStartupDelayMs: 200 } });

  describe('prune', () => {
    it('deletes exactly the stale refs that still carry the deployment label, in any namespace', async () => {
      const ns = uniqueNamespace('prune');
      const other = uniqueNamespace('prune2');
      const { inventory } = await h.client.apply(
        [configMap('keep'), configMap('gone'), configMap('far', { namespace: other }), { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'pdb' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'x' } } } }],
        { namespace: ns, deploymentId: 'p1', signal: h.signal },
      );
      // Someone else's object under a stale ref, and a ref to something already gone.
      await h.client.apply([configMap('taken')], { namespace: ns, deploymentId: 'p2', signal: h.signal });
      const stale: ObjectRef[] = [
        ...inventory.filter((ref) => ref.name !== 'keep'),
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'taken', namespace: ns },
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'never-existed', namespace: ns },
      ];

      const deleted = await h.client.prune('p1', stale, { signal: h.signal });
      expect(deleted.map((r) => `${r.kind}/${r.namespace}/${r.name}`).sort()).toEqual([`ConfigMap/${ns}/gone`, `ConfigMap/${other}/far`, `PodDisruptionBudget/${ns}/pdb`]);
      await sleepUntil(async () => (await read(h, 'v1', 'ConfigMap', 'gone', ns)) === undefined, { message: 'stale ConfigMap deleted' });
      expect(await read(h, 'v1', 'ConfigMap', 'far', other)).toBeUndefined();
      expect(await read(h, 'policy/v1', 'PodDisruptionBudget', 'pdb', ns)).toBeUndefined();
      expect(await read(h, 'v1', 'ConfigMap', 'keep', ns)).toBeDefined();
      expect(labelOf(await read(h, 'v1', 'ConfigMap', 'taken', ns))).toBe('p2');
    });

    it('deletes a stale cluster-scoped object, and keeps one another deployment took', async () => {
      const ns = uniqueNamespace('prunecluster');
      const gone = `${ns}-reader`;
      const taken = `${ns}-shared`;
      const { inventory } = await h.client.apply([clusterRole(gone), clusterRole(taken), configMap('c')], { namespace: ns, deploymentId: 'p4', signal: h.signal });
      expect(inventory.filter((r) => r.kind === 'ClusterRole').map((r) => r.namespace)).toEqual([undefined, undefined]);
      await h.client.apply([{ ...clusterRole(taken), metadata: { name: taken, annotations: { 'keelson.dev/adopt': 'true' } } }], { namespace: ns, deploymentId: 'p5', signal: h.signal, allowAdopt: true });
      const deleted = await h.client.prune('p4', inventory.filter((r) => r.kind === 'ClusterRole'), { signal: h.signal });
      expect(deleted.map((r) => r.name)).toEqual([gone]);
      expect(await read(h, 'rbac.authorization.k8s.io/v1', 'ClusterRole', gone)).toBeUndefined();
      expect(labelOf(await read(h, 'rbac.authorization.k8s.io/v1', 'ClusterRole', taken))).toBe('p5');
    });

    it('deletes a stale Namespace only when nothing else is left in it', async () => {
      const ns = uniqueNamespace('base');
      const owned = uniqueNamespace('ownedns');
      const namespaceObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: owned } };
      await h.client.apply([namespaceObject, configMap('inside', { namespace: owned })], { namespace: ns, deploymentId: 'p3', signal: h.signal });
      await createOutside(h, configMap('squatter', { namespace: owned }), 'kubectl-create');
      const nsRef: ObjectRef = { apiVersion: 'v1', kind: 'Namespace', name: owned };

      expect(await h.client.prune('p3', [nsRef], { signal: h.signal })).toEqual([]);
      expect((await read(h, 'v1', 'Namespace', owned))?.metadata.deletionTimestamp).toBeUndefined();

      await direct(h, 'DELETE', `/api/v1/namespaces/${owned}/configmaps/squatter`);
      expect(await h.client.prune('p3', [nsRef], { signal: h.signal })).toEqual([nsRef]);
      await sleepUntil(async () => (await read(h, 'v1', 'Namespace', owned)) === undefined, { message: 'namespace gone' });
    });
  });

  describe('scaleToZero', () => {
    it("scales the inventory's Deployments and StatefulSets in every namespace to 0 ready replicas and reports DaemonSets", async () => {
      const ns = uniqueNamespace('stop');
      const other = uniqueNamespace('stop2');
      const { inventory } = await h.client.apply(
        [deployment('web', 'shop:1', { replicas: 2 }), statefulSet('db', 'db:1', other), daemonSet('agent', 'agent:1'), configMap('c')],
        { namespace: ns, deploymentId: 's1', signal: h.signal },
      );
      await h.client.verify(inventory, {});
      const result = await h.client.scaleToZero('s1', inventory, { signal: h.signal });
      expect(result.scaled.map((r) => `${r.kind}/${r.namespace}`).sort()).toEqual([`Deployment/${ns}`, `StatefulSet/${other}`]);
      expect(result.unscalable.map((r) => `${r.kind}/${r.name}`)).toEqual(['DaemonSet/agent']);
      // what the stopped workloads would run again (the stop records it as the deployed image)
      expect([...result.images].sort()).toEqual(['db:1', 'shop:1']);
      const deploy = await read(h, 'apps/v1', 'Deployment', 'web', ns);
      const sts = await read(h, 'apps/v1', 'StatefulSet', 'db', other);
      expect(deploy?.spec.replicas).toBe(0);
      expect(deploy?.status.readyReplicas ?? 0).toBe(0);
      expect(sts?.spec.replicas).toBe(0);
      expect(sts?.status.readyReplicas ?? 0).toBe(0);

      // Stopped already: nothing to write.
      const from = h.proxy.requests.length;
      await h.client.scaleToZero('s1', inventory, { signal: h.signal });
      expect(writes(since(h, from))).toEqual([]);
    });

    it("leaves alone a workload that is no longer the deployment's", async () => {
      const ns = uniqueNamespace('stopother');
      const { inventory } = await h.client.apply([deployment('web', 'shop:1')], { namespace: ns, deploymentId: 's2', signal: h.signal });
      const result = await h.client.scaleToZero('someone-else', inventory, { signal: h.signal });
      expect(result.scaled).toEqual([]);
      expect((await read(h, 'apps/v1', 'Deployment', 'web', ns))?.spec.replicas).toBe(1);
    });
  });

  describe('teardown', () => {
    it('deletes the inventory, waits until it is gone, and removes only the namespaces keelson made that are left empty', async () => {
      const ns = uniqueNamespace('tear');
      const shared = uniqueNamespace('tearshared');
      const foreign = uniqueNamespace('tearforeign');
      await direct(h, 'POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: foreign } } });
      const { inventory } = await h.client.apply(
        [deployment('web', 'shop:1', { replicas: 2 }), service('web'), configMap('c'), configMap('s', { namespace: shared }), configMap('f', { namespace: foreign }), clusterRole(`${ns}-role`)],
        { namespace: ns, deploymentId: 'x1', signal: h.signal },
      );
      await h.client.verify(inventory, {});
      // Another deployment still has something in `shared`.
      await h.client.apply([configMap('neighbour')], { namespace: shared, deploymentId: 'x2', signal: h.signal });

      const result = await h.client.teardown('x1', inventory, { signal: h.signal });
      expect(result.deleted.map((r) => `${r.kind}/${r.namespace ?? ''}/${r.name}`).sort()).toEqual(
        [`ClusterRole//${ns}-role`, `ConfigMap/${foreign}/f`, `ConfigMap/${ns}/c`, `ConfigMap/${shared}/s`, `Deployment/${ns}/web`, `Namespace//${ns}`, `Service/${ns}/web`].sort(),
      );
      expect(result.kept.map((k) => `${k.ref.name}: ${k.reason}`).sort()).toEqual(
        [`${foreign}: keelson did not create it`, `${shared}: it still holds ConfigMap ${shared}/neighbour`].sort(),
      );
      // Gone when teardown returns: the cache saw the deletions (pods went with the Deployment).
      expect(await read(h, 'apps/v1', 'Deployment', 'web', ns)).toBeUndefined();
      expect(await read(h, 'v1', 'Namespace', ns)).toBeUndefined();
      expect(await read(h, 'rbac.authorization.k8s.io/v1', 'ClusterRole', `${ns}-role`)).toBeUndefined();
      // Nothing of it is left: no ReplicaSet, no Pod.
      expect([...h.sim.store.all()].filter(([, o]) => o.metadata.namespace === ns)).toEqual([]);
      expect(await read(h, 'v1', 'ConfigMap', 'neighbour', shared)).toBeDefined();
      expect(await read(h, 'v1', 'Namespace', foreign)).toBeDefined();

      // Idempotent: a second run finds nothing left to do and writes nothing.
      const from = h.proxy.requests.length;
      const again = await h.client.teardown('x1', inventory, { signal: h.signal });
      expect(again.deleted).toEqual([]);
      expect(writes(since(h, from))).toEqual([]);
    });

    it('finishes the job when run again after being interrupted', async () => {
      const ns = uniqueNamespace('resume');
      const { inventory } = await h.client.apply([configMap('a'), configMap('b'), configMap('c')], { namespace: ns, deploymentId: 'x3', signal: h.signal });
      const controller = new AbortController();
      const from = h.proxy.requests.length;
      const first = h.client.teardown('x3', inventory, { signal: controller.signal }).catch((e: unknown) => e);
      await sleepUntil(() => writes(since(h, from)).length >= 1, { message: 'first deletion sent' });
      controller.abort();
      expect(((await first) as Error).name).toBe('AbortError');
      const result = await h.client.teardown('x3', inventory, { signal: h.signal });
      expect(result.kept).toEqual([]);
      for (const name of ['a', 'b', 'c']) expect(await read(h, 'v1', 'ConfigMap', name, ns)).toBeUndefined();
      expect(await read(h, 'v1', 'Namespace', ns)).toBeUndefined();
    });

    it("keeps an object that now belongs to another deployment", async () => {
      const ns = uniqueNamespace('tearowned');
      const { inventory } = await h.client.apply([configMap('moved')], { namespace: ns, deploymentId: 'x4', signal: h.signal });
      await h.client.apply([configMap('moved', { annotations: { 'keelson.dev/adopt': 'true' } })], { namespace: ns, deploymentId: 'x5', signal: h.signal, allowAdopt: true });
      const result = await h.client.teardown('x4', inventory, { signal: h.signal });
      expect(result.deleted).toEqual([]);
      expect(result.kept.map((k) => k.reason)).toEqual(['it belongs to keelson deployment x5', `it still holds ConfigMap ${ns}/moved`]);
      expect(labelOf(await read(h, 'v1', 'ConfigMap', 'moved', ns))).toBe('x5');
    });
  });
});
