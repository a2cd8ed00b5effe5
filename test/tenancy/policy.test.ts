// Project policies, pure: glob patterns, placement (namespace, ops repo, manifest path) and the
// check of rendered objects, table-driven.
import { describe, expect, it } from 'vitest';
import { checkObjects, scopeOf, type CheckedObject } from '../../src/tenancy/checkObjects.ts';
import { admitted, globMatches } from '../../src/tenancy/patterns.ts';
import { checkPlacement, defaultPolicy, resolvePolicy, type Policy, type ProjectRow } from '../../src/tenancy/policy.ts';

describe('globs', () => {
  it.each([
    ['shop-*', 'shop-prod', true],
    ['shop-*', 'shop', false],
    ['shop-*', 'shopping-prod', false],
    ['shop-?', 'shop-a', true],
    ['shop-?', 'shop-ab', false],
    ['shop/**', 'shop', true],
    ['shop/**', 'shop/a/b.yaml', true],
    ['shop/**', 'shopping/a', false],
    ['shop/*', 'shop/a', true],
    ['shop/*', 'shop/a/b', false],
    ['*', 'a/b', false],
    ['**', 'a/b', true],
    ['a.b', 'axb', false],
    ['(x)', '(x)', true],
  ])('%s matches %s: %s', (glob, value, expected) => {
    expect(globMatches(glob, value)).toBe(expected);
  });

  it('denies with ! whatever else allows, and lets a guard veto wildcards but not literals', () => {
    expect(admitted(['shop-*', '!shop-secret'], 'shop-prod')).toBe(true);
    expect(admitted(['shop-*', '!shop-secret'], 'shop-secret')).toBe(false);
    expect(admitted(['!shop-secret', 'shop-*'], 'shop-secret')).toBe(false);
    expect(admitted([], 'x')).toBe(false);
    const notKube = (v: string) => !v.startsWith('kube-');
    expect(admitted(['kube-*'], 'kube-system', notKube)).toBe(false);
    expect(admitted(['kube-system'], 'kube-system', notKube)).toBe(true);
    expect(admitted(['*', 'kube-system'], 'kube-system', notKube)).toBe(true);
  });
});

describe('policies', () => {
  const row = (over: Partial<ProjectRow>): ProjectRow => ({
    name: 'shop', description: '', namespaces: null, source_repos: null, manifest_paths: null,
    namespace_resource_whitelist: null, namespace_resource_blacklist: null, cluster_resource_whitelist: null,
    allow_adoption: false, created_at: '', updated_at: '', ...over,
  });

  it('a project without a row, and every null column, take the documented defaults', () => {
    expect(defaultPolicy('shop')).toEqual({
      project: 'shop',
      namespaces: ['shop-*'],
      sourceRepos: ['*'],
      manifestPaths: ['shop', 'shop/**'],
      namespaceResourceWhitelist: [],
      namespaceResourceBlacklist: ['rbac.authorization.k8s.io/*'],
      clusterResourceWhitelist: [],
      allowAdoption: false,
      source: 'default',
    });
    expect(resolvePolicy('shop', null)).toEqual(defaultPolicy('shop'));
    expect(resolvePolicy('shop', row({}))).toEqual({ ...defaultPolicy('shop'), source: 'row' });
    expect(resolvePolicy('shop', row({ namespaces: ['shop'], namespace_resource_blacklist: [] }))).toMatchObject({ namespaces: ['shop'], namespaceResourceBlacklist: [] });
  });

  const shop = defaultPolicy('shop');
  it.each([
    ['the default namespace', { namespace: 'shop-prod', opsRepo: null, manifestPath: null }, []],
    ['the bare project namespace', { namespace: 'shop', opsRepo: null, manifestPath: null }, ['namespace']],
    ["another project's namespace", { namespace: 'blog-prod', opsRepo: null, manifestPath: null }, ['namespace']],
    ['kube-system', { namespace: 'kube-system', opsRepo: null, manifestPath: null }, ['namespace']],
    ['any ops repo with the own folder', { namespace: 'shop-prod', opsRepo: 'platform', manifestPath: 'shop/web' }, []],
    ['the default manifest path (the project name)', { namespace: 'shop-prod', opsRepo: 'platform', manifestPath: null }, []],
    ["another project's manifest path", { namespace: 'shop-prod', opsRepo: 'platform', manifestPath: 'blog' }, ['manifest_path']],
    ['a prefix look-alike folder', { namespace: 'shop-prod', opsRepo: 'platform', manifestPath: 'shopping/web' }, ['manifest_path']],
    ['all three wrong', { namespace: 'blog-prod', opsRepo: 'platform', manifestPath: 'blog' }, ['namespace', 'manifest_path']],
  ])('default policy, %s → %j', (_label, target, fields) => {
    expect(checkPlacement(shop, target).map((v) => v.field)).toEqual(fields);
  });

  it('a kube project does not own kube-system through its default kube-*', () => {
    const kube = defaultPolicy('kube');
    const [violation] = checkPlacement(kube, { namespace: 'kube-system', opsRepo: null, manifestPath: null });
    expect(violation?.message).toBe(
      'Namespace kube-system is outside the policy: project kube may deploy only into namespaces matching kube-* (a wildcard never matches kube-system; an admin must name it literally).',
    );
    expect(checkPlacement(kube, { namespace: 'kube-apps', opsRepo: null, manifestPath: null })).toHaveLength(1);
    expect(checkPlacement({ ...kube, namespaces: ['kube-system'] }, { namespace: 'kube-system', opsRepo: null, manifestPath: null })).toEqual([]);
  });

  it('names the rule and the patterns in each placement sentence', () => {
    const policy: Policy = { ...shop, sourceRepos: ['shop-ops'] };
    expect(checkPlacement(policy, { namespace: 'shop-prod', opsRepo: 'blog-ops', manifestPath: 'shop' })).toEqual([
      { field: 'ops_repo', rule: 'source_repos', message: 'Ops repo blog-ops is outside the policy: project shop may use only ops repos matching shop-ops.' },
    ]);
  });
});

describe('checkObjects', () => {
  const object = (apiVersion: string, kind: string, name: string, extra: Partial<CheckedObject['metadata']> = {}): CheckedObject => ({
    apiVersion, kind, metadata: { name, ...extra },
  });
  const shop = defaultPolicy('shop');
  const open: Policy = { ...shop, clusterResourceWhitelist: ['core/Namespace'], namespaceResourceBlacklist: [], allowAdoption: true };

  it.each([
    ['a Deployment and a Service in the default namespace', shop, [object('apps/v1', 'Deployment', 'web'), object('v1', 'Service', 'web')], []],
    ['a ConfigMap naming its own allowed namespace', shop, [object('v1', 'ConfigMap', 'c', { namespace: 'shop-qa' })], []],
    ['a ClusterRoleBinding', shop, [object('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'pwn')], [
      'ClusterRoleBinding pwn is cluster-scoped; project shop may not create cluster-scoped objects',
    ]],
    ['a ConfigMap in kube-system', shop, [object('v1', 'ConfigMap', 'x', { namespace: 'kube-system' })], [
      'ConfigMap kube-system/x is in namespace kube-system; project shop may deploy only into namespaces matching shop-* (a wildcard never matches kube-system; an admin must name it literally)',
    ]],
    ["a Deployment in another project's namespace", shop, [object('apps/v1', 'Deployment', 'web', { namespace: 'blog-prod' })], [
      'Deployment blog-prod/web is in namespace blog-prod; project shop may deploy only into namespaces matching shop-*',
    ]],
    ['a Role (RBAC is blacklisted by default)', shop, [object('rbac.authorization.k8s.io/v1', 'Role', 'r')], [
      'Role shop-prod/r is refused; project shop may not create Role (rbac.authorization.k8s.io) objects (namespace_resource_blacklist: rbac.authorization.k8s.io/*)',
    ]],
    ['a validating webhook', shop, [object('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration', 'hook')], [
      'ValidatingWebhookConfiguration hook is cluster-scoped; project shop may not create cluster-scoped objects',
    ]],
    ['a Namespace object (keelson creates the deployment namespace itself)', shop, [object('v1', 'Namespace', 'shop-prod')], [
      'Namespace shop-prod is cluster-scoped; project shop may not create cluster-scoped objects',
    ]],
    ['a whitelisted Namespace', open, [object('v1', 'Namespace', 'shop-prod')], []],
    ['a cluster kind outside a non-empty whitelist', open, [object('rbac.authorization.k8s.io/v1', 'ClusterRole', 'admin')], [
      'ClusterRole admin is cluster-scoped; project shop may create only these cluster-scoped kinds: core/Namespace',
    ]],
    ['a custom resource by default', shop, [object('cert-manager.io/v1', 'Certificate', 'tls')], [
      'Certificate shop-prod/tls is refused; keelson does not know whether Certificate (cert-manager.io) is cluster-scoped, so it must be allowed as if it were, and project shop may not create cluster-scoped objects (an admin may add cert-manager.io/Certificate to cluster_resource_whitelist)',
    ]],
    ['an allowed custom resource', { ...shop, clusterResourceWhitelist: ['cert-manager.io/*'] }, [object('cert-manager.io/v1', 'Certificate', 'tls')], []],
    ['a custom resource outside the namespaced whitelist', { ...shop, clusterResourceWhitelist: ['*/*'], namespaceResourceWhitelist: ['apps/*'] }, [object('example.com/v1', 'Widget', 'w')], [
      'Widget shop-prod/w is refused; project shop may create only these namespaced kinds: apps/*',
    ]],
    ['an adoption without allow_adoption', shop, [object('v1', 'ConfigMap', 'c', { annotations: { 'keelson.dev/adopt': 'true' } })], [
      'ConfigMap shop-prod/c asks to adopt an existing object (keelson.dev/adopt: "true"); project shop may not adopt objects (allow_adoption is off)',
    ]],
    ['an adoption with allow_adoption', open, [object('v1', 'ConfigMap', 'c', { annotations: { 'keelson.dev/adopt': 'true' } })], []],
  ])('%s', (_label, policy, objects, messages) => {
    expect(checkObjects(objects, policy, { namespace: 'shop-prod' }).map((v) => v.message)).toEqual(messages);
  });

  it('reports every violation, not only the first, and each message is a sentence fragment naming the object', () => {
    const violations = checkObjects(
      [object('v1', 'ConfigMap', 'ok'), object('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', 'a'), object('v1', 'Secret', 's', { namespace: 'default' })],
      shop,
      { namespace: 'shop-prod' },
    );
    expect(violations.map((v) => [v.object, v.rule])).toEqual([
      ['ClusterRoleBinding a', 'cluster_resource_whitelist'],
      ['Secret default/s', 'namespaces'],
    ]);
  });

  it.each([
    ['v1', 'Namespace', 'cluster'],
    ['v1', 'ConfigMap', 'namespaced'],
    ['apps/v1', 'Deployment', 'namespaced'],
    ['rbac.authorization.k8s.io/v1', 'ClusterRole', 'cluster'],
    ['apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'cluster'],
    ['example.com/v1', 'Widget', 'unknown'],
    ['v1', 'Widget', 'unknown'],
  ])('scope of %s %s is %s', (apiVersion, kind, scope) => {
    expect(scopeOf(apiVersion, kind)).toBe(scope);
  });
});
