// The request kinds the server answers without storing anything: SelfSubjectAccessReview
// (`kubectl auth can-i`), SelfSubjectRulesReview (`kubectl auth can-i --list`), SelfSubjectReview
// (`kubectl auth whoami`) and the ServiceAccount `token` subresource, TokenRequest
// (`kubectl create token`). Shapes and validation wording follow the real API.
import { isObject } from '../ssa.ts';
import { invalid, notFound } from '../status.ts';
import type { Store } from '../store.ts';
import { typeOf } from '../resources.ts';
import type { Authenticator, UserInfo } from './authenticator.ts';
import type { Attributes, PolicyRule } from './policy.ts';
import type { Decision, RulesResult } from './rbac.ts';

type Json = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export interface Reviewer {
  authorize(user: UserInfo, attrs: Attributes): Decision;
  rulesFor(user: UserInfo, namespace: string): RulesResult;
}

export function selfSubjectAccessReview(body: unknown, user: UserInfo, reviewer: Reviewer): Json {
  const spec = isObject(body) && isObject(body.spec) ? body.spec : {};
  const resource = isObject(spec.resourceAttributes) ? spec.resourceAttributes : undefined;
  const nonResource = isObject(spec.nonResourceAttributes) ? spec.nonResourceAttributes : undefined;
  if (resource && nonResource) {
    throw invalid('SelfSubjectAccessReview', 'authorization.k8s.io', '', [{ field: 'spec.nonResourceAttributes', message: 'Invalid value: "object": cannot be specified in combination with resourceAttributes' }]);
  }
  if (!resource && !nonResource) {
    throw invalid('SelfSubjectAccessReview', 'authorization.k8s.io', '', [{ field: 'spec.resourceAttributes', message: 'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified' }]);
  }
  const attrs: Attributes = resource
    ? {
        isResourceRequest: true,
        verb: str(resource.verb),
        apiGroup: str(resource.group),
        namespace: str(resource.namespace),
        resource: str(resource.resource),
        subresource: str(resource.subresource),
        name: str(resource.name),
        path: '',
      }
    : { isResourceRequest: false, verb: str(nonResource!.verb), path: str(nonResource!.path), apiGroup: '', namespace: '', resource: '', subresource: '', name: '' };
  const decision = reviewer.authorize(user, attrs);
  return {
    kind: 'SelfSubjectAccessReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec,
    status: { allowed: decision.allowed, ...(decision.reason ? { reason: decision.reason } : {}) },
  };
}

const nonEmpty = (key: string, list: readonly string[] | undefined): Json => (list && list.length > 0 ? { [key]: [...list] } : {});

export function selfSubjectRulesReview(body: unknown, user: UserInfo, reviewer: Reviewer): Json {
  const spec = isObject(body) && isObject(body.spec) ? body.spec : {};
  const { rules, errors } = reviewer.rulesFor(user, str(spec.namespace));
  const resourceRules = rules
    .filter((r: PolicyRule) => (r.resources?.length ?? 0) > 0)
    .map((r) => ({ verbs: [...(r.verbs ?? [])], ...nonEmpty('apiGroups', r.apiGroups), ...nonEmpty('resources', r.resources), ...nonEmpty('resourceNames', r.resourceNames) }));
  const nonResourceRules = rules.filter((r) => (r.nonResourceURLs?.length ?? 0) > 0).map((r) => ({ verbs: [...(r.verbs ?? [])], nonResourceURLs: [...r.nonResourceURLs!] }));
  return {
    kind: 'SelfSubjectRulesReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec,
    status: { resourceRules, nonResourceRules, incomplete: false, ...(errors.length > 0 ? { evaluationError: errors[0] } : {}) },
  };
}

export function selfSubjectReview(user: UserInfo, now: string): Json {
  return {
    kind: 'SelfSubjectReview',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { creationTimestamp: now },
    status: { userInfo: { username: user.name, ...(user.uid ? { uid: user.uid } : {}), groups: [...user.groups] } },
  };
}

/** POST …/serviceaccounts/NAME/token: a TokenRequest answered with a freshly minted token. */
export function tokenRequest(store: Store, authenticator: Authenticator, namespace: string, name: string, body: unknown): Json {
  if (!store.get(typeOf('ServiceAccount'), namespace, name)) throw notFound('serviceaccounts', '', name);
  const spec = isObject(body) && isObject(body.spec) ? body.spec : {};
  const seconds = typeof spec.expirationSeconds === 'number' ? spec.expirationSeconds : 3600;
  if (seconds < 600) {
    throw invalid('TokenRequest', 'authentication.k8s.io', name, [{ field: 'spec.expirationSeconds', message: `Invalid value: ${seconds}: may not specify a duration less than 10 minutes` }]);
  }
  if (seconds > 2 ** 32) {
    throw invalid('TokenRequest', 'authentication.k8s.io', name, [{ field: 'spec.expirationSeconds', message: `Invalid value: ${seconds}: may not specify a duration larger than 2^32 seconds` }]);
  }
  const audiences = Array.isArray(spec.audiences) ? spec.audiences.filter((a): a is string => typeof a === 'string') : [];
  const minted = authenticator.mintServiceAccountToken(namespace, name, { expirationSeconds: seconds, audiences });
  return {
    kind: 'TokenRequest',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { name, namespace, creationTimestamp: null },
    spec: { audiences: [...minted.audiences], expirationSeconds: minted.expirationSeconds, boundObjectRef: isObject(spec.boundObjectRef) ? spec.boundObjectRef : null },
    status: { token: minted.token, expirationTimestamp: minted.expirationTimestamp },
  };
}
