import { describe, expect, it } from 'vitest';
import { sortForApply } from '../../src/kube/applyOrder.ts';

describe('sortForApply', () => {
  it('puts dependencies first and pointers last, keeping rendered order within a rank', () => {
    const kinds = [
      'Ingress', 'Deployment', 'Service', 'ConfigMap', 'HorizontalPodAutoscaler', 'Secret', 'Namespace',
      'PersistentVolumeClaim', 'ServiceAccount', 'CustomResourceDefinition', 'Widget', 'Job', 'ClusterRoleBinding',
      'PodDisruptionBudget', 'StatefulSet',
    ];
    const sorted = sortForApply(kinds.map((kind, i) => ({ kind, i }))).map((o) => o.kind);
    expect(sorted).toEqual([
      'Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'ClusterRoleBinding', 'ConfigMap', 'Secret',
      'PersistentVolumeClaim', 'Service', 'Deployment', 'Job', 'StatefulSet',
      'Ingress', 'HorizontalPodAutoscaler', 'Widget', 'PodDisruptionBudget',
    ]);
  });

  it('does not mutate its input', () => {
    const input = [{ kind: 'Deployment' }, { kind: 'Namespace' }];
    sortForApply(input);
    expect(input[0]?.kind).toBe('Deployment');
  });
});
