import { describe, expect, it } from 'vitest';
import { observeInventory, type InventoryEntry } from '../../src/kube/observe.ts';
import type { KubeObject } from '../../src/kube/types.ts';

const available = [
  { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
  { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
];

function deployment(status: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop', generation: 2, annotations: { 'deployment.kubernetes.io/revision': '2' } },
    spec: { replicas: 2, selector: { matchLabels: { app: 'web' } } },
    status: { observedGeneration: 2, ...status },
  };
}
const healthy = deployment({ replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2, conditions: available });
const lostOne = deployment({ replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1, conditions: available });

function rs(name: string, revision: string): KubeObject {
  return { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name, namespace: 'shop', annotations: { 'deployment.kubernetes.io/revision': revision }, ownerReferences: [{ kind: 'Deployment', name: 'web', controller: true }] } };
}
function pod(name: string, owner: string, waiting?: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', ownerReferences: [{ kind: 'ReplicaSet', name: owner, controller: true }] },
    status: waiting ? { phase: 'Running', containerStatuses: [{ name: 'web', state: { waiting: { reason: waiting, message: 'back-off 10s' } } }] } : { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}
const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'shop' };
const cmRef = { apiVersion: 'v1', kind: 'ConfigMap', name: 'settings', namespace: 'shop' };
const cm: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'shop' } };
const entry = (object: KubeObject | undefined, pods: KubeObject[] = [], replicaSets: KubeObject[] = []): InventoryEntry => ({ ref, object, pods, replicaSets });

describe('observeInventory', () => {
  const cases: Array<{ name: string; entries: InventoryEntry[]; status: string; message: string }> = [
    { name: 'all Current', entries: [entry(healthy, [pod('web-b-1', 'web-b')], [rs('web-b', '2')]), { ref: cmRef, object: cm, pods: [], replicaSets: [] }], status: 'Current', message: '2 objects are Current.' },
    {
      name: 'a crash-looping pod of the current revision fails it, naming pod and reason',
      entries: [entry(lostOne, [pod('web-b-1', 'web-b'), pod('web-b-2', 'web-b', 'CrashLoopBackOff')], [rs('web-b', '2')])],
      status: 'Failed',
      message: 'Deployment shop/web: pod web-b-2: container web is waiting: CrashLoopBackOff (back-off 10s).',
    },
    {
      name: 'an image that cannot be pulled fails it',
      entries: [entry(healthy, [pod('web-b-1', 'web-b', 'ImagePullBackOff')], [rs('web-b', '2')])],
      status: 'Failed',
      message: 'Deployment shop/web: pod web-b-1: container web is waiting: ImagePullBackOff (back-off 10s).',
    },
    {
      name: 'a lone ErrImagePull degrades but does not fail',
      entries: [entry(healthy, [pod('web-b-1', 'web-b', 'ErrImagePull')], [rs('web-b', '2')])],
      status: 'InProgress',
      message: 'Deployment shop/web: pod web-b-1: container web is waiting: ErrImagePull (back-off 10s).',
    },
    {
      name: 'old-revision pods do not count',
      entries: [entry(healthy, [pod('web-a-1', 'web-a', 'CrashLoopBackOff'), pod('web-b-1', 'web-b')], [rs('web-a', '1'), rs('web-b', '2')])],
      status: 'Current',
      message: '1 object is Current.',
    },
    {
      name: 'lost availability, no pod reason',
      entries: [entry(lostOne, [pod('web-b-1', 'web-b')], [rs('web-b', '2')])],
      status: 'InProgress',
      message: 'Deployment shop/web: Waiting for rollout to finish: 1 of 2 updated replicas are available.',
    },
    { name: 'a missing object', entries: [entry(undefined)], status: 'NotFound', message: 'Deployment shop/web: The object does not exist.' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const observation = observeInventory(c.entries);
      expect({ status: observation.status, message: observation.message }).toEqual({ status: c.status, message: c.message });
      expect(observation.objects).toHaveLength(c.entries.length);
    });
  }
});
