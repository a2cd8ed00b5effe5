// events.k8s.io/v1 Event through HTTP: one storage with core/v1 Event (objects and resourceVersions
// shared, writes through either group seen through both, watches included), field selectors in
// each group's labels, validation, discovery, OpenAPI and RBAC by group — and the real kubectl
// listing the controllers' rollout events through the group.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, EventsV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { typeOf } from '../../src/sim/resources.ts';
import { sleepUntil } from '../helpers.ts';
import { kubectl } from './kubectl.ts';

let sim: Simulator;
let root: string;
let kc: KubeConfig;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

beforeAll(async () => {
  sim = await startSimulator({ timeScale: 20, podStartupDelayMs: 1000 });
  root = await mkdtemp(path.join(os.tmpdir(), 'keelson-events-'));
  kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfigYaml());
  await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ev' } });
});

afterAll(async () => {
  await sim?.close();
  await rm(root, { recursive: true, force: true });
});

async function call(method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}, token = sim.auth.adminToken): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${sim.url}${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Json };
}

const V1 = '/apis/events.k8s.io/v1';
const regarding = { kind: 'Deployment', namespace: 'ev', name: 'web', uid: 'd-1', apiVersion: 'apps/v1' };
const newEvent = (name: string, extra: Json = {}): Json => ({
  apiVersion: 'events.k8s.io/v1',
  kind: 'Event',
  metadata: { name, namespace: 'ev' },
  eventTime: '2025-01-01T00:00:00.000000Z',
  reportingController: 'keelson.dev/deployer',
  reportingInstance: 'keelson-0',
  action: 'Deploy',
  reason: 'Deployed',
  regarding,
  note: 'release r3 is live',
  type: 'Normal',
  ...extra,
});

describe('events.k8s.io/v1 Event', () => {
  it('is the core/v1 Event storage under other field names, both ways, resourceVersion shared', async () => {
    const created = await call('POST', `${V1}/namespaces/ev/events`, newEvent('web.1'));
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      note: 'release r3 is live',
      regarding,
      reportingController: 'keelson.dev/deployer',
      deprecatedSource: {},
      deprecatedFirstTimestamp: null,
      deprecatedLastTimestamp: null,
    });
    expect(created.json.metadata.managedFields[0]).toMatchObject({ apiVersion: 'events.k8s.io/v1', operation: 'Update' });

    const asCore = await call('GET', '/api/v1/namespaces/ev/events/web.1');
    expect(asCore.status).toBe(200);
    expect(asCore.json).toMatchObject({
      apiVersion: 'v1',
      kind: 'Event',
      message: 'release r3 is live',
      involvedObject: regarding,
      reportingComponent: 'keelson.dev/deployer',
      reportingInstance: 'keelson-0',
      action: 'Deploy',
      eventTime: '2025-01-01T00:00:00.000000Z',
      source: {},
      firstTimestamp: null,
    });
    expect(asCore.json).not.toHaveProperty('note');
    expect(asCore.json.metadata).toEqual(created.json.metadata);
    // one object in one store
    expect(sim.store.get(typeOf('Event'), 'ev', 'web.1')?.metadata.resourceVersion).toBe(created.json.metadata.resourceVersion);

    // a core/v1 write is seen through events.k8s.io, with the new resourceVersion
    const core = await call('POST', '/api/v1/namespaces/ev/events', {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: 'web.2', namespace: 'ev' },
      involvedObject: regarding,
      reason: 'Stopped',
      message: 'scaled to zero',
      source: { component: 'keelson' },
      firstTimestamp: '2025-01-01T00:00:01Z',
      lastTimestamp: '2025-01-01T00:00:01Z',
      count: 1,
      type: 'Normal',
    });
    expect(core.status).toBe(201);
    const viaV1 = await call('GET', `${V1}/namespaces/ev/events/web.2`);
    expect(viaV1.json).toMatchObject({ note: 'scaled to zero', deprecatedSource: { component: 'keelson' }, deprecatedCount: 1, eventTime: null, reason: 'Stopped' });
    expect(viaV1.json).not.toHaveProperty('reportingController');
    expect(viaV1.json.metadata.resourceVersion).toBe(core.json.metadata.resourceVersion);

    // an update through core bumps the version both see
    const edited = await call('PATCH', '/api/v1/namespaces/ev/events/web.2', { count: 2 }, { 'content-type': 'application/merge-patch+json' });
    expect(edited.status).toBe(200);
    expect((await call('GET', `${V1}/namespaces/ev/events/web.2`)).json).toMatchObject({ deprecatedCount: 2, metadata: { resourceVersion: edited.json.metadata.resourceVersion } });

    // lists of both groups show the same objects at the same list resourceVersion
    const [coreList, v1List] = await Promise.all([call('GET', '/api/v1/namespaces/ev/events'), call('GET', `${V1}/namespaces/ev/events`)]);
    expect(v1List.json.kind).toBe('EventList');
    expect(v1List.json.apiVersion).toBe('events.k8s.io/v1');
    expect(v1List.json.items.map((e: Json) => [e.metadata.name, e.metadata.resourceVersion])).toEqual(coreList.json.items.map((e: Json) => [e.metadata.name, e.metadata.resourceVersion]));
    expect(v1List.json.metadata.resourceVersion).toBe(coreList.json.metadata.resourceVersion);

    // deleting through one group deletes it from both
    expect((await call('DELETE', `${V1}/namespaces/ev/events/web.2`)).status).toBe(200);
    expect((await call('GET', '/api/v1/namespaces/ev/events/web.2')).status).toBe(404);
    const gone = await call('GET', `${V1}/namespaces/ev/events/web.2`);
    expect(gone.status).toBe(404);
    expect(gone.json.message).toBe('events.events.k8s.io "web.2" not found');
  });

  it('selects by each group’s field labels, as upstream converts them', async () => {
    for (const [name, controller, kind] of [['sel.1', 'ctl-a', 'Pod'], ['sel.2', 'ctl-b', 'Pod'], ['sel.3', 'ctl-a', 'Service']] as const) {
      const res = await call('POST', `${V1}/namespaces/ev/events`, newEvent(name, { reportingController: controller, regarding: { kind, namespace: 'ev', name: `x-${name}` }, metadata: { name, namespace: 'ev', labels: { batch: 'sel' } } }));
      expect(res.status).toBe(201);
    }
    const names = async (base: string, selector: string): Promise<string[]> => {
      const res = await call('GET', `${base}/namespaces/ev/events?labelSelector=batch%3Dsel&fieldSelector=${encodeURIComponent(selector)}`);
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      return res.json.items.map((e: Json) => e.metadata.name);
    };
    expect(await names(V1, 'regarding.kind=Pod,reportingController=ctl-a')).toEqual(['sel.1']);
    expect(await names(V1, 'reportingController!=ctl-a')).toEqual(['sel.2']);
    expect(await names('/api/v1', 'involvedObject.kind=Pod,reportingComponent=ctl-a')).toEqual(['sel.1']);
    // `source` is the source component or, without one, the reporting controller (both groups)
    expect(await names(V1, 'source=ctl-b')).toEqual(['sel.2']);
    expect(await names('/api/v1', 'source=ctl-a')).toEqual(['sel.1', 'sel.3']);
    // each group refuses the other's labels
    const refused = await call('GET', `${V1}/namespaces/ev/events?fieldSelector=involvedObject.kind%3DPod`);
    expect(refused.status).toBe(400);
    expect(refused.json.message).toContain('field label not supported: involvedObject.kind');
    expect((await call('GET', '/api/v1/namespaces/ev/events?fieldSelector=regarding.kind%3DPod')).status).toBe(400);
  });

  it('validates writes through events.k8s.io strictly and through core/v1 as upstream’s legacy rules do', async () => {
    const strict = await call('POST', `${V1}/namespaces/ev/events`, newEvent('bad.1', { eventTime: undefined, deprecatedCount: 3, type: 'Odd' }));
    expect(strict.status).toBe(422);
    expect(strict.json.message).toBe('Event "bad.1" is invalid: [eventTime: Required value, type: Invalid value: "": has invalid value: Odd, count: Invalid value: "": needs to be unset]');
    const legacy = await call('POST', '/api/v1/namespaces/ev/events', { metadata: { name: 'bad.2' }, involvedObject: { kind: 'Pod', namespace: 'other', name: 'p' }, reason: 'X' });
    expect(legacy.status).toBe(422);
    expect(legacy.json.message).toBe('Event "bad.2" is invalid: involvedObject.namespace: Invalid value: "other": does not match event.namespace');
    // an update through events.k8s.io may not rewrite the note, through core/v1 it may
    expect((await call('POST', `${V1}/namespaces/ev/events`, newEvent('mut.1'))).status).toBe(201);
    const immutable = await call('PATCH', `${V1}/namespaces/ev/events/mut.1`, { note: 'rewritten' }, { 'content-type': 'application/merge-patch+json' });
    expect(immutable.status).toBe(422);
    expect(immutable.json.message).toBe('Event "mut.1" is invalid: message: Invalid value: "rewritten": field is immutable');
    const series = await call('PATCH', `${V1}/namespaces/ev/events/mut.1`, { series: { count: 2, lastObservedTime: '2025-01-01T00:01:00.000000Z' } }, { 'content-type': 'application/merge-patch+json' });
    expect(series.status).toBe(200);
    expect((await call('PATCH', '/api/v1/namespaces/ev/events/mut.1', { message: 'rewritten' }, { 'content-type': 'application/merge-patch+json' })).status).toBe(200);
  });

  it('works with client-node’s EventsV1Api, and watches of either group see writes through the other', async () => {
    const eventsApi = kc.makeApiClient(EventsV1Api);
    const coreApi = kc.makeApiClient(CoreV1Api);
    const seen: { group: string; type: string; name: string; note?: string; message?: string; rv: string }[] = [];
    const watch = new Watch(kc);
    const watches = await Promise.all([
      watch.watch(`${V1}/namespaces/ev/events`, { fieldSelector: 'regarding.name=watched' }, (type, o: Json) => seen.push({ group: 'events.k8s.io', type, name: o.metadata.name, note: o.note, rv: o.metadata.resourceVersion }), () => {}),
      watch.watch('/api/v1/namespaces/ev/events', { fieldSelector: 'involvedObject.name=watched' }, (type, o: Json) => seen.push({ group: '', type, name: o.metadata.name, message: o.message, rv: o.metadata.resourceVersion }), () => {}),
    ]);
    try {
      const created = await eventsApi.createNamespacedEvent({ namespace: 'ev', body: newEvent('w.1', { regarding: { ...regarding, name: 'watched' }, eventTime: new Date('2025-01-01T00:00:00Z') }) as never });
      await coreApi.createNamespacedEvent({ namespace: 'ev', body: { metadata: { name: 'w.2' }, involvedObject: { kind: 'Pod', namespace: 'ev', name: 'watched' }, reason: 'Poked', message: 'via core', type: 'Normal' } });
      await coreApi.deleteNamespacedEvent({ name: 'w.1', namespace: 'ev' });
      await sleepUntil(() => seen.length === 6, { message: 'both watches to see both creates and the delete' });
      const rv = created.metadata!.resourceVersion!;
      expect(seen.filter((s) => s.group === 'events.k8s.io')).toEqual([
        { group: 'events.k8s.io', type: 'ADDED', name: 'w.1', note: 'release r3 is live', rv },
        expect.objectContaining({ type: 'ADDED', name: 'w.2', note: 'via core' }),
        expect.objectContaining({ type: 'DELETED', name: 'w.1' }),
      ]);
      expect(seen.filter((s) => s.group === '')).toEqual([
        { group: '', type: 'ADDED', name: 'w.1', message: 'release r3 is live', rv },
        expect.objectContaining({ type: 'ADDED', name: 'w.2', message: 'via core' }),
        expect.objectContaining({ type: 'DELETED', name: 'w.1' }),
      ]);
      const listed = await eventsApi.listNamespacedEvent({ namespace: 'ev', fieldSelector: 'regarding.name=watched' });
      expect(listed.items.map((e) => [e.metadata?.name, e.note])).toEqual([['w.2', 'via core']]);
    } finally {
      for (const w of watches) w.abort();
    }
  });

  it('is in discovery (legacy and aggregated), OpenAPI v3 and RBAC by its own group', async () => {
    const group = await call('GET', '/apis/events.k8s.io');
    expect(group.json).toMatchObject({ kind: 'APIGroup', name: 'events.k8s.io', preferredVersion: { groupVersion: 'events.k8s.io/v1', version: 'v1' } });
    const list = await call('GET', V1);
    expect(list.json.resources).toEqual([{ name: 'events', singularName: 'event', namespaced: true, kind: 'Event', verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['ev'] }]);
    const aggregated = await call('GET', '/apis', undefined, { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' });
    const entry = aggregated.json.items.find((i: Json) => i.metadata.name === 'events.k8s.io');
    expect(entry.versions[0].resources[0]).toMatchObject({ resource: 'events', responseKind: { group: 'events.k8s.io', version: 'v1', kind: 'Event' }, scope: 'Namespaced' });
    const index = await call('GET', '/openapi/v3');
    expect(index.json.paths['apis/events.k8s.io/v1']).toBeDefined();
    const doc = await call('GET', '/openapi/v3/apis/events.k8s.io/v1');
    expect(doc.json.components.schemas['io.k8s.api.events.v1.Event']['x-kubernetes-group-version-kind']).toEqual([{ group: 'events.k8s.io', version: 'v1', kind: 'Event' }]);
    expect(doc.json.paths['/apis/events.k8s.io/v1/namespaces/{namespace}/events/{name}'].patch).toBeDefined();

    // RBAC names the group: a grant on core events does not open events.k8s.io
    const secured = await startSimulator({ rbac: true });
    try {
      const as = async (method: string, p: string, token: string, body?: unknown) => {
        const res = await fetch(`${secured.url}${p}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
        return { status: res.status, json: (await res.json()) as Json };
      };
      const admin = secured.auth.adminToken;
      secured.auth.addToken('reader-token', 'reader', []);
      await as('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles', admin, { metadata: { name: 'core-events' }, rules: [{ apiGroups: [''], resources: ['events'], verbs: ['list'] }] });
      await as('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings', admin, {
        metadata: { name: 'reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'core-events' },
        subjects: [{ kind: 'User', name: 'reader' }],
      });
      expect((await as('GET', '/api/v1/namespaces/default/events', 'reader-token')).status).toBe(200);
      const denied = await as('GET', '/apis/events.k8s.io/v1/namespaces/default/events', 'reader-token');
      expect(denied.status).toBe(403);
      expect(denied.json.message).toBe('events.events.k8s.io is forbidden: User "reader" cannot list resource "events" in API group "events.k8s.io" in the namespace "default"');
    } finally {
      await secured.close();
    }
  });
});

describe('who records the controllers’ and the kubelet’s events', () => {
  // As on a real cluster: each controller of the controller manager has its own recorder
  // (client-go tools/record: source and reportingComponent the same, reportingInstance the host),
  // the kubelet names its node, and the scheduler records through events.k8s.io (tools/events:
  // eventTime, reportingInstance `<controller>-<host>`, action Binding, no source or counts).
  const micro = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
  const legacy = (component: string, host = '') => ({
    core: { source: host ? { component, host } : { component }, reportingComponent: component, reportingInstance: host, count: 1, eventTime: null, firstTimestamp: expect.any(String) },
    v1: { deprecatedSource: host ? { component, host } : { component }, reportingController: component, ...(host ? { reportingInstance: host } : {}), deprecatedCount: 1, eventTime: null },
  });
  const expected: Record<string, { core: Json; v1: Json }> = {
    ScalingReplicaSet: legacy('deployment-controller'),
    SuccessfulCreate: legacy('replicaset-controller'),
    SuccessfulDelete: legacy('replicaset-controller'),
    Scheduled: {
      core: { source: {}, reportingComponent: 'default-scheduler', reportingInstance: 'default-scheduler-sim-node', action: 'Binding', eventTime: expect.stringMatching(micro), firstTimestamp: null, lastTimestamp: null },
      v1: { deprecatedSource: {}, reportingController: 'default-scheduler', reportingInstance: 'default-scheduler-sim-node', action: 'Binding', eventTime: expect.stringMatching(micro), deprecatedFirstTimestamp: null, deprecatedLastTimestamp: null },
    },
    ...Object.fromEntries(['Pulling', 'Pulled', 'Created', 'Started', 'Failed', 'BackOff'].map((reason) => [reason, legacy('kubelet', 'sim-node')])),
  };

  it('names the controller, the scheduler or the kubelet (with its node) in core/v1 and events.k8s.io/v1 alike', async () => {
    await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'who' } });
    const deploy = (name: string, image: string, replicas: number) =>
      call('POST', '/apis/apps/v1/namespaces/who/deployments', {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name },
        spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'main', image }] } } },
      });
    expect((await deploy('runs', 'nginx:1.27', 2)).status).toBe(201);
    expect((await deploy('unpulled', 'example.com/doesnotexist:1', 1)).status).toBe(201);
    const reasons = async (): Promise<Set<string>> => new Set((await call('GET', '/api/v1/namespaces/who/events')).json.items.map((e: Json) => e.reason));
    await sleepUntil(async () => (await reasons()).has('Started'), { message: 'pods started' });
    expect((await call('PATCH', '/apis/apps/v1/namespaces/who/deployments/runs', { spec: { replicas: 1 } }, { 'content-type': 'application/merge-patch+json' })).status).toBe(200);
    await sleepUntil(
      async () => {
        const got = await reasons();
        return Object.keys(expected).every((r) => got.has(r));
      },
      { message: 'every kind of event recorded' },
    );

    const core = (await call('GET', '/api/v1/namespaces/who/events')).json.items as Json[];
    const v1 = new Map(((await call('GET', `${V1}/namespaces/who/events`)).json.items as Json[]).map((e) => [e.metadata.name, e]));
    expect(new Set(core.map((e) => e.reason))).toEqual(new Set(Object.keys(expected)));
    for (const event of core) {
      const want = expected[event.reason]!;
      expect(event, event.reason).toMatchObject(want.core);
      expect(v1.get(event.metadata.name), event.reason).toMatchObject(want.v1);
    }
    // no `count` where the events.k8s.io recorder wrote it; none names the controller manager
    expect(core.find((e) => e.reason === 'Scheduled')).not.toHaveProperty('count');
    expect(JSON.stringify(core)).not.toContain('kube-controller-manager');

    // `source` selects on the component, or the reporting controller without one (the scheduler)
    const selected = async (base: string, selector: string): Promise<Set<string>> =>
      new Set((await call('GET', `${base}/namespaces/who/events?fieldSelector=${encodeURIComponent(selector)}`)).json.items.map((e: Json) => e.reason));
    expect(await selected('/api/v1', 'source=default-scheduler')).toEqual(new Set(['Scheduled']));
    expect(await selected(V1, 'reportingController=deployment-controller')).toEqual(new Set(['ScalingReplicaSet']));
    expect(await selected('/api/v1', 'reportingComponent=replicaset-controller')).toEqual(new Set(['SuccessfulCreate', 'SuccessfulDelete']));

    // kubectl get events -o wide's SOURCE column (printers.go formatEventSource)
    const table = await call('GET', '/api/v1/namespaces/who/events?includeObject=None', undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' });
    const column = (table.json.columnDefinitions as Json[]).findIndex((c) => c.name === 'Source');
    const reasonColumn = (table.json.columnDefinitions as Json[]).findIndex((c) => c.name === 'Reason');
    const sources = new Map((table.json.rows as Json[]).map((r) => [r.cells[reasonColumn], r.cells[column]]));
    expect(Object.fromEntries(sources)).toMatchObject({
      ScalingReplicaSet: 'deployment-controller',
      SuccessfulCreate: 'replicaset-controller',
      Scheduled: 'default-scheduler, default-scheduler-sim-node',
      Started: 'kubelet, sim-node',
    });
  });
});

describe('the real kubectl and events.k8s.io', () => {
  it('get events.v1.events.k8s.io -A (table and -o yaml) shows the controllers’ rollout events; create -f and delete work', async () => {
    const k = await kubectl(sim, root, 'events-v1');
    const manifest = path.join(root, 'rollout.yaml');
    await writeFile(manifest, `apiVersion: apps/v1
kind: Deployment
metadata: {name: rolled, namespace: default, labels: {app: rolled}}
spec:
  replicas: 2
  selector: {matchLabels: {app: rolled}}
  template:
    metadata: {labels: {app: rolled}}
    spec: {containers: [{name: main, image: 'nginx:1.27'}]}
`);
    expect((await k(['apply', '--server-side', '-f', manifest])).code).toBe(0);
    expect((await k(['rollout', 'status', 'deploy/rolled', '--timeout=30s'])).code).toBe(0);

    const table = await k(['get', 'events.v1.events.k8s.io', '-A']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^NAMESPACE\s+LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE/);
    expect(table.stdout).toMatch(/default\s+\S+\s+Normal\s+ScalingReplicaSet\s+deployment\/rolled\s+Scaled up replica set rolled-\w+ from 0 to 2/);
    expect(table.stdout).toMatch(/Normal\s+SuccessfulCreate\s+replicaset\/rolled-\w+\s+Created pod: rolled-/);
    expect(table.stdout).toMatch(/Normal\s+Started\s+pod\/rolled-/);

    const yaml = await k(['get', 'events.v1.events.k8s.io', '-n', 'default', '-o', 'yaml', '--field-selector', 'regarding.kind=Deployment,regarding.name=rolled']);
    expect(yaml.code, yaml.stderr).toBe(0);
    const [doc] = parseAllDocuments(yaml.stdout).map((d) => d.toJS() as Json);
    expect(doc!.kind).toBe('List');
    expect(doc!.items.length).toBeGreaterThan(0);
    for (const item of doc!.items) {
      expect(item).toMatchObject({
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        reason: 'ScalingReplicaSet',
        regarding: { kind: 'Deployment', name: 'rolled', namespace: 'default' },
        reportingController: 'deployment-controller',
        deprecatedSource: { component: 'deployment-controller' },
        deprecatedCount: 1,
        eventTime: null,
      });
      expect(item.note).toMatch(/^Scaled up replica set rolled-\w+ from 0 to 2$/);
      expect(item).not.toHaveProperty('message');
    }

    const own = path.join(root, 'event.yaml');
    await writeFile(own, `apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: rolled.keelson, namespace: default}
eventTime: "2025-01-01T00:00:00.000000Z"
reportingController: keelson.dev/deployer
reportingInstance: keelson-0
action: Deploy
reason: Deployed
regarding: {apiVersion: apps/v1, kind: Deployment, namespace: default, name: rolled}
note: release r1 is live
type: Normal
`);
    const created = await k(['create', '-f', own]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout.trim()).toBe('event.events.k8s.io/rolled.keelson created');
    const described = await k(['get', 'events', '-n', 'default', '--field-selector', 'reason=Deployed', '-o', 'jsonpath={.items[*].message}']);
    expect(described.stdout).toBe('release r1 is live');
    const deleted = await k(['delete', 'events.v1.events.k8s.io', 'rolled.keelson', '-n', 'default']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout.trim()).toBe('event.events.k8s.io "rolled.keelson" deleted');

    const resources = await k(['api-resources', '--api-group', 'events.k8s.io']);
    expect(resources.stdout).toMatch(/events\s+ev\s+events\.k8s\.io\/v1\s+true\s+Event/);
  });
});
