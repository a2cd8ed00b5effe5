// apply against the simulator: change sets, ownership, adoption, the fence, 429 back-off, client
// identity. Each test uses a namespace of its own.
import { describe, expect, it } from 'vitest';
import { TerminalError } from '../../src/errors.ts';
import { sleepUntil } from '../helpers.ts';
import {
  CLIENT_ID,
  configMap,
  createOutside,
  deployment,
  direct,
  labelOf,
  pathOf,
  read,
  service,
  since,
  uniqueNamespace,
  useHarness,
  writes,
} from './harness.ts';

describe('apply', () => {
  const h = useHarness({ sim: { podStartupDelayMs: 200 } });

  it('creates the namespace and the objects in dependency order, labelled, with their pod templates labelled', async () => {
    const ns = uniqueNamespace('apply');
    const result = await h.client.apply([deployment('web', 'shop:1'), service('web'), configMap('settings')], { namespace: ns, deploymentId: 'd1', signal: h.signal });

    expect(result.inventory.map((r) => `${r.kind}/${r.namespace}/${r.name}`)).toEqual([`ConfigMap/${ns}/settings`, `Service/${ns}/web`, `Deployment/${ns}/web`]);
    expect(result.changes.map((c) => c.action)).toEqual(['created', 'created', 'created']);
    const namespace = await read(h, 'v1', 'Namespace', ns);
    expect(namespace?.metadata.labels['app.kubernetes.io/managed-by']).toBe('keelson');
    expect(labelOf(namespace)).toBeUndefined();
    const deploy = await read(h, 'apps/v1', 'Deployment', 'web', ns);
    expect(deploy?.metadata.labels).toEqual({ app: 'web', 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': 'd1' });
    // Pods and ReplicaSets inherit these, which is how the shared cache finds them.
    expect(deploy?.spec.template.metadata.labels).toEqual({ app: 'web', 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': 'd1' });
    expect(deploy?.spec.selector).toEqual({ matchLabels: { app: 'web' } });
    const managers = (deploy?.metadata.managedFields as { manager: string; operation: string }[]).map((m) => `${m.manager}:${m.operation}`);
    expect(managers).toContain('keelson:Apply');
    const cm = await read(h, 'v1', 'ConfigMap', 'settings', ns);
    const svc = await read(h, 'v1', 'Service', 'web', ns);
    // One resourceVersion counter for the whole store: creation order is visible in it.
    expect(Number(cm?.metadata.resourceVersion)).toBeLessThan(Number(svc?.metadata.resourceVersion));
    expect(Number(svc?.metadata.resourceVersion)).toBeLessThan(Number(deploy?.metadata.resourceVersion));
  });

  it('reports unchanged objects and sends no write when nothing changed', async () => {
    const ns = uniqueNamespace('idem');
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, type: 'Opaque', stringData: { password: 'hunter2' } };
    const objects = [deployment('web', 'shop:1'), configMap('settings'), secret];
    await h.client.apply(objects, { namespace: ns, deploymentId: 'd2', signal: h.signal });
    const before = await read(h, 'apps/v1', 'Deployment', 'web', ns);
    const from = h.proxy.requests.length;
    const result = await h.client.apply(objects, { namespace: ns, deploymentId: 'd2', signal: h.signal });
    expect(result.changes.map((c) => `${c.ref.kind} ${c.action}`)).toEqual(['ConfigMap unchanged', 'Secret unchanged', 'Deployment unchanged']);
    expect(writes(since(h, from))).toEqual([]);
    const after = await read(h, 'apps/v1', 'Deployment', 'web', ns);
    expect(after?.metadata.generation).toBe(before?.metadata.generation);
  });

  it('reports what changed as configured, with the field paths, and applies only that', async () => {
    const ns = uniqueNamespace('conf');
    await h.client.apply([deployment('web', 'shop:1'), service('web')], { namespace: ns, deploymentId: 'd3', signal: h.signal });
    const from = h.proxy.requests.length;
    const result = await h.client.apply([deployment('web', 'shop:2'), service('web')], { namespace: ns, deploymentId: 'd3', signal: h.signal });
    expect(result.changes).toEqual([
      { ref: { apiVersion: 'v1', kind: 'Service', name: 'web', namespace: ns }, action: 'unchanged', paths: [] },
      { ref: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns }, action: 'configured', paths: ['.spec.template.spec.containers[name="web"].image'] },
    ]);
    expect(writes(since(h, from)).map((r) => r.path)).toEqual([pathOf('apps/v1', 'Deployment', 'web', ns)]);
    expect((await read(h, 'apps/v1', 'Deployment', 'web', ns))?.spec.template.spec.containers[0].image).toBe('shop:2');
  });

  it('puts objects that name their namespace there, creating that namespace too', async () => {
    const ns = uniqueNamespace('main');
    const other = uniqueNamespace('other');
    const result = await h.client.apply([configMap('here'), configMap('there', { namespace: other })], { namespace: ns, deploymentId: 'd4', signal: h.signal });
    expect(result.inventory.map((r) => r.namespace)).toEqual([ns, other]);
    expect((await read(h, 'v1', 'Namespace', other))?.metadata.labels['app.kubernetes.io/managed-by']).toBe('keelson');
    expect(await read(h, 'v1', 'ConfigMap', 'there', other)).toBeDefined();
  });

  describe('ownership', () => {
    it("refuses an object of another deployment, naming it, and applies nothing", async () => {
      const ns = uniqueNamespace('own');
      await h.client.apply([configMap('shared')], { namespace: ns, deploymentId: 'other', signal: h.signal });
      const before = await read(h, 'v1', 'ConfigMap', 'shared', ns);
      const from = h.proxy.requests.length;
      const error = await h.client
        .apply([configMap('new-one'), configMap('shared', { data: { key: 'mine' } })], { namespace: ns, deploymentId: 'mine', signal: h.signal })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TerminalError);
      expect((error as TerminalError).code).toBe('owned_by_other');
      expect((error as Error).message).toContain(`ConfigMap ${ns}/shared belongs to keelson deployment other`);
      expect(writes(since(h, from))).toEqual([]);
      expect(await read(h, 'v1', 'ConfigMap', 'new-one', ns)).toBeUndefined();
      expect((await read(h, 'v1', 'ConfigMap', 'shared', ns))?.metadata.resourceVersion).toBe(before?.metadata.resourceVersion);
    });

    it('refuses an object keelson did not create, naming its field managers', async () => {
      const ns = uniqueNamespace('foreign');
      await createOutside(h, { ...service('web'), metadata: { name: 'web', namespace: ns } }, 'helm');
      const before = await read(h, 'v1', 'Service', 'web', ns);
      const error = await h.client.apply([deployment('web', 'shop:1'), service('web')], { namespace: ns, deploymentId: 'd5', signal: h.signal }).catch((e: unknown) => e);
      expect((error as TerminalError).code).toBe('owned_by_other');
      expect((error as Error).message).toContain(`Service ${ns}/web belongs to field manager helm`);
      expect(await read(h, 'apps/v1', 'Deployment', 'web', ns)).toBeUndefined();
      expect((await read(h, 'v1', 'Service', 'web', ns))?.metadata.resourceVersion).toBe(before?.metadata.resourceVersion);
    });

    it('adopts an object whose manifest asks for it when the caller allows it', async () => {
      const ns = uniqueNamespace('adopt');
      await createOutside(h, configMap('legacy', { namespace: ns }), 'kubectl-create');
      const wanted = configMap('legacy', { data: { key: 'keelson' }, annotations: { 'keelson.dev/adopt': 'true' } });

      const refused = await h.client.apply([wanted], { namespace: ns, deploymentId: 'd6', signal: h.signal }).catch((e: unknown) => e);
      expect((refused as TerminalError).code).toBe('owned_by_other');

      const result = await h.client.apply([wanted], { namespace: ns, deploymentId: 'd6', signal: h.signal, allowAdopt: true });
      expect(result.changes[0]).toMatchObject({ action: 'configured', adoptedFrom: 'field manager kubectl-create' });
      const cm = await read(h, 'v1', 'ConfigMap', 'legacy', ns);
      expect(labelOf(cm)).toBe('d6');
      expect(cm?.data).toEqual({ key: 'keelson' });
    });

    it('applies into a namespace that exists but is not keelson\'s (the namespace itself is not applied over)', async () => {
      const ns = uniqueNamespace('theirs');
      await direct(h, 'POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } });
      const result = await h.client.apply([configMap('c')], { namespace: ns, deploymentId: 'd7', signal: h.signal });
      expect(result.changes.map((c) => c.action)).toEqual(['created']);
      expect((await read(h, 'v1', 'Namespace', ns))?.metadata.labels).toEqual({ 'kubernetes.io/metadata.name': ns });
    });
  });

  it('refuses a kind the cluster does not serve before writing anything', async () => {
    const ns = uniqueNamespace('unserved');
    const from = h.proxy.requests.length;
    const widget = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } };
    const error = await h.client.apply([configMap('c'), widget], { namespace: ns, deploymentId: 'd8', signal: h.signal }).catch((e: unknown) => e);
    expect((error as TerminalError).code).toBe('kube_rejected');
    expect((error as Error).message).toContain('does not serve Widget in example.com/v1');
    expect(writes(since(h, from))).toEqual([]);
  });

  it('sends X-Keelson-Client on every request, watches included', async () => {
    await h.client.apply([configMap('who')], { namespace: uniqueNamespace('who'), deploymentId: 'd9', signal: h.signal });
    // Only keelson's client goes through the proxy: every request it sent carries the header…
    const requests = h.proxy.requests;
    expect(requests.some((r) => r.verb === 'watch')).toBe(true);
    expect(requests.filter((r) => r.headers['x-keelson-client'] !== CLIENT_ID)).toEqual([]);
    // …and the simulator's request log attributes them, watches and writes alike.
    expect(h.sim.requests.count({ client: CLIENT_ID, verb: 'watch' })).toBeGreaterThan(0);
    expect(h.sim.requests.records({ client: CLIENT_ID, verb: 'patch', resource: 'configmaps', name: 'who' })).toHaveLength(1);
  });

  it('waits as a 429 asks (Retry-After) and sends the write again', async () => {
    const ns = uniqueNamespace('throttle');
    h.proxy.inject({
      match: (r) => r.verb === 'patch' && r.path.endsWith('/configmaps/slow') && r.query.get('dryRun') === null,
      status: 429,
      headers: { 'Retry-After': '1' },
      body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'TooManyRequests', message: 'too many requests', code: 429 },
    });
    const from = h.proxy.requests.length;
    const result = await h.client.apply([configMap('slow')], { namespace: ns, deploymentId: 'd10', signal: h.signal });
    expect(result.changes[0]?.action).toBe('created');
    const patches = since(h, from).filter((r) => r.verb === 'patch' && r.path.endsWith('/configmaps/slow'));
    expect(patches).toHaveLength(2);
    const throttled = (await h.metrics.kubeRequests.get()).values.find((v) => v.labels.outcome === 'throttled' && v.labels.kind === 'ConfigMap');
    expect(throttled?.value).toBe(1);
  });
});

describe('the fence', () => {
  // One request per 400 ms after a burst of one: each write waits in the limiter.
  const h = useHarness({ client: { rateLimit: { qps: 2.5, burst: 1 } } });

  it('sends no write once the signal has aborted, even one already queued behind the rate limiter', async () => {
    const ns = uniqueNamespace('fence');
    await direct(h, 'POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } });
    const controller = new AbortController();
    const from = h.proxy.requests.length;
    const applying = h.client
      .apply([configMap('a'), configMap('b'), configMap('c')], { namespace: ns, deploymentId: 'f1', signal: controller.signal })
      .catch((e: unknown) => e);
    await sleepUntil(() => writes(since(h, from)).length === 1, { message: 'the first write went out' });
    controller.abort();
    const abortedAt = h.proxy.requests.length;
    const error = await applying;
    expect((error as Error).name).toBe('AbortError');
    // apply sends one request at a time: once it has settled, nothing of it can still be sent.
    expect(writes(since(h, abortedAt))).toEqual([]);
    expect(await read(h, 'v1', 'ConfigMap', 'b', ns)).toBeUndefined();
  });

  it('refuses at once, sending nothing, when the signal is already aborted', async () => {
    const from = h.proxy.requests.length;
    const error = await h.client
      .apply([configMap('x')], { namespace: uniqueNamespace('gone'), deploymentId: 'f2', signal: AbortSignal.abort() })
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe('AbortError');
    expect(since(h, from)).toEqual([]);
  });
});
