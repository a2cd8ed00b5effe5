// The policy check of rendered objects, run by the render effect after rendering and before
// anything is applied (src/runtime/rolloutEffects.ts): pipelines write deployment rows by SQL
// and never pass the API, so this is the check that cannot be walked around. Pure: no I/O.
//
// Scope (namespaced or cluster-scoped) comes from a table of the built-in kinds. A kind keelson
// does not know (a custom resource) may be either, and the apply step would place it as the
// cluster says; so it must be allowed both as a namespaced kind and by
// cluster_resource_whitelist. That fails closed without asking the cluster.
import { groupOf, kindMatches } from './patterns.ts';
import { namespaceAllowed, namespaceRefusal, type Policy } from './policy.ts';

/** The annotation by which a manifest asks to take over an existing object (read by src/kube). */
export const ADOPT_ANNOTATION = 'keelson.dev/adopt';

/** Built-in cluster-scoped kinds by API group (Kubernetes 1.34). */
const CLUSTER_SCOPED: Readonly<Record<string, readonly string[]>> = {
  core: ['Namespace', 'Node', 'PersistentVolume', 'ComponentStatus'],
  'rbac.authorization.k8s.io': ['ClusterRole', 'ClusterRoleBinding'],
  'apiextensions.k8s.io': ['CustomResourceDefinition'],
  'apiregistration.k8s.io': ['APIService'],
  'admissionregistration.k8s.io': [
    'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'ValidatingAdmissionPolicy',
    'ValidatingAdmissionPolicyBinding', 'MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding',
  ],
  'storage.k8s.io': ['StorageClass', 'CSIDriver', 'CSINode', 'VolumeAttachment', 'VolumeAttributesClass'],
  'scheduling.k8s.io': ['PriorityClass'],
  'node.k8s.io': ['RuntimeClass'],
  'networking.k8s.io': ['IngressClass', 'IPAddress', 'ServiceCIDR'],
  'certificates.k8s.io': ['CertificateSigningRequest', 'ClusterTrustBundle'],
  'flowcontrol.apiserver.k8s.io': ['FlowSchema', 'PriorityLevelConfiguration'],
  'resource.k8s.io': ['DeviceClass', 'ResourceSlice'],
  'authentication.k8s.io': ['TokenReview', 'SelfSubjectReview'],
  'authorization.k8s.io': ['SubjectAccessReview', 'SelfSubjectAccessReview', 'SelfSubjectRulesReview'],
  policy: ['PodSecurityPolicy'],
};

/** Built-in namespaced kinds by API group. */
const NAMESPACED: Readonly<Record<string, readonly string[]>> = {
  core: [
    'Pod', 'Service', 'ConfigMap', 'Secret', 'ServiceAccount', 'PersistentVolumeClaim', 'Endpoints', 'Event',
    'LimitRange', 'ResourceQuota', 'ReplicationController', 'PodTemplate', 'Binding',
  ],
  apps: ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ControllerRevision'],
  batch: ['Job', 'CronJob'],
  autoscaling: ['HorizontalPodAutoscaler'],
  policy: ['PodDisruptionBudget'],
  'networking.k8s.io': ['Ingress', 'NetworkPolicy'],
  'rbac.authorization.k8s.io': ['Role', 'RoleBinding'],
  'discovery.k8s.io': ['EndpointSlice'],
  'coordination.k8s.io': ['Lease'],
  'events.k8s.io': ['Event'],
  'storage.k8s.io': ['CSIStorageCapacity'],
  'resource.k8s.io': ['ResourceClaim', 'ResourceClaimTemplate'],
  'authorization.k8s.io': ['LocalSubjectAccessReview'],
};

export type Scope = 'namespaced' | 'cluster' | 'unknown';

export function scopeOf(apiVersion: string, kind: string): Scope {
  const group = groupOf(apiVersion);
  if (CLUSTER_SCOPED[group]?.includes(kind)) return 'cluster';
  if (NAMESPACED[group]?.includes(kind)) return 'namespaced';
  return 'unknown';
}

export interface ObjectViolation {
  /** `ClusterRoleBinding pwn`, `ConfigMap kube-system/x`: the object as messages name it. */
  readonly object: string;
  readonly rule: 'cluster_resource_whitelist' | 'namespace_resource_whitelist' | 'namespace_resource_blacklist' | 'namespaces' | 'allow_adoption';
  readonly message: string;
}

export interface CheckedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly annotations?: Readonly<Record<string, string>> };
}

const kindName = (group: string, kind: string) => (group === 'core' ? kind : `${kind} (${group})`);

function namespacedKindProblem(policy: Policy, group: string, kind: string): Pick<ObjectViolation, 'rule' | 'message'> | null {
  const denied = kindMatches(policy.namespaceResourceBlacklist, group, kind);
  if (denied) {
    return { rule: 'namespace_resource_blacklist', message: `project ${policy.project} may not create ${kindName(group, kind)} objects (namespace_resource_blacklist: ${denied})` };
  }
  if (policy.namespaceResourceWhitelist.length > 0 && !kindMatches(policy.namespaceResourceWhitelist, group, kind)) {
    return {
      rule: 'namespace_resource_whitelist',
      message: `project ${policy.project} may create only these namespaced kinds: ${policy.namespaceResourceWhitelist.join(', ')}`,
    };
  }
  return null;
}

function clusterKindProblem(policy: Policy, group: string, kind: string, known: boolean): Pick<ObjectViolation, 'rule' | 'message'> | null {
  if (kindMatches(policy.clusterResourceWhitelist, group, kind)) return null;
  const allowed = policy.clusterResourceWhitelist.length === 0
    ? `project ${policy.project} may not create cluster-scoped objects`
    : `project ${policy.project} may create only these cluster-scoped kinds: ${policy.clusterResourceWhitelist.join(', ')}`;
  return {
    rule: 'cluster_resource_whitelist',
    message: known
      ? allowed
      : `keelson does not know whether ${kindName(group, kind)} is cluster-scoped, so it must be allowed as if it were, and ${allowed} (an admin may add ${group}/${kind} to cluster_resource_whitelist)`,
  };
}

/**
 * Every way `objects` (as rendered for a deployment into `namespace`) break `policy`, one
 * sentence each, e.g. "ClusterRoleBinding pwn is cluster-scoped; project shop may not create
 * cluster-scoped objects". Empty when all is allowed.
 */
export function checkObjects(objects: readonly CheckedObject[], policy: Policy, context: { namespace: string }): ObjectViolation[] {
  const violations: ObjectViolation[] = [];
  for (const object of objects) {
    const group = groupOf(object.apiVersion);
    const { kind } = object;
    const scope = scopeOf(object.apiVersion, kind);
    // where apply would put it: a namespaced object without a namespace goes to the deployment's
    const namespace = object.metadata.namespace ?? context.namespace;
    const name = scope === 'cluster' ? `${kind} ${object.metadata.name}` : `${kind} ${namespace}/${object.metadata.name}`;
    const add = (problem: Pick<ObjectViolation, 'rule' | 'message'> | null, prefix: string) => {
      if (problem) violations.push({ object: name, rule: problem.rule, message: `${prefix}; ${problem.message}` });
    };
    if (scope === 'cluster') {
      add(clusterKindProblem(policy, group, kind, true), `${name} is cluster-scoped`);
    } else {
      if (!namespaceAllowed(policy, namespace)) {
        violations.push({ object: name, rule: 'namespaces', message: `${name} is in namespace ${namespace}; ${namespaceRefusal(policy, namespace)}` });
      }
      add(namespacedKindProblem(policy, group, kind), `${name} is refused`);
      if (scope === 'unknown') add(clusterKindProblem(policy, group, kind, false), `${name} is refused`);
    }
    if (object.metadata.annotations?.[ADOPT_ANNOTATION] === 'true' && !policy.allowAdoption) {
      violations.push({
        object: name,
        rule: 'allow_adoption',
        message: `${name} asks to adopt an existing object (${ADOPT_ANNOTATION}: "true"); project ${policy.project} may not adopt objects (allow_adoption is off)`,
      });
    }
  }
  return violations;
}
