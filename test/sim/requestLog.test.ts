// The request log: a bounded ring, exact counters, a live subscription — and, through a running
// simulator, one record per request with the caller's identity and the answer's code.
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { isWrite, RequestLog, type RequestRecord } from '../../src/sim/requestLog.ts';
import { sleepUntil } from '../helpers.ts';

const rec = (n: number, over: Partial<RequestRecord> = {}): RequestRecord => ({
  at: n,
  user: 'u',
  verb: 'get',
  apiGroup: 'apps',
  resource: 'deployments',
  namespace: 'shop',
  name: `d${n}`,
  code: 200,
  ...over,
});

describe('RequestLog', () => {
  it('keeps the newest records in order, and counts every one of them', () => {
    const log = new RequestLog({ capacity: 3 });
    for (let i = 1; i <= 5; i++) log.record(rec(i, { verb: i % 2 ? 'get' : 'patch', client: i <= 2 ? 'a' : 'b' }));
    expect(log.records().map((r) => r.at)).toEqual([3, 4, 5]);
    expect(log.total).toBe(5);
    expect(log.evicted).toBe(2);
    expect(log.count()).toBe(5);
    expect(log.count({ verb: 'patch' })).toBe(2);
    expect(log.count({ client: 'a' })).toBe(2);
    expect(log.count({ verb: ['get', 'patch'], client: 'b' })).toBe(3);
    expect(log.records({ client: 'b', verb: 'get' }).map((r) => r.at)).toEqual([3, 5]);
    expect(log.records({ name: 'd4' }).map((r) => r.at)).toEqual([4]);
    expect(log.records({ since: 4 }).map((r) => r.at)).toEqual([4, 5]);
    expect(log.countersSnapshot()).toContainEqual({ user: 'u', client: 'a', verb: 'get', apiGroup: 'apps', resource: 'deployments', code: 200, count: 1 });
  });

  it('reset forgets records and counts', () => {
    const log = new RequestLog({ capacity: 2 });
    log.record(rec(1));
    log.record(rec(2));
    log.record(rec(3));
    log.reset();
    expect(log.records()).toEqual([]);
    expect(log.count()).toBe(0);
    expect(log.total).toBe(0);
    log.record(rec(4));
    expect(log.records().map((r) => r.at)).toEqual([4]);
  });

  it('tells subscribers of each record; a throwing one neither stops the others nor the log', () => {
    const log = new RequestLog({ capacity: 10 });
    const seen: number[] = [];
    log.on('request', () => {
      throw new Error('listener bug');
    });
    const off = log.on('request', (r) => seen.push(r.at));
    log.record(rec(1));
    off();
    log.record(rec(2));
    expect(seen).toEqual([1]);
    expect(log.total).toBe(2);
  });

  it('tells writes from reads and dry runs', () => {
    expect(isWrite(rec(1, { verb: 'patch' }))).toBe(true);
    expect(isWrite(rec(1, { verb: 'deletecollection' }))).toBe(true);
    expect(isWrite(rec(1, { verb: 'patch', dryRun: true }))).toBe(false);
    expect(isWrite(rec(1, { verb: 'watch' }))).toBe(false);
    expect(isWrite(rec(1, { verb: 'post', resource: '', path: '/x' }))).toBe(false);
  });
});

describe('the simulator’s request log', () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({ timeScale: 20 });
  });

  afterAll(async () => {
    await sim?.close();
  });

  const call = (path: string, init: RequestInit & { client?: string; token?: string } = {}) =>
    fetch(`${sim.url}${path}`, {
      ...init,
      headers: {
        ...(init.token !== '' ? { authorization: `Bearer ${init.token ?? sim.auth.adminToken}` } : {}),
        ...(init.client ? { 'x-keelson-client': init.client } : {}),
        ...(init.headers as Record<string, string> | undefined),
      },
    });

  it('records who did what, with the client header and the answer’s code', async () => {
    sim.requests.reset();
    const before = Date.now();
    await (await call('/api/v1/namespaces/default/configmaps', { method: 'POST', client: 'keelson-a', body: JSON.stringify({ metadata: { name: 'cfg' }, data: { a: '1' } }) })).text();
    await (await call('/api/v1/namespaces/default/configmaps/missing', { client: 'keelson-a' })).text();
    await (await call('/version', { token: '' })).text();
    await (await call('/api/v1/namespaces/default/configmaps/cfg', { token: 'someone-elses' })).text();
    expect(sim.requests.records()).toEqual([
      expect.objectContaining({ user: 'keelson-sim-admin', client: 'keelson-a', verb: 'create', apiGroup: '', resource: 'configmaps', namespace: 'default', code: 201 }),
      expect.objectContaining({ user: 'keelson-sim-admin', client: 'keelson-a', verb: 'get', resource: 'configmaps', name: 'missing', code: 404 }),
      expect.objectContaining({ user: 'anonymous', client: undefined, verb: 'get', resource: '', path: '/version', code: 200 }),
      expect.objectContaining({ user: 'anonymous', verb: 'get', name: 'cfg', code: 200 }),
    ]);
    const [first] = sim.requests.records();
    expect(first!.at).toBeGreaterThanOrEqual(before);
    expect(first!.groups).toEqual(['system:masters', 'system:authenticated']);
    expect(sim.requests.count({ user: 'keelson-sim-admin' })).toBe(2);
  });

  it('records client-node’s server-side apply as patch, and its dry run as one', async () => {
    sim.requests.reset();
    const kc = new KubeConfig();
    kc.loadFromString(sim.kubeconfigYaml());
    const objects = KubernetesObjectApi.makeApiClient(kc);
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied', namespace: 'default' }, data: { k: 'v' } };
    await objects.patch(cm, undefined, 'All', 'keelson', true, PatchStrategy.ServerSideApply);
    await objects.patch(cm, undefined, undefined, 'keelson', true, PatchStrategy.ServerSideApply);
    const patches = sim.requests.records({ verb: 'patch', resource: 'configmaps' });
    expect(patches.map((r) => [r.name, r.dryRun, r.code])).toEqual([
      ['applied', true, 201],
      ['applied', undefined, 201],
    ]);
    expect(patches.filter(isWrite)).toHaveLength(1);
  });

  it('records a watch as soon as it starts, and injected faults with their code', async () => {
    sim.requests.reset();
    const seen: RequestRecord[] = [];
    const off = sim.requests.on('request', (r) => seen.push(r));
    const controller = new AbortController();
    const watch = await call('/apis/apps/v1/namespaces/default/deployments?watch=true', { client: 'watcher', signal: controller.signal });
    expect(watch.status).toBe(200);
    await sleepUntil(() => seen.some((r) => r.verb === 'watch'), { message: 'the watch to be recorded while its stream is open' });
    controller.abort();
    sim.faults.setErrorRate(1, [503]);
    try {
      expect((await call('/api/v1/namespaces/default/pods', { client: 'unlucky' })).status).toBe(503);
    } finally {
      sim.faults.reset();
    }
    off();
    expect(seen).toEqual([
      expect.objectContaining({ client: 'watcher', verb: 'watch', apiGroup: 'apps', resource: 'deployments', code: 200 }),
      expect.objectContaining({ client: 'unlucky', verb: 'list', resource: 'pods', code: 503 }),
    ]);
  });
});
