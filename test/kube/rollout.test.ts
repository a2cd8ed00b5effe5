import { describe, expect, it } from 'vitest';
import { ProblemTracker, isNewRevisionPod, matchesSelector, newReplicaSetName, podProblem, selectorToString } from '../../src/kube/rollout.ts';
import type { KubeObject } from '../../src/kube/types.ts';

function pod(name: string, extra: Partial<KubeObject> & { waiting?: { reason: string; message?: string } } = {}): KubeObject {
  const { waiting, ...rest } = extra;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', ...(rest.metadata ?? {}) },
    status: waiting ? { phase: 'Pending', containerStatuses: [{ name: 'web', state: { waiting } }] } : { phase: 'Running' },
  };
}

function rs(name: string, revision: string, owner = 'web'): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name,
      annotations: { 'deployment.kubernetes.io/revision': revision },
      ownerReferences: [{ kind: 'Deployment', name: owner, controller: true }],
    },
  };
}

const deployment: KubeObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'shop', annotations: { 'deployment.kubernetes.io/revision': '2' } },
};

describe('podProblem', () => {
  it('names the pod, the container, the reason and the detail', () => {
    const problem = podProblem(pod('shop-7d9c-abcde', { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "shop:doesnotexist"' } }));
    expect(problem).toEqual({
      message: 'pod shop-7d9c-abcde: container web is waiting: ImagePullBackOff (Back-off pulling image "shop:doesnotexist")',
      mayBeTransient: false,
    });
  });

  it.each(['CrashLoopBackOff', 'InvalidImageName', 'CreateContainerConfigError'])('flags %s', (reason) => {
    expect(podProblem(pod('p', { waiting: { reason } }))).toEqual({ message: `pod p: container web is waiting: ${reason}`, mayBeTransient: false });
  });

  it('flags ErrImagePull as possibly transient', () => {
    expect(podProblem(pod('p', { waiting: { reason: 'ErrImagePull' } }))?.mayBeTransient).toBe(true);
  });

  it('ignores ordinary waiting reasons and running pods', () => {
    expect(podProblem(pod('p', { waiting: { reason: 'ContainerCreating' } }))).toBeUndefined();
    expect(podProblem(pod('p'))).toBeUndefined();
  });
});

describe('selectorToString', () => {
  it('renders matchLabels and matchExpressions', () => {
    expect(
      selectorToString({
        matchLabels: { app: 'web', tier: 'front' },
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['a', 'b'] },
          { key: 'x', operator: 'NotIn', values: ['c'] },
          { key: 'y', operator: 'Exists' },
          { key: 'z', operator: 'DoesNotExist' },
        ],
      }),
    ).toBe('app=web,tier=front,env in (a,b),x notin (c),y,!z');
  });

  it('is undefined for an empty selector', () => {
    expect(selectorToString({})).toBeUndefined();
    expect(selectorToString(undefined)).toBeUndefined();
  });
});

describe('new revision pods', () => {
  const replicaSets = [rs('web-old', '1'), rs('web-new', '2'), rs('other-9', '7', 'other')];

  it('finds the ReplicaSet whose revision matches the Deployment', () => {
    expect(newReplicaSetName(deployment, replicaSets)).toBe('web-new');
  });

  it('falls back to the highest revision the Deployment owns', () => {
    const unannotated = { ...deployment, metadata: { name: 'web', namespace: 'shop' } };
    expect(newReplicaSetName(unannotated, [rs('web-a', '3'), rs('web-b', '4'), rs('x', '9', 'other')])).toBe('web-b');
  });

  it('tells Deployment pods apart by their owning ReplicaSet', () => {
    const owned = (rsName: string) => pod('p', { metadata: { name: 'p', ownerReferences: [{ kind: 'ReplicaSet', name: rsName }] } });
    expect(isNewRevisionPod(deployment, owned('web-new'), replicaSets)).toBe(true);
    expect(isNewRevisionPod(deployment, owned('web-old'), replicaSets)).toBe(false);
  });

  it('counts a pod as new when the evidence is missing', () => {
    expect(isNewRevisionPod(deployment, pod('p'), [])).toBe(true);
  });

  it('uses controller-revision-hash for StatefulSets', () => {
    const sts: KubeObject = { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db' }, status: { updateRevision: 'db-2' } };
    expect(isNewRevisionPod(sts, pod('db-0', { metadata: { name: 'db-0', labels: { 'controller-revision-hash': 'db-2' } } }))).toBe(true);
    expect(isNewRevisionPod(sts, pod('db-1', { metadata: { name: 'db-1', labels: { 'controller-revision-hash': 'db-1' } } }))).toBe(false);
  });

  it('uses pod-template-generation for DaemonSets', () => {
    const ds: KubeObject = { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent', generation: 3 } };
    expect(isNewRevisionPod(ds, pod('a', { metadata: { name: 'a', labels: { 'pod-template-generation': '3' } } }))).toBe(true);
    expect(isNewRevisionPod(ds, pod('b', { metadata: { name: 'b', labels: { 'pod-template-generation': '2' } } }))).toBe(false);
  });
});

describe('ProblemTracker', () => {
  const broken = { message: 'broken', mayBeTransient: false };
  const pullError = { message: 'pull error', mayBeTransient: true };

  it('is due only once a problem persisted for the grace period', () => {
    const tracker = new ProblemTracker();
    expect(tracker.observe('a', broken, 1_000, 500)).toBe(1_500);
    expect(tracker.observe('a', broken, 1_400, 500)).toBe(1_500);
  });

  it('gives a lone ErrImagePull three grace periods, counted from its start', () => {
    const tracker = new ProblemTracker();
    expect(tracker.observe('a', pullError, 1_000, 500)).toBe(2_500);
    // Backing off now: one grace period from the first failure.
    expect(tracker.observe('a', broken, 1_200, 500)).toBe(1_500);
  });

  it('starts over when the pod recovers or disappears', () => {
    const tracker = new ProblemTracker();
    tracker.observe('a', broken, 1_000, 500);
    expect(tracker.observe('a', undefined, 1_200, 500)).toBeUndefined();
    expect(tracker.observe('a', broken, 1_300, 500)).toBe(1_800);
    tracker.retain(new Set());
    expect(tracker.observe('a', broken, 2_000, 500)).toBe(2_500);
  });
});

describe('matchesSelector', () => {
  const labels = { app: 'web', tier: 'front' };
  const cases: Array<{ name: string; selector: unknown; matches: boolean }> = [
    { name: 'matchLabels subset', selector: { matchLabels: { app: 'web' } }, matches: true },
    { name: 'matchLabels mismatch', selector: { matchLabels: { app: 'db' } }, matches: false },
    { name: 'In', selector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] }, matches: true },
    { name: 'NotIn', selector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] }, matches: false },
    { name: 'Exists', selector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] }, matches: true },
    { name: 'DoesNotExist', selector: { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, matches: false },
    { name: 'both parts must hold', selector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['back'] }] }, matches: false },
    { name: 'an empty selector selects nothing here', selector: {}, matches: false },
  ];
  for (const c of cases) {
    it(c.name, () => expect(matchesSelector(c.selector, labels)).toBe(c.matches));
  }
});
