// RBAC rule matching and the exact wording of refusals (responsewriters.forbiddenMessage and
// apierrors.NewForbidden in upstream Kubernetes).
import { describe, expect, it } from 'vitest';
import { forbidden, ruleAllows, unauthorized, type Attributes, type PolicyRule } from '../../src/sim/auth/policy.ts';

const resource = (a: Partial<Attributes>): Attributes => ({
  isResourceRequest: true,
  verb: 'get',
  apiGroup: '',
  namespace: 'shop',
  resource: 'pods',
  subresource: '',
  name: '',
  path: '',
  ...a,
});
const nonResource = (path: string, verb = 'get'): Attributes => ({ isResourceRequest: false, verb, path, apiGroup: '', namespace: '', resource: '', subresource: '', name: '' });

const rule = (r: PolicyRule): PolicyRule => r;

describe('ruleAllows', () => {
  const cases: [string, PolicyRule, Attributes, boolean][] = [
    ['exact verb, group and resource', rule({ apiGroups: [''], resources: ['pods'], verbs: ['get'] }), resource({}), true],
    ['another verb', rule({ apiGroups: [''], resources: ['pods'], verbs: ['list'] }), resource({}), false],
    ['another group', rule({ apiGroups: ['apps'], resources: ['pods'], verbs: ['get'] }), resource({}), false],
    ['wildcards everywhere', rule({ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }), resource({ apiGroup: 'apps', resource: 'deployments', verb: 'delete' }), true],
    ['the resource does not cover its subresource', rule({ apiGroups: ['apps'], resources: ['deployments'], verbs: ['patch'] }), resource({ apiGroup: 'apps', resource: 'deployments', subresource: 'scale', verb: 'patch' }), false],
    ['resource/subresource', rule({ apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['patch'] }), resource({ apiGroup: 'apps', resource: 'deployments', subresource: 'scale', verb: 'patch' }), true],
    ['*/subresource', rule({ apiGroups: ['apps'], resources: ['*/scale'], verbs: ['patch'] }), resource({ apiGroup: 'apps', resource: 'statefulsets', subresource: 'scale', verb: 'patch' }), true],
    ['*/subresource is not the main resource', rule({ apiGroups: ['apps'], resources: ['*/scale'], verbs: ['patch'] }), resource({ apiGroup: 'apps', resource: 'statefulsets', verb: 'patch' }), false],
    ['resourceNames allow the named object', rule({ apiGroups: [''], resources: ['configmaps'], resourceNames: ['cfg'], verbs: ['get'] }), resource({ resource: 'configmaps', name: 'cfg' }), true],
    ['resourceNames refuse other names', rule({ apiGroups: [''], resources: ['configmaps'], resourceNames: ['cfg'], verbs: ['get'] }), resource({ resource: 'configmaps', name: 'other' }), false],
    ['resourceNames refuse an unnamed list', rule({ apiGroups: [''], resources: ['configmaps'], resourceNames: ['cfg'], verbs: ['list'] }), resource({ resource: 'configmaps', verb: 'list' }), false],
    ['a resource rule never allows a path', rule({ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }), nonResource('/version'), false],
    ['exact non-resource URL', rule({ nonResourceURLs: ['/version'], verbs: ['get'] }), nonResource('/version'), true],
    ['non-resource URL prefix with *', rule({ nonResourceURLs: ['/apis/*'], verbs: ['get'] }), nonResource('/apis/apps/v1'), true],
    ['the prefix does not cover its parent', rule({ nonResourceURLs: ['/apis/*'], verbs: ['get'] }), nonResource('/apis'), false],
    ['non-resource verb is the HTTP method', rule({ nonResourceURLs: ['/healthz'], verbs: ['get'] }), nonResource('/healthz', 'post'), false],
    ['a URL rule never allows a resource', rule({ nonResourceURLs: ['*'], verbs: ['*'] }), resource({}), false],
  ];
  it.each(cases)('%s', (_name, r, attrs, allowed) => {
    expect(ruleAllows(attrs, r)).toBe(allowed);
  });
});

describe('forbidden', () => {
  const sa = { name: 'system:serviceaccount:shop:deployer', groups: ['system:serviceaccounts', 'system:authenticated'] };
  const cases: [string, Attributes, string, string, Record<string, string>][] = [
    [
      'a namespaced collection',
      resource({ verb: 'list', resource: 'pods' }),
      '',
      'pods is forbidden: User "system:serviceaccount:shop:deployer" cannot list resource "pods" in API group "" in the namespace "shop"',
      { kind: 'pods' },
    ],
    [
      'a named object in a group',
      resource({ apiGroup: 'apps', resource: 'deployments', name: 'web' }),
      '',
      'deployments.apps "web" is forbidden: User "system:serviceaccount:shop:deployer" cannot get resource "deployments" in API group "apps" in the namespace "shop"',
      { kind: 'deployments', group: 'apps', name: 'web' },
    ],
    [
      'a subresource',
      resource({ apiGroup: 'apps', resource: 'deployments', subresource: 'scale', name: 'web', verb: 'patch' }),
      '',
      'deployments.apps "web" is forbidden: User "system:serviceaccount:shop:deployer" cannot patch resource "deployments/scale" in API group "apps" in the namespace "shop"',
      { kind: 'deployments', group: 'apps', name: 'web' },
    ],
    [
      'cluster scope',
      resource({ namespace: '', verb: 'list', apiGroup: 'rbac.authorization.k8s.io', resource: 'clusterroles' }),
      '',
      'clusterroles.rbac.authorization.k8s.io is forbidden: User "system:serviceaccount:shop:deployer" cannot list resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope',
      { kind: 'clusterroles', group: 'rbac.authorization.k8s.io' },
    ],
    [
      'a non-resource path',
      nonResource('/metrics'),
      '',
      'forbidden: User "system:serviceaccount:shop:deployer" cannot get path "/metrics"',
      {},
    ],
    [
      'with RBAC resolution errors',
      resource({ verb: 'list', resource: 'secrets' }),
      'RBAC: role.rbac.authorization.k8s.io "gone" not found',
      'secrets is forbidden: User "system:serviceaccount:shop:deployer" cannot list resource "secrets" in API group "" in the namespace "shop": RBAC: role.rbac.authorization.k8s.io "gone" not found',
      { kind: 'secrets' },
    ],
  ];
  it.each(cases)('%s', (_name, attrs, reason, message, details) => {
    const error = forbidden(sa, attrs, reason);
    expect(error.status).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Forbidden', details, code: 403 });
  });

  it('escapes HTML in what the user sent', () => {
    expect(forbidden(sa, nonResource('/<script>')).status.message).toBe('forbidden: User "system:serviceaccount:shop:deployer" cannot get path "/&lt;script&gt;"');
  });

  it('401 is the API server’s bare Unauthorized', () => {
    expect(unauthorized().status).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
  });
});
