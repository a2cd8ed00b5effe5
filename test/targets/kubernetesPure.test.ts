// The pure parts of the deploy-target contract and of the Kubernetes target, table-driven: the
// preconditions, split arithmetic (route weights, replica counts, read-back), the plan's checks,
// the objects a revision becomes, and what `observe` makes of the cluster's objects — including
// the HTTPRoute path, whose cluster side waits for the simulator's Gateway API.
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/kube/types.ts';
import type { Inventory } from '../../src/targets/contract.ts';
import {
  DuplicateSplitEntry,
  InvalidPlan,
  InvalidRevisionName,
  InvalidTargetInput,
  RevisionCarriesTraffic,
  RevisionNotFound,
  SplitForOtherDeployment,
  SplitNotFound,
  WeightsDoNotSum,
} from '../../src/targets/errors.ts';
import {
  parsePlan,
  renderRevisionService,
  renderRoute,
  renderSharedService,
  renderWorkload,
  REVISION_LABEL,
  servingObjects,
  SPLIT_ANNOTATION,
} from '../../src/targets/kubernetes/plan.ts';
import { apportion, replicaCounts, routeWeights, splitFromAmounts } from '../../src/targets/kubernetes/split.ts';
import { observation } from '../../src/targets/kubernetes/target.ts';
import { retireCall, revisionCall, splitCall } from '../../src/targets/preconditions.ts';
import { deployment, service } from '../kube/harness.ts';

const route: KubeObject = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'web' },
  spec: { parentRefs: [{ name: 'public' }], hostnames: ['web.example'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'web', port: 80 }] }] },
};
const plan = (extra: KubeObject[] = [route]) => ({ namespace: 'shop', objects: [deployment('web', 'web:1', { replicas: 3 }), service('web'), ...extra] });
const inv = (split?: Inventory['split']): Inventory => ({
  deploymentId: 'd1',
  revisions: [
    { name: 'r1', plan: plan() },
    { name: 'r2', plan: plan() },
  ],
  ...(split ? { split } : {}),
});
const split = (...entries: Array<[string, number]>) => ({ deploymentId: 'd1', entries: entries.map(([revision, weightBps]) => ({ revision, weightBps })) });

describe('preconditions', () => {
  it.each([
    ['no split', () => splitCall(inv()), SplitNotFound],
    ['a split for another deployment', () => splitCall(inv({ ...split(['r1', 10_000]), deploymentId: 'd2' })), SplitForOtherDeployment],
    ['weights summing to 9999', () => splitCall(inv(split(['r1', 5000], ['r2', 4999]))), WeightsDoNotSum],
    ['weights summing to 10001', () => splitCall(inv(split(['r1', 5001], ['r2', 5000]))), WeightsDoNotSum],
    ['a revision named twice', () => splitCall(inv(split(['r1', 5000], ['r1', 5000]))), DuplicateSplitEntry],
    ['an entry for a revision not held', () => splitCall(inv(split(['r1', 5000], ['r3', 5000]))), RevisionNotFound],
    ['an invalid entry name', () => splitCall(inv(split(['R1', 10_000]))), InvalidRevisionName],
    ['a negative weight', () => splitCall(inv(split(['r1', -1], ['r2', 10_001]))), InvalidTargetInput],
    ['an unknown revision', () => revisionCall(inv(), 'r3'), RevisionNotFound],
    ['a name too long', () => revisionCall(inv(), 'r'.repeat(21)), InvalidRevisionName],
    ['a name with a dot', () => revisionCall(inv(), 'r.1'), InvalidRevisionName],
    ['no deployment id', () => revisionCall({ revisions: [] }, 'r1'), InvalidTargetInput],
    ['draining a revision with weight', () => retireCall(inv(split(['r1', 1], ['r2', 9999])), 'r1'), RevisionCarriesTraffic],
  ])('refuses %s', (_name, call, expected) => {
    expect(call).toThrow(expected);
  });

  it('says the sum, and passes a valid split through unchanged', () => {
    expect(() => splitCall(inv(split(['r1', 6000], ['r2', 3000])))).toThrow('sums to 9000 bps; it must sum to exactly 10000 bps');
    expect(splitCall(inv(split(['r2', 0], ['r1', 10_000]))).split).toEqual(split(['r2', 0], ['r1', 10_000]));
    expect(retireCall(inv(split(['r2', 0], ['r1', 10_000])), 'r2').revision.name).toBe('r2');
  });
});

describe('split arithmetic', () => {
  it.each([
    [[9000, 1000], [9, 1]],
    [[10_000], [1]],
    [[2500, 0, 7500], [1, 0, 3]],
    [[3333, 6667], [3333, 6667]],
    [[5000, 2500, 2500], [2, 1, 1]],
  ])('route weights of %j are %j', (bps, weights) => {
    expect(routeWeights(bps.map((weightBps, i) => ({ revision: `r${i}`, weightBps })))).toEqual(weights);
  });

  it.each([
    [[9000, 1000], 3, [3, 1]],
    [[5000, 5000], 3, [2, 1]],
    [[7000, 3000], 2, [1, 1]],
    [[10_000, 0], 2, [2, 0]],
    [[9900, 100], 10, [10, 1]],
    [[3400, 3300, 3300], 10, [4, 3, 3]],
    [[5000, 5000], 0, [0, 0]],
  ])('replicas for %j of %i are %j', (bps, total, counts) => {
    expect(replicaCounts(bps.map((weightBps, i) => ({ revision: `r${i}`, weightBps })), total)).toEqual(counts);
  });

  it('apportions by largest remainder, earlier entries winning ties', () => {
    expect(apportion([1, 1, 1], 10_000)).toEqual([3334, 3333, 3333]);
    expect(apportion([0, 0], 5)).toEqual([0, 0]);
  });

  it('reads weights back to basis points: exactly for weights keelson wrote, rounded otherwise', () => {
    const entries = [
      { revision: 'a', weightBps: 2500 },
      { revision: 'b', weightBps: 0 },
      { revision: 'c', weightBps: 7500 },
    ];
    const weights = routeWeights(entries);
    expect(splitFromAmounts(entries.map((e, i) => ({ revision: e.revision, amount: weights[i] ?? 0 })))).toEqual(entries);
    expect(splitFromAmounts([{ revision: 'a', amount: 1 }, { revision: 'b', amount: 2 }])).toEqual([
      { revision: 'a', weightBps: 3333 },
      { revision: 'b', weightBps: 6667 },
    ]);
    expect(splitFromAmounts([{ revision: 'a', amount: 0 }])).toBeNull();
  });
});

describe('the plan', () => {
  it.each([
    ['not an object', 'web', /plan\./],
    ['no Service', { namespace: 'shop', objects: [deployment('web', 'w'), deployment('api', 'a')] }, /exactly one apps\/v1 Deployment \(it holds 2\)/],
    ['no Service at all', { namespace: 'shop', objects: [deployment('web', 'w'), route] }, /exactly one v1 Service/],
    ['another kind', plan([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }]), /not v1 ConfigMap/],
    ['another namespace', { namespace: 'shop', objects: [deployment('web', 'w', { namespace: 'other' }), service('web')] }, /names namespace other, the plan shop/],
    ['a name too long for the revision', { namespace: 'shop', objects: [deployment('w'.repeat(61), 'w'), service('web')] }, /is no DNS label/],
    ['a bad namespace', { namespace: 'Shop', objects: [deployment('web', 'w'), service('web')] }, /plan\.namespace: must be a DNS label/],
  ])('refuses %s', (_name, input, message) => {
    expect(() => parsePlan('r1', input)).toThrow(InvalidPlan);
    expect(() => parsePlan('r1', input)).toThrow(message);
  });

  it("derives the revision's workload, its Service, the recorded split and the route", () => {
    const parsed = parsePlan('r2', plan());
    const workload = renderWorkload(parsed, 'r2', 0);
    expect(workload.metadata).toMatchObject({ name: 'web-r2', namespace: 'shop', labels: { app: 'web', [REVISION_LABEL]: 'r2' } });
    expect(workload.spec).toMatchObject({
      replicas: 0,
      selector: { matchLabels: { app: 'web', [REVISION_LABEL]: 'r2' } },
      template: { metadata: { labels: { app: 'web', [REVISION_LABEL]: 'r2' } } },
    });
    // The plan itself is untouched (it is the caller's).
    expect((parsed.workload.metadata.name)).toBe('web');
    expect(renderRevisionService(parsed, 'r2')).toMatchObject({ metadata: { name: 'web-r2' }, spec: { selector: { app: 'web', [REVISION_LABEL]: 'r2' } } });
    const shared = renderSharedService(parsed, split(['r1', 10_000]));
    expect(shared.spec).toEqual(service('web').spec);
    expect(JSON.parse(shared.metadata.annotations?.[SPLIT_ANNOTATION] ?? '')).toEqual(split(['r1', 10_000]));
    expect(renderRoute(parsed, [{ service: 'web-r1', port: 80, weight: 9 }, { service: 'web-r2', port: 80, weight: 1 }]).spec).toEqual({
      parentRefs: [{ name: 'public' }],
      hostnames: ['web.example'],
      rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'web-r1', port: 80, weight: 9 }, { name: 'web-r2', port: 80, weight: 1 }] }],
    });
  });
});

describe('observation', () => {
  const labelled = (object: KubeObject, revision?: string): KubeObject => ({
    ...object,
    metadata: { ...object.metadata, namespace: 'shop', labels: { ...object.metadata.labels, ...(revision ? { [REVISION_LABEL]: revision } : {}) } },
  });
  const parsed = parsePlan('r1', plan());
  const ready = (revision: string, replicas: number): KubeObject => {
    const w = labelled(renderWorkload(parsed, revision, replicas), revision);
    return { ...w, metadata: { ...w.metadata, generation: 1 }, status: {
        observedGeneration: 1,
        replicas,
        readyReplicas: replicas,
        updatedReplicas: replicas,
        availableReplicas: replicas,
        conditions: [
          { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
          { type: 'Available', status: 'True' },
        ],
      },
    };
  };

  it('reads the split in force from the HTTPRoute (exactly) and the record from the Service', () => {
    const recorded = split(['r1', 9000], ['r2', 1000]);
    const objects = [
      ready('r1', 3),
      ready('r2', 3),
      labelled(renderRevisionService(parsed, 'r1'), 'r1'),
      labelled(renderRevisionService(parsed, 'r2'), 'r2'),
      labelled(renderSharedService(parsed, recorded)),
      labelled(renderRoute(parsed, [{ service: 'web-r1', port: 80, weight: 9 }, { service: 'web-r2', port: 80, weight: 1 }])),
    ];
    expect(observation('d1', objects)).toEqual({
      deploymentId: 'd1',
      revisions: [
        { revision: 'r1', replicas: 3, readyReplicas: 3, status: 'ready' },
        { revision: 'r2', replicas: 3, readyReplicas: 3, status: 'ready' },
      ],
      recordedSplit: recorded,
      enforcedSplit: { mode: 'httproute', entries: recorded.entries },
    });
  });

  it('falls back to the replica ratio without a route, and shows nothing routed when nothing runs', () => {
    expect(observation('d1', [ready('r1', 1), ready('r2', 3)]).enforcedSplit).toEqual({
      mode: 'replicas',
      entries: [
        { revision: 'r1', weightBps: 2500 },
        { revision: 'r2', weightBps: 7500 },
      ],
    });
    expect(observation('d1', [ready('r1', 0)])).toMatchObject({ recordedSplit: null, enforcedSplit: null, revisions: [{ revision: 'r1', status: 'ready' }] });
  });

  it('ignores an unreadable record', () => {
    const service = labelled(renderSharedService(parsed, split(['r1', 10_000])));
    service.metadata.annotations = { [SPLIT_ANNOTATION]: '{not json' };
    expect(observation('d1', [service]).recordedSplit).toBeNull();
  });
});

describe('servingObjects (what a drift check compares for a revision with all traffic)', () => {
  it('is what a 100 % split leaves: the workload at full size, its Service, the recorded split, the route to it alone', () => {
    const parsed = parsePlan('r2', plan());
    const objects = servingObjects(parsed, 'r2', 'd1', true);
    expect(objects.map((o) => `${o.kind} ${o.metadata.name}`)).toEqual(['Deployment web-r2', 'Service web-r2', 'Service web', 'HTTPRoute web']);
    // exactly the objects stage, warm and a 100 % split apply, so a target that is in sync is no drift
    expect(objects[0]).toEqual(renderWorkload(parsed, 'r2', 3));
    expect(objects[1]).toEqual(renderRevisionService(parsed, 'r2'));
    expect(objects[2]).toEqual(renderSharedService(parsed, split(['r2', 10_000])));
    expect(objects[3]).toEqual(renderRoute(parsed, [{ service: 'web-r2', port: 80, weight: routeWeights([{ revision: 'r2', weightBps: 10_000 }])[0] ?? 0 }]));
    expect(replicaCounts([{ revision: 'r2', weightBps: 10_000 }], 3)).toEqual([3]);
    // no Gateway API served, or no route in the plan: no route to compare
    expect(servingObjects(parsed, 'r2', 'd1', false).map((o) => o.kind)).toEqual(['Deployment', 'Service', 'Service']);
    expect(servingObjects(parsePlan('r2', plan([])), 'r2', 'd1', true).map((o) => o.kind)).toEqual(['Deployment', 'Service', 'Service']);
  });
});
