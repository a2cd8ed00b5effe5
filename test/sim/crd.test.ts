// CustomResourceDefinitions in the simulator: a CRD's kinds appear in discovery and OpenAPI, its
// custom resources are created, listed, watched, server-side applied and printed like built-in
// objects, RBAC names them by plural and group, invalid CRDs are refused with a 422 naming the
// field, and deleting a CRD takes its objects and its kind away. Plain HTTP, client-node and the
// real kubectl.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig, KubernetesObjectApi, PatchStrategy, Watch, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { sleepUntil } from '../helpers.ts';
import { GATEWAY_API_CRDS_FILE, GATEWAY_API_VERSION, gatewayApiCrds, httpRouteBackends, installGatewayApi } from './gatewayApi.ts';
import { kubectl } from './kubectl.ts';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let sim: Simulator;
let root: string;
let objects: KubernetesObjectApi;

beforeAll(async () => {
  sim = await startSimulator({ timeScale: 20 });
  root = await mkdtemp(path.join(os.tmpdir(), 'keelson-crd-'));
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfigYaml());
  objects = KubernetesObjectApi.makeApiClient(kc);
});

afterAll(async () => {
  await sim?.close();
  await rm(root, { recursive: true, force: true });
});

async function call(method: string, urlPath: string, body?: unknown, options: { contentType?: string; accept?: string; token?: string; target?: Simulator } = {}): Promise<{ code: number; body: Any }> {
  const target = options.target ?? sim;
  const res = await fetch(`${target.url}${urlPath}`, {
    method,
    headers: {
      Authorization: `Bearer ${options.token ?? target.auth.adminToken}`,
      ...(body === undefined ? {} : { 'Content-Type': options.contentType ?? 'application/json' }),
      ...(options.accept ? { Accept: options.accept } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { code: res.status, body: text ? (JSON.parse(text) as Any) : {} };
}

function widgetCrd(overrides: { name?: string; scope?: string; versions?: unknown[] } = {}): Any {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: overrides.name ?? 'widgets.example.com' },
    spec: {
      group: 'example.com',
      names: { kind: 'Widget', plural: 'widgets', shortNames: ['wd'] },
      scope: overrides.scope ?? 'Cluster',
      versions: overrides.versions ?? [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { replicas: { type: 'integer' } } }, status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } } },
          subresources: { status: {}, scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas' } },
          additionalPrinterColumns: [{ name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' }],
        },
      ],
    },
  };
}

function route(name: string, weights: [number, number], labels: Record<string, string> = {}): KubernetesObject & Any {
  return {
    apiVersion: GATEWAY_API_VERSION,
    kind: 'HTTPRoute',
    metadata: { name, namespace: 'default', labels },
    spec: {
      parentRefs: [{ name: 'edge' }],
      hostnames: ['shop.example.com'],
      rules: [{ backendRefs: [{ name: 'shop-blue', port: 80, weight: weights[0] }, { name: 'shop-green', port: 80, weight: weights[1] }] }],
    },
  };
}

const AGGREGATED = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

describe('CustomResourceDefinitions', () => {
  it('established at once: discovery, aggregated discovery and OpenAPI show the new kinds', async () => {
    expect((await call('GET', '/apis/gateway.networking.k8s.io/v1')).code).toBe(404);
    await installGatewayApi(sim);
    const crd = (await call('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/httproutes.gateway.networking.k8s.io')).body;
    expect(crd.status.conditions.map((c: Any) => `${c.type}=${c.status}`)).toEqual(['NamesAccepted=True', 'Established=True']);
    expect(crd.status.acceptedNames).toMatchObject({ kind: 'HTTPRoute', plural: 'httproutes', singular: 'httproute', listKind: 'HTTPRouteList' });
    expect(crd.status.storedVersions).toEqual(['v1']);

    const groups = (await call('GET', '/apis')).body;
    expect(groups.groups.find((g: Any) => g.name === 'gateway.networking.k8s.io')).toEqual({
      name: 'gateway.networking.k8s.io',
      versions: [{ groupVersion: 'gateway.networking.k8s.io/v1', version: 'v1' }],
      preferredVersion: { groupVersion: 'gateway.networking.k8s.io/v1', version: 'v1' },
    });
    expect((await call('GET', '/apis/gateway.networking.k8s.io')).body.preferredVersion.version).toBe('v1');
    const list = (await call('GET', '/apis/gateway.networking.k8s.io/v1')).body;
    expect(list.resources.map((r: Any) => r.name).sort()).toEqual(['gateways', 'gateways/status', 'httproutes', 'httproutes/status']);
    expect(list.resources.find((r: Any) => r.name === 'gateways')).toMatchObject({ kind: 'Gateway', namespaced: true, shortNames: ['gtw'], categories: ['gateway-api'] });

    const aggregated = (await call('GET', '/apis', undefined, { accept: AGGREGATED })).body;
    const item = aggregated.items.find((i: Any) => i.metadata.name === 'gateway.networking.k8s.io');
    expect(item.versions[0].resources.find((r: Any) => r.resource === 'httproutes')).toMatchObject({ scope: 'Namespaced', responseKind: { kind: 'HTTPRoute' }, subresources: [{ subresource: 'status' }] });

    const index = (await call('GET', '/openapi/v3')).body;
    const ref = index.paths['apis/gateway.networking.k8s.io/v1'].serverRelativeURL as string;
    const doc = (await call('GET', ref)).body;
    const schema = doc.components.schemas['io.k8s.networking.gateway.v1.HTTPRoute'];
    expect(schema['x-kubernetes-group-version-kind']).toEqual([{ group: 'gateway.networking.k8s.io', version: 'v1', kind: 'HTTPRoute' }]);
    expect(schema.properties.spec.properties.rules.items.properties.backendRefs.items.properties.weight.type).toBe('integer');
    expect(doc.paths['/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/{name}'].patch.parameters.map((p: Any) => p.name)).toContain('fieldValidation');
  });

  it('serves custom resources: SSA with managedFields, get, list by label, watch, status subresource, Table', async () => {
    await installGatewayApi(sim);
    const events: string[] = [];
    const kc = new KubeConfig();
    kc.loadFromString(sim.kubeconfigYaml());
    const watching = await new Watch(kc).watch(`/apis/${GATEWAY_API_VERSION}/namespaces/default/httproutes`, { labelSelector: 'app=shop' }, (type, obj: Any) => events.push(`${type} ${obj.metadata.name}`), () => undefined);

    const apply = (o: KubernetesObject, manager = 'keelson') => objects.patch(o, undefined, undefined, manager, false, PatchStrategy.ServerSideApply) as Promise<Any>;
    const created = await apply(route('shop', [90, 10], { app: 'shop' }));
    expect(created.metadata.generation).toBe(1);
    expect(created.status).toBeUndefined();
    expect(created.metadata.managedFields).toEqual([expect.objectContaining({ manager: 'keelson', operation: 'Apply', apiVersion: GATEWAY_API_VERSION })]);
    expect(created.metadata.managedFields[0].fieldsV1['f:spec']).toHaveProperty('f:rules');
    await apply(route('other', [50, 50], { app: 'other' }));
    const moved = await apply(route('shop', [50, 50], { app: 'shop' }));
    expect(moved.metadata.generation).toBe(2);
    expect(httpRouteBackends(sim, 'default', 'shop')).toEqual([[{ name: 'shop-blue', port: 80, weight: 50 }, { name: 'shop-green', port: 80, weight: 50 }]]);

    const conflict = await objects.patch(route('shop', [0, 100]), undefined, undefined, 'intruder', false, PatchStrategy.ServerSideApply).then(() => undefined, (e: unknown) => e as { code: number });
    expect(conflict?.code).toBe(409);

    const byLabel = (await call('GET', `/apis/${GATEWAY_API_VERSION}/namespaces/default/httproutes?labelSelector=app%3Dshop`)).body;
    expect(byLabel.kind).toBe('HTTPRouteList');
    expect(byLabel.items.map((i: Any) => i.metadata.name)).toEqual(['shop']);

    // Status goes through its subresource only; the main resource ignores it.
    const withStatus = { ...route('shop', [50, 50], { app: 'shop' }), status: { parents: [{ controllerName: 'example.com/gw' }] } };
    await call('PUT', `/apis/${GATEWAY_API_VERSION}/namespaces/default/httproutes/shop/status`, withStatus);
    const main = await call('PATCH', `/apis/${GATEWAY_API_VERSION}/namespaces/default/httproutes/shop`, { status: { parents: [] } }, { contentType: 'application/merge-patch+json' });
    expect(main.body.status.parents).toEqual([{ controllerName: 'example.com/gw' }]);
    expect(main.body.metadata.generation).toBe(2);

    const table = (await call('GET', `/apis/${GATEWAY_API_VERSION}/namespaces/default/httproutes/shop`, undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' })).body;
    expect(table.columnDefinitions.map((c: Any) => c.name)).toEqual(['Name', 'Hostnames', 'Age']);
    expect(table.rows[0].cells[1]).toBe('["shop.example.com"]');

    await objects.delete({ apiVersion: GATEWAY_API_VERSION, kind: 'HTTPRoute', metadata: { name: 'shop', namespace: 'default' } });
    await sleepUntil(() => events.includes('DELETED shop'), { message: 'the watch to see shop deleted' });
    expect(events.filter((e) => e.startsWith('ADDED'))).toEqual(['ADDED shop']);
    expect(events).toContain('MODIFIED shop');
    watching.abort();
  });

  it('serves a cluster-scoped kind with a scale subresource and its printer columns', async () => {
    const created = await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', widgetCrd());
    expect(created.code).toBe(201);
    const w = await call('POST', '/apis/example.com/v1/widgets', { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w1' }, spec: { replicas: 2 } });
    expect(w.code).toBe(201);
    expect(w.body.metadata.namespace).toBeUndefined();
    expect((await call('GET', '/apis/example.com/v1/namespaces/default/widgets/w1')).code).toBe(404);
    const scaled = await call('PATCH', '/apis/example.com/v1/widgets/w1/scale', { spec: { replicas: 5 } }, { contentType: 'application/merge-patch+json' });
    expect(scaled.body.spec.replicas).toBe(5);
    const table = (await call('GET', '/apis/example.com/v1/widgets', undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' })).body;
    expect(table.columnDefinitions.map((c: Any) => c.name)).toEqual(['Name', 'Replicas']);
    expect(table.rows[0].cells).toEqual(['w1', 5]);
    expect((await call('DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com')).code).toBe(200);
  });

  it('refuses an invalid CRD with a 422 that names the field', async () => {
    const cases: [Any, string][] = [
      [widgetCrd({ name: 'gadgets.example.com' }), 'metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group'],
      [widgetCrd({ scope: 'Global' }), 'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'],
      [widgetCrd({ versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object' } } }, { name: 'v2', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object' } } }] }), 'spec.versions: Invalid value: ["v1","v2"]: must have exactly one version marked as storage version'],
      [widgetCrd({ versions: [{ name: 'v1', served: true, storage: true }] }), 'spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required'],
    ];
    for (const [crd, message] of cases) {
      const refused = await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
      expect(refused.code).toBe(422);
      expect(refused.body.reason).toBe('Invalid');
      expect(refused.body.message).toBe(`CustomResourceDefinition.apiextensions.k8s.io "${crd.metadata.name}" is invalid: ${message}`);
    }
    const noKind = widgetCrd();
    delete noKind.spec.names.kind;
    const refused = await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', noKind);
    expect(refused.body.details.causes).toContainEqual({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.names.kind' });
    expect((await call('GET', '/apis/example.com/v1')).code).toBe(404);

    // Scope is immutable.
    await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', widgetCrd());
    const changed = await call('PATCH', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com', { spec: { scope: 'Namespaced' } }, { contentType: 'application/merge-patch+json' });
    expect(changed.code).toBe(422);
    expect(changed.body.message).toContain('spec.scope: Invalid value: "Namespaced": field is immutable');
    await call('DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com');
  });

  it('deleting a CRD deletes its objects, ends their watches and drops the kind from discovery', async () => {
    await installGatewayApi(sim);
    await objects.create(route('doomed', [100, 0]));
    const kc = new KubeConfig();
    kc.loadFromString(sim.kubeconfigYaml());
    let ended = false;
    const events: string[] = [];
    await new Watch(kc).watch(`/apis/${GATEWAY_API_VERSION}/httproutes`, { allowWatchBookmarks: true }, (type, obj: Any) => events.push(`${type} ${obj.metadata?.name}`), () => {
      ended = true;
    });
    await sleepUntil(() => events.includes('ADDED doomed'), { message: 'the watch to list doomed' });

    expect((await call('DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/httproutes.gateway.networking.k8s.io')).code).toBe(200);
    await sleepUntil(() => ended, { message: 'the HTTPRoute watch to end' });
    expect(events).toContain('DELETED doomed');
    expect(sim.resources.findByKind(GATEWAY_API_VERSION, 'HTTPRoute')).toBeUndefined();
    expect([...sim.store.all()].filter(([, o]) => o.kind === 'HTTPRoute')).toEqual([]);
    expect((await call('GET', `/apis/${GATEWAY_API_VERSION}/namespaces/default/httproutes/doomed`)).code).toBe(404);
    const list = (await call('GET', '/apis/gateway.networking.k8s.io/v1')).body;
    expect(list.resources.map((r: Any) => r.name)).toEqual(['gateways', 'gateways/status']);
    const aggregated = (await call('GET', '/apis', undefined, { accept: AGGREGATED })).body;
    expect(JSON.stringify(aggregated)).not.toContain('httproutes');
    expect((await call('GET', '/openapi/v3/apis/gateway.networking.k8s.io/v1')).body.components.schemas).not.toHaveProperty(['io.k8s.networking.gateway.v1.HTTPRoute']);

    // Installed again, the kind is served again, empty.
    await installGatewayApi(sim);
    expect((await call('GET', `/apis/${GATEWAY_API_VERSION}/httproutes`)).body.items).toEqual([]);
  });

  it('keeps each simulator’s CRDs its own', async () => {
    const other = await startSimulator();
    try {
      await installGatewayApi(sim);
      expect((await call('GET', '/apis/gateway.networking.k8s.io/v1', undefined, { target: other })).code).toBe(404);
    } finally {
      await other.close();
    }
  });

  it('authorizes custom resources by plural and API group under RBAC', async () => {
    const secured = await startSimulator({ rbac: true });
    try {
      await installGatewayApi(secured);
      secured.auth.addToken('router-token', 'router');
      const admin = { target: secured };
      await call('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', { metadata: { name: 'routes' }, rules: [{ apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['get', 'list', 'create', 'patch', 'delete'] }] }, admin);
      await call('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings', { metadata: { name: 'routes' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'routes' }, subjects: [{ kind: 'User', name: 'router', apiGroup: 'rbac.authorization.k8s.io' }] }, admin);
      const asRouter = { target: secured, token: 'router-token' };
      expect((await call('POST', `/apis/${GATEWAY_API_VERSION}/namespaces/default/httproutes`, route('r', [1, 1]), asRouter)).code).toBe(201);
      const status = await call('PUT', `/apis/${GATEWAY_API_VERSION}/namespaces/default/httproutes/r/status`, route('r', [1, 1]), asRouter);
      expect(status.code).toBe(403);
      expect(status.body.message).toBe('httproutes.gateway.networking.k8s.io "r" is forbidden: User "router" cannot update resource "httproutes/status" in API group "gateway.networking.k8s.io" in the namespace "default"');
      const gateways = await call('GET', `/apis/${GATEWAY_API_VERSION}/namespaces/default/gateways`, undefined, asRouter);
      expect(gateways.code).toBe(403);
      expect(gateways.body.message).toBe('gateways.gateway.networking.k8s.io is forbidden: User "router" cannot list resource "gateways" in API group "gateway.networking.k8s.io" in the namespace "default"');
      expect((await call('GET', `/apis/${GATEWAY_API_VERSION}/namespaces/other/httproutes`, undefined, asRouter)).code).toBe(403);
    } finally {
      await secured.close();
    }
  });

  it('works with the real kubectl: apply the CRDs, get crd, apply, get and delete a route', async () => {
    const fresh = await startSimulator({ timeScale: 20 });
    try {
      const k = await kubectl(fresh, root, 'crd');
      const crds = await k(['apply', '-f', GATEWAY_API_CRDS_FILE]);
      expect(crds.stderr).toBe('');
      expect(crds.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/httproutes.gateway.networking.k8s.io created');
      const got = await k(['get', 'crd']);
      expect(got.stdout.split('\n')[0]).toMatch(/^NAME\s+CREATED AT$/);
      expect(got.stdout).toContain('httproutes.gateway.networking.k8s.io');
      expect((await k(['wait', '--for=condition=Established', 'crd/httproutes.gateway.networking.k8s.io', '--timeout=10s'])).code).toBe(0);

      const file = path.join(root, 'route.yaml');
      await writeFile(file, JSON.stringify(route('shop', [80, 20])));
      const applied = await k(['apply', '-f', file]);
      expect(applied.stderr).toBe('');
      expect(applied.stdout).toContain('httproute.gateway.networking.k8s.io/shop created');
      await writeFile(file, JSON.stringify(route('shop', [20, 80])));
      expect((await k(['apply', '--server-side', '--force-conflicts', '-f', file])).stdout).toContain('httproute.gateway.networking.k8s.io/shop serverside-applied');
      expect(httpRouteBackends(fresh, 'default', 'shop')?.[0]?.map((b) => b.weight)).toEqual([20, 80]);

      const listed = await k(['get', 'httproutes']);
      expect(listed.stderr).toBe('');
      expect(listed.stdout.split('\n')[0]).toMatch(/^NAME\s+HOSTNAMES\s+AGE$/);
      expect(listed.stdout).toMatch(/^shop\s+\["shop\.example\.com"\]\s+\S+$/m);
      expect((await k(['get', 'gateway-api'])).code).toBe(0);

      const deleted = await k(['delete', '-f', file]);
      expect(deleted.stdout).toContain('httproute.gateway.networking.k8s.io "shop" deleted');
      expect(httpRouteBackends(fresh, 'default', 'shop')).toBeUndefined();
      expect((await k(['delete', 'crd', 'httproutes.gateway.networking.k8s.io'])).code).toBe(0);
      const gone = await k(['get', 'httproutes']);
      expect(gone.code).not.toBe(0);
      // kubectl's discovery cache still names the kind: the list's 404 is what it reports, as on a real cluster.
      expect(gone.stderr).toMatch(/doesn't have a resource type "httproutes"|Unable to list "gateway.networking.k8s.io\/v1, Resource=httproutes": the server could not find the requested resource/);
    } finally {
      await fresh.close();
    }
  });

  it('parses the fixture into the two CRDs', async () => {
    expect((await gatewayApiCrds()).map((c) => c.metadata?.name)).toEqual(['gateways.gateway.networking.k8s.io', 'httproutes.gateway.networking.k8s.io']);
  });
});
