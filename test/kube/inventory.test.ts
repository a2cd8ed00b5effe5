import { describe, expect, it } from 'vitest';
import { sortForDelete } from '../../src/kube/applyOrder.ts';
import { staleRefs } from '../../src/kube/inventory.ts';
import type { ObjectRef } from '../../src/kube/types.ts';

const ref = (kind: string, name: string, namespace?: string, apiVersion = 'v1'): ObjectRef => ({ apiVersion, kind, name, ...(namespace ? { namespace } : {}) });

describe('staleRefs', () => {
  const cases: Array<{ name: string; previous: ObjectRef[]; next: ObjectRef[]; stale: ObjectRef[] }> = [
    { name: 'nothing before', previous: [], next: [ref('ConfigMap', 'a', 'ns')], stale: [] },
    { name: 'an object dropped', previous: [ref('ConfigMap', 'a', 'ns'), ref('ConfigMap', 'b', 'ns')], next: [ref('ConfigMap', 'a', 'ns')], stale: [ref('ConfigMap', 'b', 'ns')] },
    { name: 'the same name in another namespace is another object', previous: [ref('ConfigMap', 'a', 'old')], next: [ref('ConfigMap', 'a', 'new')], stale: [ref('ConfigMap', 'a', 'old')] },
    { name: 'the same name of another kind is another object', previous: [ref('ConfigMap', 'a', 'ns')], next: [ref('Secret', 'a', 'ns')], stale: [ref('ConfigMap', 'a', 'ns')] },
    {
      name: 'a new API version of the same object is not stale',
      previous: [ref('HorizontalPodAutoscaler', 'h', 'ns', 'autoscaling/v1')],
      next: [ref('HorizontalPodAutoscaler', 'h', 'ns', 'autoscaling/v2')],
      stale: [],
    },
    { name: 'custom resources and cluster-scoped objects', previous: [ref('Widget', 'w', 'ns', 'example.com/v1'), ref('ClusterRole', 'r', undefined, 'rbac.authorization.k8s.io/v1')], next: [], stale: [ref('Widget', 'w', 'ns', 'example.com/v1'), ref('ClusterRole', 'r', undefined, 'rbac.authorization.k8s.io/v1')] },
    { name: 'duplicates once', previous: [ref('ConfigMap', 'a', 'ns'), ref('ConfigMap', 'a', 'ns')], next: [], stale: [ref('ConfigMap', 'a', 'ns')] },
  ];
  for (const c of cases) {
    it(c.name, () => expect(staleRefs(c.previous, c.next)).toEqual(c.stale));
  }
});

describe('sortForDelete', () => {
  it('is apply order reversed: workloads before what they use, custom resources before their CRD', () => {
    const refs = [ref('CustomResourceDefinition', 'crd'), ref('Namespace', 'ns'), ref('Widget', 'w'), ref('ConfigMap', 'a'), ref('Deployment', 'd'), ref('ConfigMap', 'b')];
    expect(sortForDelete(refs).map((r) => r.name)).toEqual(['w', 'd', 'b', 'a', 'crd', 'ns']);
  });
});
