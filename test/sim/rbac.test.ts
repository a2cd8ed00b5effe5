// Authentication and RBAC as a client meets them: ServiceAccount tokens from the TokenRequest API,
// Roles and bindings evaluated on every request, the real 401/403 Status, access reviews.
import {
  ApiException,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { typeOf } from '../../src/sim/resources.ts';

let sim: Simulator;
let admin: KubernetesObjectApi;

type Obj = KubernetesObject & Record<string, unknown>;

const apply = (objects: Obj[]) =>
  Promise.all(objects.map((o) => admin.patch(o, undefined, undefined, 'test', true, PatchStrategy.ServerSideApply)));

const namespace = (name: string): Obj => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
const serviceAccount = (ns: string, name: string): Obj => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
const role = (ns: string, name: string, rules: unknown[]): Obj => ({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name, namespace: ns }, rules });
const clusterRole = (name: string, rules: unknown[]): Obj => ({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules });
const roleBinding = (ns: string, name: string, ref: { kind: string; name: string }, subjects: unknown[]): Obj => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'RoleBinding',
  metadata: { name, namespace: ns },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', ...ref },
  subjects,
});

function clientsFor(token: string) {
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfigYaml({ token }));
  return { core: kc.makeApiClient(CoreV1Api), authz: kc.makeApiClient(AuthorizationV1Api), objects: KubernetesObjectApi.makeApiClient(kc) };
}

/** The Status a refused call answered with. */
async function refusal(call: Promise<unknown>): Promise<{ code: number; message: string; reason: string; details?: unknown }> {
  try {
    await call;
  } catch (error) {
    // client-node keeps no body for a 401, only its code.
    if (error instanceof ApiException) return { code: error.code, ...(typeof error.body === 'string' ? JSON.parse(error.body) : {}) };
    throw error;
  }
  throw new Error('the call succeeded; it should have been refused');
}

async function tokenFor(ns: string, name: string, spec: Record<string, unknown> = {}): Promise<string> {
  const { core } = clientsFor(sim.auth.adminToken);
  const answer = await core.createNamespacedServiceAccountToken({ name, namespace: ns, body: { spec } });
  const token = answer.status?.token;
  if (!token) throw new Error(`no token in the TokenRequest answer: ${JSON.stringify(answer)}`);
  return token;
}

beforeAll(async () => {
  sim = await startSimulator({ rbac: true });
  const kc = new KubeConfig();
  kc.loadFromString(sim.kubeconfigYaml());
  admin = KubernetesObjectApi.makeApiClient(kc);
  await apply([namespace('shop'), namespace('other')]);
  await apply([serviceAccount('shop', 'deployer'), serviceAccount('shop', 'gone'), serviceAccount('other', 'deployer')]);
  await apply([
    role('shop', 'config-reader', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] }]),
    clusterRole('deployment-scaler', [
      { apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['web'], verbs: ['get', 'list'] },
      { apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['patch'] },
    ]),
  ]);
  await apply([
    roleBinding('shop', 'deployer-reads-config', { kind: 'Role', name: 'config-reader' }, [{ kind: 'ServiceAccount', name: 'deployer' }]),
    roleBinding('shop', 'scalers', { kind: 'ClusterRole', name: 'deployment-scaler' }, [{ kind: 'Group', name: 'system:serviceaccounts:shop' }]),
  ]);
});

afterAll(async () => {
  await sim?.close();
});

describe('authentication with RBAC on', () => {
  it('refuses an unknown token with the API server’s 401', async () => {
    const res = await fetch(`${sim.url}/api/v1/namespaces`, { headers: { authorization: 'Bearer not-a-token' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    expect(sim.requests.records({ code: 401 }).at(-1)).toMatchObject({ user: '', verb: 'list', resource: 'namespaces' });
  });

  it('lets anonymous callers read /version and the health endpoints, nothing else', async () => {
    expect((await fetch(`${sim.url}/version`)).status).toBe(200);
    expect((await fetch(`${sim.url}/healthz`)).status).toBe(200);
    const api = await fetch(`${sim.url}/api`);
    expect(api.status).toBe(403);
    expect((await api.json()).message).toBe('forbidden: User "system:anonymous" cannot get path "/api"');
  });

  it('keeps the kubeconfig’s admin token almighty', async () => {
    const { core } = clientsFor(sim.auth.adminToken);
    expect((await core.listNamespace()).items.map((n) => n.metadata?.name)).toContain('shop');
  });

  it('mints ServiceAccount tokens that authenticate as the account, with its groups', async () => {
    const token = await tokenFor('shop', 'deployer');
    const res = await fetch(`${sim.url}/apis/authentication.k8s.io/v1/selfsubjectreviews`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }),
    });
    expect(res.status).toBe(201);
    expect((await res.json()).status.userInfo).toEqual({
      username: 'system:serviceaccount:shop:deployer',
      uid: sim.store.get(typeOf('ServiceAccount'), 'shop', 'deployer')!.metadata.uid,
      groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
    });
    const { authz } = clientsFor(token);
    const review = await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { namespace: 'shop', verb: 'list', resource: 'configmaps' } } } });
    expect(review.status).toEqual({ allowed: true, reason: 'RBAC: allowed by RoleBinding "deployer-reads-config/shop" of Role "config-reader" to ServiceAccount "deployer/shop"' });
    const denied = await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { namespace: 'shop', verb: 'delete', resource: 'configmaps' } } } });
    expect(denied.status).toEqual({ allowed: false });
  });

  it('revokes a token when its ServiceAccount is deleted, and refuses tokens for another audience', async () => {
    const token = await tokenFor('shop', 'gone');
    const { core } = clientsFor(token);
    await core.listNamespacedConfigMap({ namespace: 'shop' }).catch(() => undefined); // authenticated (refused or not)
    expect(sim.requests.records({ user: 'system:serviceaccount:shop:gone' }).length).toBeGreaterThan(0);
    await clientsFor(sim.auth.adminToken).core.deleteNamespacedServiceAccount({ name: 'gone', namespace: 'shop' });
    expect((await refusal(core.listNamespacedConfigMap({ namespace: 'shop' }))).code).toBe(401);

    const foreign = clientsFor(await tokenFor('shop', 'deployer', { audiences: ['https://vault.example'] }));
    expect((await refusal(foreign.core.listNamespacedConfigMap({ namespace: 'shop' }))).code).toBe(401);
  });

  it('validates TokenRequests as the API does', async () => {
    const { core } = clientsFor(sim.auth.adminToken);
    const short = await refusal(core.createNamespacedServiceAccountToken({ name: 'deployer', namespace: 'shop', body: { spec: { audiences: [], expirationSeconds: 60 } } }));
    expect(short).toMatchObject({ code: 422, reason: 'Invalid', message: 'TokenRequest.authentication.k8s.io "deployer" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes' });
    const missing = await refusal(core.createNamespacedServiceAccountToken({ name: 'nobody', namespace: 'shop', body: { spec: { audiences: [] } } }));
    expect(missing).toMatchObject({ code: 404, message: 'serviceaccounts "nobody" not found' });
  });
});

describe('RBAC evaluation', () => {
  it('allows what a namespaced Role grants, in its namespace only, and refuses the rest with the real 403', async () => {
    const shop = clientsFor(await tokenFor('shop', 'deployer'));
    await clientsFor(sim.auth.adminToken).core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'cfg' } } });
    expect((await shop.core.listNamespacedConfigMap({ namespace: 'shop' })).items.map((c) => c.metadata?.name)).toEqual(['cfg']);
    expect(await refusal(shop.core.listNamespacedConfigMap({ namespace: 'other' }))).toEqual({
      code: 403,
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      reason: 'Forbidden',
      message: 'configmaps is forbidden: User "system:serviceaccount:shop:deployer" cannot list resource "configmaps" in API group "" in the namespace "other"',
      details: { kind: 'configmaps' },
    });
    expect((await refusal(shop.core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'mine' } } }))).message).toBe(
      'configmaps is forbidden: User "system:serviceaccount:shop:deployer" cannot create resource "configmaps" in API group "" in the namespace "shop"',
    );
    expect((await refusal(shop.core.listNamespace())).message).toBe(
      'namespaces is forbidden: User "system:serviceaccount:shop:deployer" cannot list resource "namespaces" in API group "" at the cluster scope',
    );
  });

  it('binds a ClusterRole into one namespace through a Group subject, honouring resourceNames and subresources', async () => {
    const token = await tokenFor('shop', 'deployer');
    const call = (path: string, init: RequestInit = {}) => fetch(`${sim.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } });
    const named = await call('/apis/apps/v1/namespaces/shop/deployments/web');
    expect(named.status).toBe(404); // allowed by resourceNames; there is no such Deployment
    // A list pinned to the allowed name passes; an open list does not.
    expect((await call('/apis/apps/v1/namespaces/shop/deployments?fieldSelector=metadata.name%3Dweb')).status).toBe(200);
    expect((await call('/apis/apps/v1/namespaces/shop/deployments')).status).toBe(403);
    const other = await call('/apis/apps/v1/namespaces/shop/deployments/api');
    expect((await other.json()).message).toBe(
      'deployments.apps "api" is forbidden: User "system:serviceaccount:shop:deployer" cannot get resource "deployments" in API group "apps" in the namespace "shop"',
    );
    const scale = await call('/apis/apps/v1/namespaces/shop/deployments/web/scale', { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: '{"spec":{"replicas":2}}' });
    expect(scale.status).toBe(404); // deployments/scale is granted
    const status = await call('/apis/apps/v1/namespaces/shop/deployments/web/status', { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: '{}' });
    expect((await status.json()).message).toBe(
      'deployments.apps "web" is forbidden: User "system:serviceaccount:shop:deployer" cannot patch resource "deployments/status" in API group "apps" in the namespace "shop"',
    );
    // The same ServiceAccount name in another namespace is another user, outside the group.
    const stranger = await fetch(`${sim.url}/apis/apps/v1/namespaces/shop/deployments/web`, { headers: { authorization: `Bearer ${await tokenFor('other', 'deployer')}` } });
    expect(stranger.status).toBe(403);
  });

  it('appends resolution errors of a binding to a missing role to the refusal', async () => {
    await apply([roleBinding('shop', 'dangling', { kind: 'Role', name: 'not-there' }, [{ kind: 'ServiceAccount', name: 'deployer' }])]);
    try {
      const { core } = clientsFor(await tokenFor('shop', 'deployer'));
      expect((await refusal(core.listNamespacedSecret({ namespace: 'shop' }))).message).toBe(
        'secrets is forbidden: User "system:serviceaccount:shop:deployer" cannot list resource "secrets" in API group "" in the namespace "shop": RBAC: role.rbac.authorization.k8s.io "not-there" not found',
      );
    } finally {
      await admin.delete(roleBinding('shop', 'dangling', { kind: 'Role', name: 'not-there' }, []));
    }
  });

  it('follows changes to roles at once, and static tokens’ groups', async () => {
    sim.auth.addToken('ci-robot-token', 'ci-robot', ['ci']);
    const ci = clientsFor('ci-robot-token');
    expect((await refusal(ci.core.listNamespacedPod({ namespace: 'other' }))).message).toContain('User "ci-robot" cannot list resource "pods"');
    await apply([
      clusterRole('pod-lister', [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }]),
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'ci-lists-pods' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'pod-lister' }, subjects: [{ kind: 'Group', name: 'ci' }] },
    ]);
    expect((await ci.core.listNamespacedPod({ namespace: 'other' })).items).toEqual([]);
    const rules = await ci.authz.createSelfSubjectRulesReview({ body: { spec: { namespace: 'other' } } });
    expect(rules.status?.resourceRules).toContainEqual({ verbs: ['list'], apiGroups: [''], resources: ['pods'] });
    expect(rules.status?.incomplete).toBe(false);
    await apply([clusterRole('pod-lister', [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }])]);
    expect((await refusal(ci.core.listNamespacedPod({ namespace: 'other' }))).code).toBe(403);
  });

  it('validates roles and bindings with the API’s wording, and roleRef cannot change', async () => {
    const namespacedUrlRule = await refusal(apply([role('shop', 'bad', [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }])]));
    expect(namespacedUrlRule.message).toBe('Role.rbac.authorization.k8s.io "bad" is invalid: rules[0].nonResourceURLs: Invalid value: []string{"/metrics"}: namespaced rules cannot apply to non-resource URLs');
    const moved = await refusal(apply([roleBinding('shop', 'deployer-reads-config', { kind: 'ClusterRole', name: 'deployment-scaler' }, [{ kind: 'ServiceAccount', name: 'deployer' }])]));
    expect(moved.message).toBe(
      'RoleBinding.rbac.authorization.k8s.io "deployer-reads-config" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"deployment-scaler"}: cannot change roleRef',
    );
  });
});

describe('with RBAC off', () => {
  it('accepts any token as "anonymous" and allows everything, as before', async () => {
    const open = await startSimulator();
    try {
      const res = await fetch(`${open.url}/api/v1/namespaces`, { headers: { authorization: 'Bearer made-up' } });
      expect(res.status).toBe(200);
      expect(open.requests.records().at(-1)).toMatchObject({ user: 'anonymous', verb: 'list', code: 200 });
      expect(open.auth.rbac).toBe(false);
    } finally {
      await open.close();
    }
  });
});
