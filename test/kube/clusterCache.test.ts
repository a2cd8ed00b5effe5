// The shared cluster cache at fleet scale, counted by the simulator's own request log
// (`sim.requests`): requests per rollout of the built-in template, and a steady state of healthy
// deployments that costs no LIST at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trimObject } from '../../src/kube/clusterCache.ts';
import { renderBuiltin } from '../../src/render/builtinTemplate.ts';
import type { KubeObject, ObjectRef } from '../../src/kube/types.ts';
import { isWrite, type RequestRecord } from '../../src/sim/index.ts';
import { sleepUntil } from '../helpers.ts';
import { CLIENT_ID, direct, pathOf, read, startHarness, uniqueNamespace, type Harness } from './harness.ts';

const FLEET = 12;

function byVerb(requests: readonly RequestRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of requests) {
    const verb = r.dryRun ? 'patch (dry-run)' : r.verb;
    out[verb] = (out[verb] ?? 0) + 1;
  }
  return out;
}

describe('the shared cluster cache', () => {
  let h: Harness;
  const fleet: Array<{ id: string; namespace: string; inventory: ObjectRef[] }> = [];

  function render(namespace: string, imageRef: string): KubeObject[] {
    return renderBuiltin({ project: 'web', namespace, imageRef, valuesOverride: {} }).objects as KubeObject[];
  }

  async function rollout(member: (typeof fleet)[number], image: string): Promise<void> {
    const { inventory } = await h.client.apply(render(member.namespace, image), { namespace: member.namespace, deploymentId: member.id, signal: h.signal });
    member.inventory = inventory;
    await h.client.verify(inventory, {});
  }

  beforeAll(async () => {
    h = await startHarness({ sim: { podStartupDelayMs: 200 } });
    for (let i = 0; i < FLEET; i++) fleet.push({ id: `fleet-${i}`, namespace: uniqueNamespace(`fleet${i}`), inventory: [] });
    // Start-up: the first rollouts fill the cache (one LIST and one WATCH per kind, shared).
    await Promise.all(fleet.map((member) => rollout(member, 'shop:1')));
  });

  afterAll(async () => {
    await h?.close();
  });

  /** What the simulator served keelson since `from` (ms), watches aside. */
  function served(from: number): RequestRecord[] {
    return h.sim.requests.records({ since: from, client: CLIENT_ID }).filter((r) => r.verb !== 'watch');
  }

  it('rolls out the built-in template with at most 8 requests per rollout and no LIST', async () => {
    const from = Date.now();
    await Promise.all(fleet.map((member) => rollout(member, 'shop:2')));
    const requests = served(from);
    const verbs = byVerb(requests);
    expect(requests.filter(isWrite).map((r) => `${r.verb} ${r.resource}`)).toEqual(fleet.map(() => 'patch deployments'));
    expect(verbs.list ?? 0).toBe(0);
    expect(requests.length / FLEET).toBeLessThanOrEqual(8);
    // One apply per rollout: the Deployment whose image changed, known to change without a
    // dry-run (its rendered form differs from keelson's last apply of it). The Service is known
    // unchanged (same resourceVersion as keelson's last apply) or compared by one dry-run.
    expect(verbs.patch).toBe(FLEET);
    expect(verbs['patch (dry-run)'] ?? 0).toBeLessThanOrEqual(FLEET);
    expect(requests.filter((r) => r.dryRun && r.resource === 'deployments')).toEqual([]);
    expect(Object.keys(verbs).filter((verb) => !['patch', 'patch (dry-run)', 'get'].includes(verb))).toEqual([]);
    for (const member of fleet) {
      expect((await read(h, 'apps/v1', 'Deployment', 'web', member.namespace))?.spec.template.spec.containers[0].image).toBe('shop:2');
    }
  });

  it('costs no LIST in steady state: live health and drift checks of every deployment read the cache', async () => {
    const check = () =>
      Promise.all(
        fleet.map(async (member) => {
          const observation = await h.client.observe(member.id, member.inventory);
          const drifted = await h.client.diff(render(member.namespace, 'shop:2'), { namespace: member.namespace, deploymentId: member.id, signal: h.signal });
          return { status: observation.status, drifted: drifted.length };
        }),
      );
    // The first check after the rollouts compares once by dry-run (statuses changed since apply).
    expect(await check()).toEqual(fleet.map(() => ({ status: 'Current', drifted: 0 })));
    const from = Date.now();
    for (let round = 0; round < 3; round++) expect(await check()).toEqual(fleet.map(() => ({ status: 'Current', drifted: 0 })));
    expect(served(from)).toEqual([]);
  });

  // The drift check of a release found in sync asks inSyncSince before rendering it again.
  it('tells that a release found in sync still is, from the cache alone, until one of its objects changes', async () => {
    const member = fleet[2]!;
    const release = {};
    const objects = render(member.namespace, 'shop:2');
    const options = { namespace: member.namespace, deploymentId: member.id, signal: h.signal, release };
    expect(h.client.inSyncSince(release, member.id)).toBe(false);
    expect(await h.client.diff(objects, options)).toEqual([]);
    const from = Date.now();
    expect(h.client.inSyncSince(release, member.id)).toBe(true);
    expect(h.client.inSyncSince(release, member.id)).toBe(true);
    expect(h.client.inSyncSince({}, member.id)).toBe(false);
    expect(served(from)).toEqual([]);
    // kubectl set image: another field manager changes the Deployment
    const patched = await direct(h, 'PATCH', pathOf('apps/v1', 'Deployment', 'web', member.namespace), {
      body: { spec: { template: { spec: { containers: [{ name: 'web', image: 'shop:by-hand' }] } } } },
      contentType: 'application/strategic-merge-patch+json',
      query: { fieldManager: 'kubectl-set' },
    });
    expect(patched.status).toBe(200);
    await sleepUntil(() => !h.client.inSyncSince(release, member.id), { message: 'the cache saw the change' });
    const drifted = await h.client.diff(objects, options);
    expect(drifted.map((d) => `${d.ref.kind} ${d.reason}`)).toEqual(['Deployment changed']);
    expect(h.client.inSyncSince(release, member.id)).toBe(false);
    // repaired: found in sync again
    await rollout(member, 'shop:2');
    expect(await h.client.diff(objects, options)).toEqual([]);
    expect(h.client.inSyncSince(release, member.id)).toBe(true);
    expect(h.client.inSyncSince(release, fleet[3]!.id)).toBe(false);
  });

  it('re-establishes dropped watches from their resourceVersion, without a LIST', async () => {
    const from = h.proxy.requests.length;
    h.sim.faults.dropWatches();
    const member = fleet[0]!;
    await rollout(member, 'shop:3');
    // The proxy sees each query: the resourceVersion each watch resumes from.
    const requests = h.proxy.requests.slice(from);
    expect(requests.filter((r) => r.verb === 'list')).toEqual([]);
    const rewatched = requests.filter((r) => r.verb === 'watch');
    expect(rewatched.length).toBeGreaterThan(0);
    expect(rewatched.every((r) => Number(r.query.get('resourceVersion')) > 0)).toBe(true);
  });

  it('keeps only what decisions need, and reports its size', async () => {
    const member = fleet[1]!;
    const observed = await h.client.observe(member.id, member.inventory);
    expect(observed.objects.map((o) => o.kind).sort()).toEqual(['Deployment', 'Service']);
    const sizes = (await h.metrics.kubeCacheObjects.get()).values;
    const pods = sizes.find((v) => v.labels.kind === 'Pod')?.value ?? 0;
    const deployments = sizes.find((v) => v.labels.kind === 'Deployment')?.value ?? 0;
    expect(deployments).toBe(FLEET);
    expect(pods).toBeGreaterThanOrEqual(FLEET);
  });

  it('counts requests by verb, kind and outcome: watches when connected, absent objects as answers', async () => {
    const values = (await h.metrics.kubeRequests.get()).values;
    const count = (labels: Partial<Record<'verb' | 'kind' | 'outcome', string>>) =>
      values.filter((v) => (Object.keys(labels) as Array<keyof typeof labels>).every((k) => v.labels[k] === labels[k])).reduce((sum, v) => sum + v.value, 0);
    // Namespace, Service, Deployment, Pod and ReplicaSet watched at least once each.
    for (const kind of ['Namespace', 'Service', 'Deployment', 'Pod', 'ReplicaSet']) expect(count({ verb: 'watch', kind, outcome: 'ok' })).toBeGreaterThan(0);
    // The first rollouts looked for objects that did not exist yet: 404s, answered, not failures.
    expect(count({ verb: 'get', outcome: 'ok' })).toBeGreaterThanOrEqual(2 * FLEET);
    expect(count({ outcome: 'terminal' })).toBe(0);
    expect(count({ verb: 'apply', kind: 'Deployment', outcome: 'ok' })).toBeGreaterThanOrEqual(FLEET);
  });
});

describe('trimObject', () => {
  const managedFields = [
    { manager: 'keelson', operation: 'Apply', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:replicas': {}, 'f:template': {} } } },
    { manager: 'horizontal-pod-autoscaler', operation: 'Update', subresource: 'scale', time: 't', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:replicas': {} } } },
  ];

  it('drops managedFields but the entries written through scale (drift needs them)', () => {
    const trimmed = trimObject({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', managedFields }, spec: { replicas: 2 } });
    expect(trimmed.metadata.managedFields).toEqual([{ manager: 'horizontal-pod-autoscaler', subresource: 'scale', fieldsV1: { 'f:spec': { 'f:replicas': {} } } }]);
    expect(trimmed.spec).toEqual({ replicas: 2 });
  });

  it('keeps no spec of a Pod and no pod template of a ReplicaSet', () => {
    const pod = trimObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', managedFields }, spec: { containers: [] }, status: { phase: 'Running' } });
    expect(pod).toEqual({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', managedFields: [expect.objectContaining({ subresource: 'scale' })] }, status: { phase: 'Running' } });
    const rs = trimObject({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'r' }, spec: { replicas: 1, template: { spec: {} } } });
    expect(rs.spec).toEqual({ replicas: 1 });
    expect(rs.metadata).toEqual({ name: 'r' });
  });

  it('keeps no data of a Secret', () => {
    const secret = trimObject({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, type: 'Opaque', data: { password: 'c2VjcmV0' }, stringData: { token: 'x' } });
    expect(secret).toEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, type: 'Opaque' });
  });
});
