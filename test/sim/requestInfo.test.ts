// How a request maps to Kubernetes' request attributes (upstream RequestInfoFactory's rules).
import { describe, expect, it } from 'vitest';
import { requestInfo } from '../../src/sim/requestInfo.ts';

const cases: [string, string, Partial<ReturnType<typeof requestInfo>>][] = [
  ['GET', '/version', { isResourceRequest: false, verb: 'get', path: '/version', resource: '' }],
  ['GET', '/api', { isResourceRequest: false, verb: 'get' }],
  ['GET', '/api/v1', { isResourceRequest: false, verb: 'get' }],
  ['GET', '/apis/apps/v1', { isResourceRequest: false, verb: 'get', path: '/apis/apps/v1' }],
  ['POST', '/openapi/v3', { isResourceRequest: false, verb: 'post' }],
  ['GET', '/api/v1/pods', { verb: 'list', apiGroup: '', resource: 'pods', namespace: '', name: '' }],
  ['GET', '/api/v1/namespaces/shop/pods', { verb: 'list', resource: 'pods', namespace: 'shop' }],
  ['GET', '/api/v1/namespaces/shop/pods?watch=true', { verb: 'watch', resource: 'pods', namespace: 'shop' }],
  ['GET', '/api/v1/namespaces/shop/pods?watch=1', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/shop/pods?watch=false', { verb: 'list' }],
  ['GET', '/api/v1/watch/namespaces/shop/pods/web', { verb: 'watch', resource: 'pods', name: 'web', namespace: 'shop' }],
  ['GET', '/apis/apps/v1/namespaces/shop/deployments/web', { verb: 'get', apiGroup: 'apps', apiVersion: 'v1', resource: 'deployments', name: 'web' }],
  ['HEAD', '/apis/apps/v1/namespaces/shop/deployments/web', { verb: 'get' }],
  ['PATCH', '/apis/apps/v1/namespaces/shop/deployments/web/scale', { verb: 'patch', resource: 'deployments', subresource: 'scale', name: 'web' }],
  ['PUT', '/apis/apps/v1/namespaces/shop/deployments/web/status', { verb: 'update', subresource: 'status' }],
  ['POST', '/apis/apps/v1/namespaces/shop/deployments', { verb: 'create', name: '' }],
  ['DELETE', '/apis/apps/v1/namespaces/shop/deployments/web', { verb: 'delete', name: 'web' }],
  ['DELETE', '/apis/apps/v1/namespaces/shop/deployments', { verb: 'deletecollection', name: '' }],
  ['POST', '/api/v1/namespaces/shop/serviceaccounts/deployer/token', { verb: 'create', resource: 'serviceaccounts', subresource: 'token', name: 'deployer' }],
  // The namespace object itself: namespace and name are both the namespace's name.
  ['GET', '/api/v1/namespaces/shop', { verb: 'get', resource: 'namespaces', name: 'shop', namespace: 'shop' }],
  ['PUT', '/api/v1/namespaces/shop/status', { verb: 'update', resource: 'namespaces', name: 'shop', subresource: 'status' }],
  ['GET', '/api/v1/namespaces', { verb: 'list', resource: 'namespaces', namespace: '' }],
  ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/system:discovery', { apiGroup: 'rbac.authorization.k8s.io', resource: 'clusterroles', name: 'system:discovery' }],
  // A list pinned to one name carries it, so RBAC resourceNames can allow it.
  ['GET', '/apis/apps/v1/namespaces/shop/deployments?fieldSelector=metadata.name%3Dweb', { verb: 'list', name: 'web' }],
  ['GET', '/apis/apps/v1/namespaces/shop/deployments?watch=true&fieldSelector=metadata.name%3D%3Dweb', { verb: 'watch', name: 'web' }],
  ['GET', '/apis/apps/v1/namespaces/shop/deployments?fieldSelector=metadata.name!%3Dweb', { verb: 'list', name: '' }],
];

describe('requestInfo', () => {
  it.each(cases)('%s %s', (method, target, expected) => {
    const info = requestInfo(method, new URL(target, 'http://sim'));
    expect(info).toMatchObject({ isResourceRequest: true, ...expected });
  });
});
