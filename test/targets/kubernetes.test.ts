// The Kubernetes deploy target against the simulator: the conformance suite twice — splits by
// replica ratio (no Gateway API) and by HTTPRoute weights (Gateway API's CRDs installed) — then
// what is particular to Kubernetes: the workloads and Services a revision becomes, the split's
// route weights or replica counts and its record on the Service, an unhealthy revision.
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KubeClient } from '../../src/kube/kubeClient.ts';
import { DEPLOYMENT_LABEL, type KubeObject } from '../../src/kube/types.ts';
import type { Inventory } from '../../src/targets/contract.ts';
import { RevisionUnhealthy, TerminalProviderError } from '../../src/targets/errors.ts';
import { REVISION_LABEL, SPLIT_ANNOTATION } from '../../src/targets/kubernetes/plan.ts';
import { createKubernetesTarget, type KubernetesTargetClient } from '../../src/targets/kubernetes/target.ts';
import { sleepUntil } from '../helpers.ts';
import { deployment, direct, log, read, service, uniqueNamespace, useHarness, type Harness } from '../kube/harness.ts';
import { httpRouteBackends, installGatewayApi } from '../sim/gatewayApi.ts';
import { conformanceTests, runConformance, type ConformanceSubject, type CountedTarget } from './conformance.ts';

/** The kube client with every verb call counted: the provider calls of the target. */
function counted(client: KubeClient): { kube: KubernetesTargetClient; calls: () => number } {
  let calls = 0;
  const kube = new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { kube, calls: () => calls };
}

const ROUTE: KubeObject = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'web' },
  spec: { parentRefs: [{ name: 'public', namespace: 'gateways' }], hostnames: ['web.example'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }] }] },
};

function planFor(namespace: string, revision: string, image = `registry.example/web:${revision}`, replicas = 2, routed = false): unknown {
  return { namespace, objects: [deployment('web', image, { replicas }), service('web'), ...(routed ? [ROUTE] : [])] };
}

/** Top-level objects labelled for a deployment, without what the server and controllers write. */
async function stateOf(h: Harness, deploymentId: string): Promise<unknown> {
  const out: unknown[] = [];
  for (const path of ['/apis/apps/v1/deployments', '/api/v1/services', '/apis/gateway.networking.k8s.io/v1/httproutes']) {
    const list = await direct(h, 'GET', path, { query: { labelSelector: `${DEPLOYMENT_LABEL}=${deploymentId}` } });
    if (list.status === 404) continue; // no Gateway API in this simulator
    for (const item of (list.body.items ?? []) as KubeObject[]) {
      const spec = item.spec as Record<string, unknown>;
      const annotations = Object.fromEntries(Object.entries(item.metadata.annotations ?? {}).filter(([key]) => key.startsWith('keelson.dev/')));
      out.push({
        object: `${path.split('/').pop()} ${item.metadata.namespace}/${item.metadata.name}`,
        labels: item.metadata.labels,
        annotations,
        deleting: item.metadata.deletionTimestamp !== undefined,
        spec: path.endsWith('deployments')
          ? { replicas: spec.replicas, selector: spec.selector, template: spec.template }
          : path.endsWith('services')
            ? { selector: spec.selector, ports: spec.ports }
            : spec,
      });
    }
  }
  return out.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

function targetFixture(h: Harness) {
  const namespaces = new Map<string, string>();
  const namespaceOf = (id: string) => namespaces.get(id) ?? 'default';

  function newDeployment(label: string): string {
    const id = `${label}-${randomBytes(3).toString('hex')}`;
    namespaces.set(id, uniqueNamespace('target'));
    return id;
  }

  function makeTarget(): CountedTarget {
    const { kube, calls } = counted(h.client);
    return { target: createKubernetesTarget({ kube, log, failFastGraceMs: 300 }), calls };
  }

  function subject(routed: boolean): ConformanceSubject {
    return {
      makeTarget,
      newDeployment,
      plan: (id, revision) => planFor(namespaceOf(id), revision, undefined, 2, routed),
      // The API server refuses a container without an image (422), past every pure check.
      rejectedPlan: (id, revision) => planFor(namespaceOf(id), revision, '', 2, routed),
      state: (id) => stateOf(h, id),
      failProvider: () => {
        h.sim.faults.setErrorRate(1, [500]);
        return async () => h.sim.faults.reset();
      },
    };
  }

  return { namespaceOf, newDeployment, makeTarget, subject };
}

describe('Kubernetes target, splitting by replica ratio', () => {
  const h = useHarness({ sim: { podStartupDelayMs: 100 } });
  const { namespaceOf, newDeployment, makeTarget, subject } = targetFixture(h);

  describe('conformance', () => {
    conformanceTests(() => subject(false));
  });

  describe('revisions and splits', () => {
    it('makes a revision its own workload and Service, and splits by replica ratio recorded on the Service', async () => {
      const { target } = makeTarget();
      const id = newDeployment('ratio');
      const ns = namespaceOf(id);
      const signal = h.signal;
      const inv: Inventory = {
        deploymentId: id,
        revisions: [
          { name: 'stable', plan: planFor(ns, 'stable', 'registry.example/web:1', 3) },
          { name: 'canary', plan: planFor(ns, 'canary', 'registry.example/web:2', 3) },
        ],
      };
      expect(await target.stage(inv, 'stable', { signal })).toEqual({ deploymentId: id, revision: 'stable', resources: [`Deployment ${ns}/web-stable`, `Service ${ns}/web-stable`] });
      const staged = await read(h, 'apps/v1', 'Deployment', 'web-stable', ns);
      expect(staged?.spec.replicas).toBe(0);
      expect(staged?.metadata.labels).toMatchObject({ [REVISION_LABEL]: 'stable', [DEPLOYMENT_LABEL]: id, app: 'web' });
      expect(staged?.spec.selector.matchLabels).toEqual({ app: 'web', [REVISION_LABEL]: 'stable' });
      expect((await read(h, 'v1', 'Service', 'web-stable', ns))?.spec.selector).toEqual({ app: 'web', [REVISION_LABEL]: 'stable' });

      expect(await target.warm(inv, 'stable', { signal })).toEqual({ deploymentId: id, revision: 'stable', replicas: 3 });
      expect((await read(h, 'apps/v1', 'Deployment', 'web-stable', ns))?.status.readyReplicas).toBe(3);
      await target.stage(inv, 'canary', { signal });

      const entries = [
        { revision: 'stable', weightBps: 9000 },
        { revision: 'canary', weightBps: 1000 },
      ];
      expect(await target.applySplit({ ...inv, split: { deploymentId: id, entries } }, { signal })).toEqual({ deploymentId: id, entries });
      // 3 replicas by 90/10: 2.7 and 0.3 → 3 and 0, and the canary gets its one pod on top.
      expect((await read(h, 'apps/v1', 'Deployment', 'web-stable', ns))?.spec.replicas).toBe(3);
      expect((await read(h, 'apps/v1', 'Deployment', 'web-canary', ns))?.spec.replicas).toBe(1);
      const shared = await read(h, 'v1', 'Service', 'web', ns);
      expect(shared?.spec.selector).toEqual({ app: 'web' });
      expect(JSON.parse(shared?.metadata.annotations[SPLIT_ANNOTATION])).toEqual({ deploymentId: id, entries });

      const observed = await sleepUntil(
        async () => {
          const o = await target.observe(id, { signal });
          return o.recordedSplit && o.revisions.every((r) => r.status === 'ready') ? o : undefined;
        },
        { message: 'observe shows the split and both revisions ready' },
      );
      expect(observed).toEqual({
        deploymentId: id,
        revisions: [
          { revision: 'canary', replicas: 1, readyReplicas: 1, status: 'ready' },
          { revision: 'stable', replicas: 3, readyReplicas: 3, status: 'ready' },
        ],
        recordedSplit: { deploymentId: id, entries },
        // What the replicas enforce: a quarter, not a tenth.
        enforcedSplit: {
          mode: 'replicas',
          entries: [
            { revision: 'canary', weightBps: 2500 },
            { revision: 'stable', weightBps: 7500 },
          ],
        },
      });

      // Abort the canary: traffic back to stable, then drain and archive it.
      const back = { ...inv, split: { deploymentId: id, entries: [{ revision: 'stable', weightBps: 10_000 }] } };
      await target.applySplit(back, { signal });
      await target.drain(back, 'canary', { signal });
      expect((await read(h, 'apps/v1', 'Deployment', 'web-canary', ns))?.status.readyReplicas ?? 0).toBe(0);
      await target.archive(back, 'canary', { signal });
      await sleepUntil(async () => (await read(h, 'apps/v1', 'Deployment', 'web-canary', ns)) === undefined, { message: 'canary workload deleted' });
      expect(await read(h, 'v1', 'Service', 'web-canary', ns)).toBeUndefined();
      expect(await target.verify(back, 'canary', { signal })).toMatchObject({ status: 'missing' });
      expect(await target.verify(back, 'stable', { signal })).toMatchObject({ status: 'ready' });
      // The conformance suite's view of the provider: what is left, with the recorded split.
      expect(await stateOf(h, id)).toEqual([
        expect.objectContaining({ object: `deployments ${ns}/web-stable`, spec: expect.objectContaining({ replicas: 3 }) }),
        expect.objectContaining({ object: `services ${ns}/web-stable`, annotations: {} }),
        expect.objectContaining({ object: `services ${ns}/web`, annotations: { [SPLIT_ANNOTATION]: JSON.stringify(back.split) } }),
      ]);
    });

    it('reports a revision that crash-loops while warming as unhealthy, not as a provider error', async () => {
      const { target } = makeTarget();
      const id = newDeployment('crash');
      const inv: Inventory = { deploymentId: id, revisions: [{ name: 'bad', plan: planFor(namespaceOf(id), 'bad', 'registry.example/web:crashloop', 1) }] };
      await target.stage(inv, 'bad', { signal: h.signal });
      const error = await target.warm(inv, 'bad', { signal: h.signal }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RevisionUnhealthy);
      expect((error as Error).message).toMatch(/Revision bad is unhealthy: Deployment .*\/web-bad failed: .*CrashLoopBackOff/);
      expect(await target.verify(inv, 'bad', { signal: h.signal })).toMatchObject({ status: expect.stringMatching(/progressing|failed/) });
    });

    it('refuses to split onto a revision that was never staged, naming the request and the 404', async () => {
      const { target } = makeTarget();
      const id = newDeployment('unstaged');
      const inv: Inventory = {
        deploymentId: id,
        revisions: [{ name: 'r1', plan: planFor(namespaceOf(id), 'r1') }],
        split: { deploymentId: id, entries: [{ revision: 'r1', weightBps: 10_000 }] },
      };
      const error = await target.applySplit(inv, { signal: h.signal }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TerminalProviderError);
      expect(error).toMatchObject({ request: { verb: 'scale', object: `Deployment ${namespaceOf(id)}/web-r1` }, response: { status: 404 } });
    });

    it("never scales a workload labelled for another deployment", async () => {
      const { target } = makeTarget();
      const id = newDeployment('owner');
      const ns = namespaceOf(id);
      const mine: Inventory = { deploymentId: id, revisions: [{ name: 'r1', plan: planFor(ns, 'r1') }] };
      await target.stage(mine, 'r1', { signal: h.signal });
      const intruder: Inventory = { ...mine, deploymentId: 'intruder', split: { deploymentId: 'intruder', entries: [{ revision: 'r1', weightBps: 10_000 }] } };
      const error = await target.applySplit(intruder, { signal: h.signal }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TerminalProviderError);
      expect((error as Error).message).toMatch(new RegExp(`belongs to keelson deployment ${id}|owned|${id}`));
      expect((await read(h, 'apps/v1', 'Deployment', 'web-r1', ns))?.spec.replicas).toBe(0);
    });
  });
});

describe('Kubernetes target, splitting by HTTPRoute weights', () => {
  const h = useHarness({ sim: { podStartupDelayMs: 100 } });
  beforeAll(async () => {
    await installGatewayApi(h.sim);
  });
  const { namespaceOf, newDeployment, makeTarget, subject } = targetFixture(h);

  describe('conformance', () => {
    conformanceTests(() => subject(true));

    it("catches the Kubernetes target wrapped to perturb a sibling's route", async () => {
      const seen = new Map<string, Inventory>();
      const broken = subject(true);
      const results = await runConformance(
        {
          ...broken,
          makeTarget: () => {
            const good = makeTarget();
            return {
              ...good,
              target: {
                ...good.target,
                async applySplit(inventory, options) {
                  const outcome = await good.target.applySplit(inventory, options);
                  seen.set(inventory.deploymentId, inventory);
                  for (const [other, recorded] of seen) {
                    if (other === inventory.deploymentId || !recorded.split) continue;
                    const weights = recorded.split.entries.map((e) => e.weightBps).reverse();
                    await good.target.applySplit({ ...recorded, split: { ...recorded.split, entries: recorded.split.entries.map((e, i) => ({ ...e, weightBps: weights[i] ?? 0 })) } }, options);
                  }
                  return outcome;
                },
              },
            };
          },
        },
        /another's recorded and enforced split/,
      );
      expect(results.map((r) => r.rule)).toEqual(['isolation:sibling-split']);
    });
  });

  it('weights the route by basis points over their gcd, reads them back exactly, and leaves replicas alone', async () => {
    const { target } = makeTarget();
    const id = newDeployment('route');
    const ns = namespaceOf(id);
    const signal = h.signal;
    const inv: Inventory = {
      deploymentId: id,
      revisions: [
        { name: 'stable', plan: planFor(ns, 'stable', 'registry.example/web:1', 2, true) },
        { name: 'canary', plan: planFor(ns, 'canary', 'registry.example/web:2', 2, true) },
      ],
    };
    for (const revision of ['stable', 'canary']) {
      await target.stage(inv, revision, { signal });
      await target.warm(inv, revision, { signal });
    }
    const steps = [
      [9000, 1000, [9, 1]],
      [5000, 5000, [1, 1]],
      [0, 10_000, [0, 1]],
    ] as const;
    for (const [stable, canary, weights] of steps) {
      const entries = [
        { revision: 'stable', weightBps: stable },
        { revision: 'canary', weightBps: canary },
      ];
      expect(await target.applySplit({ ...inv, split: { deploymentId: id, entries } }, { signal })).toEqual({ deploymentId: id, entries });
      expect(httpRouteBackends(h.sim, ns, 'web')).toEqual([
        [
          { name: 'web-stable', port: 80, weight: weights[0] },
          { name: 'web-canary', port: 80, weight: weights[1] },
        ],
      ]);
      const observed = await sleepUntil(
        async () => {
          const o = await target.observe(id, { signal });
          return JSON.stringify(o.recordedSplit?.entries) === JSON.stringify(entries) && JSON.stringify(o.enforcedSplit?.entries) === JSON.stringify(entries) ? o : undefined;
        },
        { message: `observe shows ${JSON.stringify(entries)} recorded and enforced` },
      );
      expect(observed.enforcedSplit?.mode).toBe('httproute');
      // Both revisions stay at full size: the route, not the replicas, splits.
      expect(observed.revisions.map((r) => [r.revision, r.replicas])).toEqual([
        ['canary', 2],
        ['stable', 2],
      ]);
    }
    const route = await direct(h, 'GET', `/apis/gateway.networking.k8s.io/v1/namespaces/${ns}/httproutes/web`);
    expect(route.body.spec).toMatchObject({ parentRefs: [{ name: 'public', namespace: 'gateways' }], hostnames: ['web.example'] });
    expect((route.body.metadata as KubeObject['metadata']).labels).toMatchObject({ [DEPLOYMENT_LABEL]: id });

    // Promotion: the old revision leaves the route, then drains and is archived.
    const promoted = { ...inv, split: { deploymentId: id, entries: [{ revision: 'canary', weightBps: 10_000 }] } };
    await target.applySplit(promoted, { signal });
    expect(httpRouteBackends(h.sim, ns, 'web')).toEqual([[{ name: 'web-canary', port: 80, weight: 1 }]]);
    await target.drain(promoted, 'stable', { signal });
    await target.archive(promoted, 'stable', { signal });
    await sleepUntil(async () => (await read(h, 'apps/v1', 'Deployment', 'web-stable', ns)) === undefined, { message: 'stable workload deleted' });
  });

  it('drain takes a revision out of a route that still sends it traffic before scaling it down', async () => {
    const { target } = makeTarget();
    const id = newDeployment('drainroute');
    const ns = namespaceOf(id);
    const signal = h.signal;
    const revisions = ['blue', 'green'].map((name) => ({ name, plan: planFor(ns, name, `registry.example/web:${name}`, 1, true) }));
    const even: Inventory = { deploymentId: id, revisions, split: { deploymentId: id, entries: [{ revision: 'blue', weightBps: 5000 }, { revision: 'green', weightBps: 5000 }] } };
    for (const revision of ['blue', 'green']) {
      await target.stage(even, revision, { signal });
      await target.warm(even, revision, { signal });
    }
    await target.applySplit(even, { signal });
    // A caller that recorded no split (a lost record) drains green: the route stops sending it traffic.
    await target.drain({ deploymentId: id, revisions }, 'green', { signal });
    expect(httpRouteBackends(h.sim, ns, 'web')).toEqual([
      [
        { name: 'web-blue', port: 80, weight: 1 },
        { name: 'web-green', port: 80, weight: 0 },
      ],
    ]);
    expect((await read(h, 'apps/v1', 'Deployment', 'web-green', ns))?.spec.replicas).toBe(0);
  });
});
