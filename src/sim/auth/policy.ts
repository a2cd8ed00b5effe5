// RBAC's pure parts: does a PolicyRule allow a request (evaluation_helpers.go: `*`, exact
// matches, `resource/subresource`, `*/subresource`, resourceNames, nonResourceURLs with a trailing
// `*`), and the Status a refusal answers with (responsewriters.ForbiddenStatusError and
// apierrors.NewForbidden/NewUnauthorized) — wording kept to the letter, since clients and people
// read it. Unit tested table-driven in test/sim/rbacPolicy.test.ts.
import type { RequestInfo } from '../requestInfo.ts';
import { StatusError } from '../status.ts';
import type { UserInfo } from './authenticator.ts';

export interface PolicyRule {
  readonly verbs?: readonly string[];
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

/** What authorization looks at: a request's info, or the attributes of an access review. */
export type Attributes = Pick<RequestInfo, 'isResourceRequest' | 'verb' | 'apiGroup' | 'namespace' | 'resource' | 'subresource' | 'name' | 'path'>;

const has = (list: readonly string[] | undefined, value: string): boolean => !!list && (list.includes('*') || list.includes(value));

function resourceMatches(rule: PolicyRule, combined: string, subresource: string): boolean {
  for (const r of rule.resources ?? []) {
    if (r === '*' || r === combined) return true;
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

function nonResourceURLMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === '*' || u === path) return true;
    if (u.endsWith('*') && path.startsWith(u.replace(/\*+$/, ''))) return true;
  }
  return false;
}

export function ruleAllows(attrs: Attributes, rule: PolicyRule): boolean {
  if (!has(rule.verbs, attrs.verb)) return false;
  if (!attrs.isResourceRequest) return nonResourceURLMatches(rule, attrs.path);
  const combined = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource;
  if (!has(rule.apiGroups, attrs.apiGroup) || !resourceMatches(rule, combined, attrs.subresource)) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || names.includes(attrs.name);
}

function forbiddenMessage(user: UserInfo, attrs: Attributes): string {
  if (!attrs.isResourceRequest) return `User ${JSON.stringify(user.name)} cannot ${attrs.verb} path ${JSON.stringify(attrs.path)}`;
  const resource = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource;
  const scope = attrs.namespace ? `in the namespace ${JSON.stringify(attrs.namespace)}` : 'at the cluster scope';
  return `User ${JSON.stringify(user.name)} cannot ${attrs.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(attrs.apiGroup)} ${scope}`;
}

// The API server escapes these so an error never reads as HTML.
const sanitize = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The 403 a real API server answers when no authorizer allowed the request. */
export function forbidden(user: UserInfo, attrs: Attributes, reason = ''): StatusError {
  const detail = sanitize(forbiddenMessage(user, attrs)) + (reason ? `: ${reason}` : '');
  const resource = attrs.isResourceRequest ? attrs.resource : '';
  const group = attrs.isResourceRequest ? attrs.apiGroup : '';
  const qualified = group ? `${resource}.${group}` : resource;
  let message: string;
  if (!qualified) message = `forbidden: ${detail}`;
  else if (!attrs.name) message = `${qualified} is forbidden: ${detail}`;
  else message = `${qualified} ${JSON.stringify(attrs.name)} is forbidden: ${detail}`;
  // StatusDetails' fields are omitempty in Go: absent, not "".
  const details: { name?: string; group?: string; kind?: string } = {};
  if (attrs.name) details.name = attrs.name;
  if (group) details.group = group;
  if (resource) details.kind = resource;
  return new StatusError(403, 'Forbidden', message, details);
}

/** The 401 for a credential the server does not recognise. */
export function unauthorized(): StatusError {
  return new StatusError(401, 'Unauthorized', 'Unauthorized');
}
