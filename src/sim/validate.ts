// The validation a real server does that clients notice (422 Invalid): names, selectors that
// must match the template, containers that need a name and an image.
import type { ResourceType } from './resources.ts';
import { matchesRequirements, requirementsFromObject, SelectorError, type LabelSelectorObject } from './selectors.ts';
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

export function validate(type: ResourceType, o: KObject): void {
  const causes: StatusCause[] = [];
  const name = o.metadata.name;
  const nameRule = type.kind === 'Namespace' || type.kind === 'Service' ? DNS_LABEL : DNS_SUBDOMAIN;
  if (!name) causes.push({ field: 'metadata.name', reason: 'FieldValueRequired', message: 'Required value: name or generateName is required' });
  else if (!nameRule.test(name) || name.length > (nameRule === DNS_LABEL ? 63 : 253)) {
    causes.push({
      field: 'metadata.name',
      message: `Invalid value: "${name}": a lowercase RFC 1123 ${nameRule === DNS_LABEL ? 'label' : 'subdomain'} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
    });
  }
  const spec = o.spec as Record<string, unknown> | undefined;
  switch (type.kind) {
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
    default:
      break;
  }
  if (causes.length > 0) throw invalid(type.kind, type.group, name ?? '', causes);
}
