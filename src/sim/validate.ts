// The validation a real server does that clients notice (422 Invalid): names, selectors that
// must match the template, containers that need a name and an image, RBAC rules and bindings
// (pkg/apis/rbac/validation: wording kept, so errors read as a real cluster's).
import { toStored } from './conversion.ts';
import { crdProblems, isCrd } from './crd.ts';
import { EVENTS_GROUP, eventProblems } from './eventsV1.ts';
import { pathSegmentNameProblems } from './requestInfo.ts';
import type { ResourceType } from './resources.ts';
import { matchesRequirements, requirementsFromObject, SelectorError, type LabelSelectorObject } from './selectors.ts';
import { deepEqual } from './ssa.ts';
import { invalid, type StatusCause } from './status.ts';
import type { KObject } from './store.ts';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function checkContainers(causes: StatusCause[], containers: unknown, field: string): void {
  if (!Array.isArray(containers) || containers.length === 0) {
    causes.push({ field, reason: 'FieldValueRequired', message: 'Required value' });
    return;
  }
  containers.forEach((c: Record<string, unknown>, i) => {
    if (!c || typeof c.name !== 'string' || !c.name) causes.push({ field: `${field}[${i}].name`, reason: 'FieldValueRequired', message: 'Required value' });
    if (!c || typeof c.image !== 'string' || !c.image) causes.push({ field: `${field}[${i}].image`, reason: 'FieldValueRequired', message: 'Required value' });
  });
}

function checkPodTemplate(causes: StatusCause[], spec: Record<string, unknown> | undefined, prefix: string, needsSelector: boolean): void {
  const template = spec?.template as Record<string, unknown> | undefined;
  const labels = (template?.metadata as { labels?: Record<string, string> } | undefined)?.labels;
  const selector = spec?.selector as LabelSelectorObject | undefined;
  if (needsSelector) {
    if (!selector || (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0)) {
      causes.push({ field: `${prefix}.selector`, reason: 'FieldValueRequired', message: 'Required value' });
    } else {
      try {
        if (!matchesRequirements(labels, requirementsFromObject(selector))) {
          causes.push({
            field: `${prefix}.template.metadata.labels`,
            reason: 'FieldValueInvalid',
            message: `Invalid value: ${JSON.stringify(labels ?? {})}: \`selector\` does not match template \`labels\``,
          });
        }
      } catch (error) {
        if (error instanceof SelectorError) causes.push({ field: `${prefix}.selector`, message: `Invalid value: ${error.message}` });
        else throw error;
      }
    }
  }
  checkContainers(causes, (template?.spec as Record<string, unknown> | undefined)?.containers, `${prefix}.template.spec.containers`);
}

const RBAC_GROUP = 'rbac.authorization.k8s.io';
const RBAC_KINDS = new Set(['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']);

type Rule = { verbs?: unknown[]; apiGroups?: unknown[]; resources?: unknown[]; resourceNames?: unknown[]; nonResourceURLs?: unknown[] };
type Subject = { kind?: string; name?: string; namespace?: string; apiGroup?: string };
type RoleRef = { apiGroup?: string; kind?: string; name?: string };

const len = (a: unknown[] | undefined): number => (Array.isArray(a) ? a.length : 0);
const goList = (a: unknown[] | undefined): string => `[]string{${(a ?? []).map((v) => JSON.stringify(v)).join(', ')}}`;
const unsupported = (value: string | undefined, supported: string[]): string => `Unsupported value: ${JSON.stringify(value ?? '')}: supported values: ${supported.map((v) => JSON.stringify(v)).join(', ')}`;
const goRoleRef = (r: RoleRef | undefined): string => `rbac.RoleRef{APIGroup:${JSON.stringify(r?.apiGroup ?? '')}, Kind:${JSON.stringify(r?.kind ?? '')}, Name:${JSON.stringify(r?.name ?? '')}}`;

function checkRules(causes: StatusCause[], rules: unknown, namespaced: boolean): void {
  if (!Array.isArray(rules)) return;
  (rules as Rule[]).forEach((rule, i) => {
    const at = `rules[${i}]`;
    if (len(rule?.verbs) === 0) causes.push({ field: `${at}.verbs`, reason: 'FieldValueRequired', message: 'Required value: verbs must contain at least one value' });
    if (len(rule?.nonResourceURLs) > 0) {
      if (namespaced) causes.push({ field: `${at}.nonResourceURLs`, message: `Invalid value: ${goList(rule.nonResourceURLs)}: namespaced rules cannot apply to non-resource URLs` });
      if (len(rule.apiGroups) > 0 || len(rule.resources) > 0 || len(rule.resourceNames) > 0) {
        causes.push({ field: `${at}.nonResourceURLs`, message: `Invalid value: ${goList(rule.nonResourceURLs)}: rules cannot apply to both regular resources and non-resource URLs` });
      }
      return;
    }
    if (len(rule?.apiGroups) === 0) causes.push({ field: `${at}.apiGroups`, reason: 'FieldValueRequired', message: 'Required value: resource rules must supply at least one api group' });
    if (len(rule?.resources) === 0) causes.push({ field: `${at}.resources`, reason: 'FieldValueRequired', message: 'Required value: resource rules must supply at least one resource' });
    if (len(rule?.resourceNames) > 0 && len(rule?.resources) > 1) causes.push({ field: `${at}.resourceNames`, reason: 'FieldValueRequired', message: 'Required value: resource names cannot apply to multiple resources' });
  });
}

function checkBinding(causes: StatusCause[], o: KObject, previous: KObject | undefined): void {
  const namespaced = o.kind === 'RoleBinding';
  const ref = o.roleRef as RoleRef | undefined;
  if (ref?.apiGroup !== RBAC_GROUP) causes.push({ field: 'roleRef.apiGroup', reason: 'FieldValueNotSupported', message: unsupported(ref?.apiGroup, [RBAC_GROUP]) });
  const kinds = namespaced ? ['Role', 'ClusterRole'] : ['ClusterRole'];
  if (!kinds.includes(ref?.kind ?? '')) causes.push({ field: 'roleRef.kind', reason: 'FieldValueNotSupported', message: unsupported(ref?.kind, kinds) });
  if (!ref?.name) causes.push({ field: 'roleRef.name', reason: 'FieldValueRequired', message: 'Required value' });
  ((o.subjects ?? []) as Subject[]).forEach((s, i) => {
    const at = `subjects[${i}]`;
    if (!s?.name) causes.push({ field: `${at}.name`, reason: 'FieldValueRequired', message: 'Required value' });
    if (s?.kind === 'ServiceAccount') {
      if (s.apiGroup) causes.push({ field: `${at}.apiGroup`, reason: 'FieldValueNotSupported', message: unsupported(s.apiGroup, ['']) });
      if (!namespaced && !s.namespace) causes.push({ field: `${at}.namespace`, reason: 'FieldValueRequired', message: 'Required value' });
    } else if (s?.kind === 'User' || s?.kind === 'Group') {
      if (s.apiGroup !== RBAC_GROUP) causes.push({ field: `${at}.apiGroup`, reason: 'FieldValueNotSupported', message: unsupported(s.apiGroup, [RBAC_GROUP]) });
    } else causes.push({ field: `${at}.kind`, reason: 'FieldValueNotSupported', message: unsupported(s?.kind, ['ServiceAccount', 'User', 'Group']) });
  });
  const before = previous?.roleRef as RoleRef | undefined;
  if (before && (before.apiGroup !== ref?.apiGroup || before.kind !== ref?.kind || before.name !== ref?.name)) {
    causes.push({ field: 'roleRef', message: `Invalid value: ${goRoleRef(ref)}: cannot change roleRef` });
  }
}

export function validate(type: ResourceType, o: KObject, previous?: KObject): void {
  const causes: StatusCause[] = [];
  const name = o.metadata.name;
  const nameRule = type.kind === 'Namespace' || type.kind === 'Service' ? DNS_LABEL : DNS_SUBDOMAIN;
  if (!name) causes.push({ field: 'metadata.name', reason: 'FieldValueRequired', message: 'Required value: name or generateName is required' });
  else if (RBAC_KINDS.has(type.kind) && type.group === RBAC_GROUP) {
    // RBAC names only need to be one path segment ("system:discovery" is a valid name).
    for (const problem of pathSegmentNameProblems(name)) causes.push({ field: 'metadata.name', message: `Invalid value: ${JSON.stringify(name)}: ${problem}` });
  } else if (!nameRule.test(name) || name.length > (nameRule === DNS_LABEL ? 63 : 253)) {
    causes.push({
      field: 'metadata.name',
      message: `Invalid value: "${name}": a lowercase RFC 1123 ${nameRule === DNS_LABEL ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
    });
  }
  const spec = o.spec as Record<string, unknown> | undefined;
  if (isCrd(o)) causes.push(...crdProblems(o, previous));
  // Custom kinds are checked against nothing but their names (no schema validation).
  switch (type.crd ? '' : type.kind) {
    case 'Deployment':
    case 'ReplicaSet':
    case 'StatefulSet':
    case 'DaemonSet':
      checkPodTemplate(causes, spec, 'spec', true);
      if (typeof spec?.replicas === 'number' && spec.replicas < 0) causes.push({ field: 'spec.replicas', message: `Invalid value: ${spec.replicas}: must be greater than or equal to 0` });
      break;
    case 'Job':
      checkPodTemplate(causes, spec, 'spec', false);
      break;
    case 'Pod':
      checkContainers(causes, spec?.containers, 'spec.containers');
      break;
    case 'Service':
      if (spec?.type !== 'ExternalName' && spec?.clusterIP !== 'None' && (!Array.isArray(spec?.ports) || spec.ports.length === 0)) {
        causes.push({ field: 'spec.ports', reason: 'FieldValueRequired', message: 'Required value' });
      }
      break;
    case 'Role':
    case 'ClusterRole':
      checkRules(causes, o.rules, type.kind === 'Role');
      break;
    case 'RoleBinding':
    case 'ClusterRoleBinding':
      checkBinding(causes, o, previous);
      break;
    case 'Event':
      // on the stored form, whichever group the write came through (as upstream validates the internal type)
      causes.push(...eventProblems(toStored(type, o), previous && toStored(type, previous), type.group === EVENTS_GROUP, deepEqual));
      break;
    default:
      break;
  }
  // a view's errors name its storage kind: upstream says `Event "x" is invalid` for events.k8s.io too
  const named = type.storage ?? type;
  if (causes.length > 0) throw invalid(named.kind, named.group, name ?? '', causes);
}
