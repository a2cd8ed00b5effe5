// Namespaced mode (KEELSON_NAMESPACES): the pure refusal decision, table-driven, and the kube
// client in that mode against the simulator through the recording proxy: one watch per kind and
// listed namespace (no LIST or WATCH across the cluster), objects elsewhere and cluster-scoped
// ones refused before any write, a listed namespace that is missing refused with the way out,
// and no namespace ever created or deleted by keelson.
import { describe, expect, it } from 'vitest';
import { namespaceMissingMessage, namespaceRefusals } from '../../src/kube/namespaceScope.ts';
import type { ObjectRef } from '../../src/kube/types.ts';
import { clusterRole, configMap, createOutside, deployment, read, since, uniqueNamespace, useHarness, writes } from './harness.ts';

const cm = (name: string, namespace?: string): ObjectRef => ({ apiVersion: 'v1', kind: 'ConfigMap', name, ...(namespace ? { namespace } : {}) });

describe('namespaceRefusals', () => {
  it.each([
    ['all in listed namespaces', [cm('a', 'shop-prod'), cm('b', 'shop-staging')], []],
    ['none', [], []],
    [
      'an object in another namespace',
      [cm('a', 'shop-prod'), cm('b', 'kube-system')],
      ['ConfigMap b is in namespace kube-system, which is not one of the namespaces keelson may deploy into (KEELSON_NAMESPACES=shop-prod,shop-staging)'],
    ],
    [
      'a cluster-scoped object',
      [{ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', name: 'pwn' }],
      ['ClusterRole pwn is cluster-scoped; keelson runs limited to the namespaces KEELSON_NAMESPACES=shop-prod,shop-staging and may not create cluster-scoped objects'],
    ],
    [
      'a Namespace (cluster-scoped as well)',
      [{ apiVersion: 'v1', kind: 'Namespace', name: 'shop-prod' }],
      ['Namespace shop-prod is cluster-scoped; keelson runs limited to the namespaces KEELSON_NAMESPACES=shop-prod,shop-staging and may not create cluster-scoped objects'],
    ],
  ] as Array<[string, ObjectRef[], string[]]>)('%s', (_name, refs, expected) => {
    expect(namespaceRefusals(refs, ['shop-prod', 'shop-staging'])).toEqual(expected);
  });
});

describe('kube client limited to namespaces', () => {
  const listed = [uniqueNamespace('ns-a'), uniqueNamespace('ns-b')];
  const missing = uniqueNamespace('ns-missing');
  const h = useHarness({ client: { namespaces: [...listed, missing] } });
  const [first = '', second = ''] = listed;

  it('applies and verifies in a listed namespace with one watch per namespace, never across the cluster', async () => {
    for (const ns of listed) await createOutside(h, configMap('seed', { namespace: ns }), 'admin');
    const from = h.proxy.requests.length;
    const result = await h.client.apply([deployment('web', 'nginx:1'), configMap('web-config')], { namespace: first, deploymentId: 'd1', signal: h.signal });
    expect(result.changes.map((c) => c.action)).toEqual(['created', 'created']);
    await h.client.verify(result.inventory, { signal: h.signal });
    const requests = since(h, from);
    const collections = requests.filter((r) => r.verb === 'list' || r.verb === 'watch');
    expect(collections.length).toBeGreaterThan(0);
    // every LIST and WATCH names a listed namespace
    expect(collections.filter((r) => !listed.some((ns) => r.path.includes(`/namespaces/${ns}/`)) && !r.path.includes(`/namespaces/${missing}/`))).toEqual([]);
    const deploymentWatches = new Set(collections.filter((r) => r.verb === 'watch' && r.path.endsWith('/deployments')).map((r) => /\/namespaces\/([^/]+)\//.exec(r.path)?.[1]));
    expect([...deploymentWatches].sort()).toEqual([...listed, missing].sort());
    // no namespace was created
    expect(writes(requests).filter((r) => r.path.startsWith('/api/v1/namespaces') && !r.path.includes('/', '/api/v1/namespaces/'.length))).toEqual([]);
  });

  it('refuses an object in another namespace and a cluster-scoped one before writing anything', async () => {
    const from = h.proxy.requests.length;
    const other = uniqueNamespace('elsewhere');
    await expect(
      h.client.apply([configMap('in-listed'), configMap('astray', { namespace: other }), clusterRole('pwn')], { namespace: second, deploymentId: 'd2', signal: h.signal }),
    ).rejects.toMatchObject({
      code: 'namespace_not_allowed',
      message: expect.stringContaining(`ConfigMap astray is in namespace ${other}, which is not one of the namespaces keelson may deploy into (KEELSON_NAMESPACES=`),
    });
    await expect(h.client.apply([clusterRole('pwn')], { namespace: second, deploymentId: 'd2', signal: h.signal })).rejects.toMatchObject({
      code: 'namespace_not_allowed',
      message: expect.stringContaining('ClusterRole pwn is cluster-scoped'),
    });
    expect(writes(since(h, from))).toEqual([]);
    expect(await read(h, 'v1', 'ConfigMap', 'in-listed', second)).toBeUndefined();
  });

  it('refuses a listed namespace that does not exist, telling to create it', async () => {
    const from = h.proxy.requests.length;
    await expect(h.client.apply([configMap('x')], { namespace: missing, deploymentId: 'd3', signal: h.signal })).rejects.toMatchObject({
      code: 'namespace_missing',
      message: namespaceMissingMessage(missing),
    });
    expect(namespaceMissingMessage(missing)).toContain(`kubectl create namespace ${missing}`);
    expect(writes(since(h, from))).toEqual([]);
    expect(await read(h, 'v1', 'Namespace', missing)).toBeUndefined();
  });

  it('teardown deletes the objects but never a namespace', async () => {
    const result = await h.client.apply([configMap('gone')], { namespace: second, deploymentId: 'd4', signal: h.signal });
    const torn = await h.client.teardown('d4', [{ apiVersion: 'v1', kind: 'Namespace', name: second }, ...result.inventory], { signal: h.signal, timeoutMs: 10_000 });
    expect(torn.deleted.map((r) => r.name)).toEqual(['gone']);
    expect(torn.kept.map((k) => k.ref.kind)).toEqual(['Namespace']);
    expect(await read(h, 'v1', 'Namespace', second)).toBeDefined();
  });
});
