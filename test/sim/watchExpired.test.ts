// A watch from a resourceVersion the history no longer holds, over plain HTTP: the answer is what
// a real API server sends (the watch cache's errors.NewResourceExpired, through the handler that
// passes a metav1.Status by untransformed): 200, one ERROR event whose object is a core/v1
// Status — never an object of the watched kind, nor a Table row, whatever the kind or the Accept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';

let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({ timeScale: 20 });
});

afterAll(async () => {
  await sim?.close();
});

const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io';
let created = 0;

/** Creates a ConfigMap (so the store has history), then compacts it away: `before` is expired. */
async function expiredVersion(name = `expire-${++created}`): Promise<{ before: number; oldest: number }> {
  const before = sim.store.resourceVersion;
  const res = await fetch(`${sim.url}/api/v1/namespaces/default/configmaps`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sim.auth.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } }),
  });
  expect(res.status).toBe(201);
  sim.store.compact();
  return { before, oldest: sim.store.oldestResourceVersion };
}

/** Watches `path` from `rv`; the simulator ends an expired watch itself, so the body completes. */
async function watchFrom(path: string, rv: number, accept?: string): Promise<{ status: number; contentType: string | null; events: unknown[] }> {
  const res = await fetch(`${sim.url}${path}?watch=true&resourceVersion=${rv}`, {
    headers: { authorization: `Bearer ${sim.auth.adminToken}`, ...(accept ? { accept } : {}) },
  });
  const text = await res.text();
  const events = text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as unknown);
  return { status: res.status, contentType: res.headers.get('content-type'), events };
}

const expiredStatus = (before: number, oldest: number) => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: `too old resource version: ${before} (${oldest})`,
  reason: 'Expired',
  code: 410,
});

describe('watch from an expired resourceVersion', () => {
  // events.k8s.io/v1 Event is a view of core/v1 Event's storage: its serialiser converts what it
  // is given, and must not be given the Status
  it.each([
    ['core/v1 ConfigMap', '/api/v1/namespaces/default/configmaps'],
    ['apps/v1 Deployment', '/apis/apps/v1/namespaces/default/deployments'],
    ['events.k8s.io/v1 Event (a view of another storage)', '/apis/events.k8s.io/v1/namespaces/default/events'],
  ])('%s as JSON: one ERROR event carrying a plain Status 410 Expired, then the stream ends', async (_, path) => {
    const { before, oldest } = await expiredVersion();
    expect(before).toBeLessThan(oldest);
    const got = await watchFrom(path, before);
    expect(got.status).toBe(200);
    expect(got.contentType).toBe('application/json');
    expect(got.events).toEqual([{ type: 'ERROR', object: expiredStatus(before, oldest) }]);
  });

  // kubectl get -w asks for Tables; a Status is sent as it is, not printed as a row
  it.each([
    ['core/v1 ConfigMap', '/api/v1/namespaces/default/configmaps'],
    ['events.k8s.io/v1 Event (a view of another storage)', '/apis/events.k8s.io/v1/namespaces/default/events'],
    ['core/v1 Event', '/api/v1/namespaces/default/events'],
  ])('%s as Table: the same Status, not a Table', async (_, path) => {
    const { before, oldest } = await expiredVersion();
    const got = await watchFrom(path, before, TABLE);
    expect(got.status).toBe(200);
    expect(got.contentType).toBe(TABLE);
    expect(got.events).toEqual([{ type: 'ERROR', object: expiredStatus(before, oldest) }]);
  });

  it('still serves a watch from a resourceVersion the history holds', async () => {
    await expiredVersion('kept-0');
    const from = sim.store.resourceVersion;
    const created = await fetch(`${sim.url}/api/v1/namespaces/default/configmaps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sim.auth.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kept-1' } }),
    });
    expect(created.status).toBe(201);
    const res = await fetch(`${sim.url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${from}&timeoutSeconds=1`, {
      headers: { authorization: `Bearer ${sim.auth.adminToken}` },
    });
    const events = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string } } });
    expect(events.map((e) => [e.type, e.object.metadata.name])).toEqual([['ADDED', 'kept-1']]);
  });
});
