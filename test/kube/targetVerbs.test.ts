// The kube client verbs the deploy targets use (src/targets/kubernetes/): get, scaleTo, serves
// and labelledObjects, against the simulator, counting requests on the wire.
import { describe, expect, it } from 'vitest';
import { TerminalError } from '../../src/errors.ts';
import { sleepUntil } from '../helpers.ts';
import { configMap, deployment, read, since, uniqueNamespace, useHarness, writes } from './harness.ts';

describe('kube client verbs for deploy targets', () => {
  const h = useHarness({ sim: { podStartupDelayMs: 100 } });

  it('get reads the live object, and undefined for a missing object or an unserved kind', async () => {
    const ns = uniqueNamespace('get');
    await h.client.apply([configMap('c', { data: { a: '1' } })], { namespace: ns, deploymentId: 'g1', signal: h.signal });
    expect((await h.client.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'c', namespace: ns }, { signal: h.signal }))?.data).toEqual({ a: '1' });
    expect(await h.client.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'nope', namespace: ns }, { signal: h.signal })).toBeUndefined();
    expect(await h.client.get({ apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', namespace: ns }, { signal: h.signal })).toBeUndefined();
  });

  it('scaleTo patches the scale subresource once, sends nothing when already at that size, and waits for nothing', async () => {
    const ns = uniqueNamespace('scale');
    const { inventory } = await h.client.apply([deployment('web', 'web:1', { replicas: 1 })], { namespace: ns, deploymentId: 's1', signal: h.signal });
    const ref = inventory[0]!;
    const from = h.proxy.requests.length;
    await h.client.scaleTo('s1', ref, 3, { signal: h.signal });
    expect(writes(since(h, from)).map((r) => `${r.method} ${r.path}`)).toEqual([`PATCH /apis/apps/v1/namespaces/${ns}/deployments/web/scale`]);
    expect((await read(h, 'apps/v1', 'Deployment', 'web', ns))?.spec.replicas).toBe(3);
    // The cache catches up with the write, then a second call is free.
    const replicas = async () => ((await h.client.get(ref, { signal: h.signal }))?.spec as { replicas?: number } | undefined)?.replicas;
    await sleepUntil(async () => (await replicas()) === 3, { message: 'cache shows 3 replicas' });
    const again = h.proxy.requests.length;
    await h.client.scaleTo('s1', ref, 3, { signal: h.signal });
    expect(writes(since(h, again))).toEqual([]);
  });

  it("scaleTo refuses another deployment's workload and reports a missing one as the server's 404", async () => {
    const ns = uniqueNamespace('scaleown');
    const { inventory } = await h.client.apply([deployment('web', 'web:1')], { namespace: ns, deploymentId: 'owner', signal: h.signal });
    const refused = await h.client.scaleTo('thief', inventory[0]!, 0, { signal: h.signal }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'owned_by_other' });
    expect((await read(h, 'apps/v1', 'Deployment', 'web', ns))?.spec.replicas).toBe(1);
    const missing = await h.client.scaleTo('owner', { ...inventory[0]!, name: 'ghost' }, 1, { signal: h.signal }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(TerminalError);
    expect((missing as TerminalError).message).toMatch(/HTTP 404/);
  });

  it('serves tells served kinds from unserved ones', async () => {
    expect(await h.client.serves('apps/v1', 'Deployment', { signal: h.signal })).toBe(true);
    expect(await h.client.serves('example.com/v1', 'Widget', { signal: h.signal })).toBe(false);
  });

  it('labelledObjects lists the top-level objects of a deployment, not the ReplicaSets and Pods made for them', async () => {
    const ns = uniqueNamespace('labelled');
    await h.client.apply([deployment('web', 'web:1'), configMap('c')], { namespace: ns, deploymentId: 'l1', signal: h.signal });
    await h.client.verify([{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns }], { signal: h.signal });
    const kinds = [
      { apiVersion: 'apps/v1', kind: 'Deployment' },
      { apiVersion: 'apps/v1', kind: 'ReplicaSet' },
      { apiVersion: 'v1', kind: 'Pod' },
      { apiVersion: 'example.com/v1', kind: 'Widget' },
    ];
    const objects = await h.client.labelledObjects('l1', kinds, { signal: h.signal });
    expect(objects.map((o) => `${o.kind} ${o.metadata.name}`)).toEqual(['Deployment web']);
  });
});
