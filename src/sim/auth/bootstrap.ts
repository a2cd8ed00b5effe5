// The RBAC objects every cluster starts with that matter here (rules copied from upstream's
// bootstrap policy, plugin/pkg/auth/authorizer/rbac/bootstrappolicy): cluster-admin for
// `system:masters`; discovery, /version, /healthz and /openapi for every authenticated user;
// self access reviews (`kubectl auth can-i`) for every authenticated user; /version and the health
// endpoints for anonymous callers too. They are ordinary objects: a test can read, change or
// delete them as on a real cluster. The aggregated roles (admin, edit, view) are not seeded.
import { AUTHENTICATED, MASTERS, UNAUTHENTICATED } from './authenticator.ts';
import type { PolicyRule } from './policy.ts';

const RBAC = 'rbac.authorization.k8s.io';
const META = { labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' }, annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' } };

const ROLES: Record<string, PolicyRule[]> = {
  'cluster-admin': [
    { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
    { nonResourceURLs: ['*'], verbs: ['*'] },
  ],
  'system:discovery': [
    { nonResourceURLs: ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'], verbs: ['get'] },
  ],
  'system:basic-user': [
    { apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'], verbs: ['create'] },
    { apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'], verbs: ['create'] },
  ],
  'system:public-info-viewer': [{ nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'], verbs: ['get'] }],
};

const BOUND_GROUPS: Record<string, string[]> = {
  'cluster-admin': [MASTERS],
  'system:discovery': [AUTHENTICATED],
  'system:basic-user': [AUTHENTICATED],
  'system:public-info-viewer': [AUTHENTICATED, UNAUTHENTICATED],
};

export function bootstrapClusterRoles(): Record<string, unknown>[] {
  return Object.entries(ROLES).map(([name, rules]) => ({ apiVersion: `${RBAC}/v1`, kind: 'ClusterRole', metadata: { name, ...META }, rules }));
}

export function bootstrapClusterRoleBindings(): Record<string, unknown>[] {
  return Object.entries(BOUND_GROUPS).map(([name, groups]) => ({
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name, ...META },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name },
    subjects: groups.map((group) => ({ apiGroup: RBAC, kind: 'Group', name: group })),
  }));
}
