// The kinds the simulator serves: group/version, plural and short names, scope, subresources.
// Discovery, OpenAPI, routing and Table printing are all derived from this one registry: the
// built-in kinds below, plus (per simulator, in a ResourceRegistry) the kinds its established
// CustomResourceDefinitions define (crd.ts).

export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
  readonly subresources: readonly Subresource[];
  /** Whether `metadata.generation` is maintained (bumped on spec changes). */
  readonly generation: boolean;
  /** Whether writes to the main resource ignore `.status` (status is a subresource). */
  readonly statusSubresource: boolean;
  /** The verbs discovery lists (and the server serves). */
  readonly verbs: readonly string[];
  /**
   * A create-only request kind that is answered, never stored (SelfSubjectAccessReview and
   * friends): the server computes the response's status from the request.
   */
  readonly virtual: boolean;
  /** Custom kinds only: the name of the CustomResourceDefinition that defines this version. */
  readonly crd?: string;
  /** Custom kinds only: the version's openAPIV3Schema, served in the OpenAPI documents. */
  readonly schema?: Record<string, unknown>;
  /** Custom kinds only: the version's additionalPrinterColumns (none: NAME and AGE). */
  readonly printerColumns?: readonly PrinterColumn[];
  /**
   * A kind served from another kind's storage, converted on the way in and out (conversion.ts):
   * events.k8s.io/v1 Event is core/v1 Event, so both show the same objects and resourceVersions.
   */
  readonly storage?: ResourceType;
}

/** A CRD's additionalPrinterColumns entry, as `kubectl get` shows it. */
export interface PrinterColumn {
  readonly name: string;
  readonly type: string;
  readonly format?: string;
  readonly description?: string;
  readonly priority?: number;
  readonly jsonPath: string;
}

export const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] as const;

export type Subresource = 'status' | 'scale' | 'token';

/** What each subresource is in discovery: its own kind when it has one, and its verbs. */
export const SUBRESOURCES: Record<Subresource, { group?: string; version?: string; kind?: string; verbs: readonly string[] }> = {
  status: { verbs: ['get', 'patch', 'update'] },
  scale: { group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] },
  token: { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest', verbs: ['create'] },
};

function rt(partial: Omit<ResourceType, 'singular' | 'categories' | 'shortNames' | 'subresources' | 'generation' | 'statusSubresource' | 'verbs' | 'virtual'> & Partial<ResourceType>): ResourceType {
  const subresources = partial.subresources ?? [];
  return {
    singular: partial.kind.toLowerCase(),
    categories: [],
    shortNames: [],
    generation: subresources.includes('status'),
    statusSubresource: subresources.includes('status'),
    verbs: partial.virtual ? ['create'] : VERBS,
    virtual: false,
    ...partial,
    subresources,
  };
}

const RBAC = 'rbac.authorization.k8s.io';

// Events: what `kubectl get events` and `kubectl describe` show; keelson records its own
const EVENT = rt({ group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true, shortNames: ['ev'] });

export const RESOURCE_TYPES: readonly ResourceType[] = [
  rt({ group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false, shortNames: ['ns'], subresources: ['status'], generation: false }),
  rt({ group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true, shortNames: ['cm'] }),
  rt({ group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true }),
  rt({ group: '', version: 'v1', kind: 'Service', plural: 'services', namespaced: true, shortNames: ['svc'], categories: ['all'], subresources: ['status'], generation: false }),
  rt({ group: '', version: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts', namespaced: true, shortNames: ['sa'], subresources: ['token'] }),
  rt({ group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true, shortNames: ['po'], categories: ['all'], subresources: ['status'], generation: false }),
  EVENT,
  rt({ group: '', version: 'v1', kind: 'PersistentVolumeClaim', plural: 'persistentvolumeclaims', namespaced: true, shortNames: ['pvc'], subresources: ['status'], generation: false }),
  rt({ group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', namespaced: true, shortNames: ['deploy'], categories: ['all'], subresources: ['status', 'scale'] }),
  rt({ group: 'apps', version: 'v1', kind: 'ReplicaSet', plural: 'replicasets', namespaced: true, shortNames: ['rs'], categories: ['all'], subresources: ['status', 'scale'] }),
  rt({ group: 'apps', version: 'v1', kind: 'StatefulSet', plural: 'statefulsets', namespaced: true, shortNames: ['sts'], categories: ['all'], subresources: ['status', 'scale'] }),
  rt({ group: 'apps', version: 'v1', kind: 'DaemonSet', plural: 'daemonsets', namespaced: true, shortNames: ['ds'], categories: ['all'], subresources: ['status'] }),
  // the same Events under events.k8s.io's field names (a real server lists the group after apps)
  rt({ group: 'events.k8s.io', version: 'v1', kind: 'Event', plural: 'events', namespaced: true, shortNames: ['ev'], storage: EVENT }),
  rt({ group: 'batch', version: 'v1', kind: 'Job', plural: 'jobs', namespaced: true, categories: ['all'], subresources: ['status'] }),
  rt({ group: 'networking.k8s.io', version: 'v1', kind: 'Ingress', plural: 'ingresses', namespaced: true, shortNames: ['ing'], subresources: ['status'], generation: true }),
  rt({ group: 'autoscaling', version: 'v2', kind: 'HorizontalPodAutoscaler', plural: 'horizontalpodautoscalers', namespaced: true, shortNames: ['hpa'], categories: ['all'], subresources: ['status'] }),
  rt({ group: 'policy', version: 'v1', kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets', namespaced: true, shortNames: ['pdb'], subresources: ['status'] }),
  rt({ group: RBAC, version: 'v1', kind: 'ClusterRole', plural: 'clusterroles', namespaced: false }),
  rt({ group: RBAC, version: 'v1', kind: 'ClusterRoleBinding', plural: 'clusterrolebindings', namespaced: false }),
  rt({ group: RBAC, version: 'v1', kind: 'Role', plural: 'roles', namespaced: true }),
  rt({ group: RBAC, version: 'v1', kind: 'RoleBinding', plural: 'rolebindings', namespaced: true }),
  rt({ group: 'apiextensions.k8s.io', version: 'v1', kind: 'CustomResourceDefinition', plural: 'customresourcedefinitions', namespaced: false, shortNames: ['crd'], categories: ['api-extensions'], subresources: ['status'] }),
  rt({ group: 'authentication.k8s.io', version: 'v1', kind: 'SelfSubjectReview', plural: 'selfsubjectreviews', namespaced: false, virtual: true }),
  rt({ group: 'authorization.k8s.io', version: 'v1', kind: 'SelfSubjectAccessReview', plural: 'selfsubjectaccessreviews', namespaced: false, virtual: true }),
  rt({ group: 'authorization.k8s.io', version: 'v1', kind: 'SelfSubjectRulesReview', plural: 'selfsubjectrulesreviews', namespaced: false, virtual: true }),
];

export function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

export interface GroupVersion {
  group: string;
  version: string;
  types: ResourceType[];
}

/** Group versions in discovery order (core first). */
export function groupVersions(types: readonly ResourceType[] = RESOURCE_TYPES): GroupVersion[] {
  const out: GroupVersion[] = [];
  for (const type of types) {
    let entry = out.find((e) => e.group === type.group && e.version === type.version);
    if (!entry) {
      entry = { group: type.group, version: type.version, types: [] };
      out.push(entry);
    }
    entry.types.push(type);
  }
  return out;
}

export function findByPlural(group: string, version: string, plural: string, types: readonly ResourceType[] = RESOURCE_TYPES): ResourceType | undefined {
  return types.find((t) => t.group === group && t.version === version && t.plural === plural);
}

export function findByKind(apiVersion: string, kind: string, types: readonly ResourceType[] = RESOURCE_TYPES): ResourceType | undefined {
  return types.find((t) => apiVersionOf(t) === apiVersion && t.kind === kind);
}

/**
 * One simulator's served kinds: the built-in ones and those its CustomResourceDefinitions define.
 * Per simulator, not module state, because tests run several simulators in one process and a CRD
 * installed in one must not appear in another.
 */
export class ResourceRegistry {
  private readonly custom = new Map<string, ResourceType[]>();
  /** Replaced (never mutated) on every change, so documents derived from it can be cached by identity. */
  private snapshot: readonly ResourceType[] = RESOURCE_TYPES;

  /** Every served kind, built-in first, then custom kinds in the order their CRDs arrived. */
  types(): readonly ResourceType[] {
    return this.snapshot;
  }

  groupVersions(): GroupVersion[] {
    return groupVersions(this.snapshot);
  }

  findByPlural(group: string, version: string, plural: string): ResourceType | undefined {
    return findByPlural(group, version, plural, this.snapshot);
  }

  findByKind(apiVersion: string, kind: string): ResourceType | undefined {
    return findByKind(apiVersion, kind, this.snapshot);
  }

  /** The custom kinds a CRD defines now. */
  definedBy(crd: string): readonly ResourceType[] {
    return this.custom.get(crd) ?? [];
  }

  /** Replaces what CRD `crd` defines (an empty list unregisters it); returns what it defined before. */
  define(crd: string, types: readonly ResourceType[]): readonly ResourceType[] {
    const before = this.custom.get(crd) ?? [];
    if (types.length === 0) this.custom.delete(crd);
    else this.custom.set(crd, [...types]);
    this.snapshot = [...RESOURCE_TYPES, ...[...this.custom.values()].flat()];
    return before;
  }
}

/** Where a kind's objects are stored: its own bucket, or the kind it is a view of. */
export function storageOf(type: ResourceType): ResourceType {
  return type.storage ?? type;
}

/** A built-in kind by name, as stored (controllers and seeding; custom kinds are found through a ResourceRegistry). */
export function typeOf(kind: string): ResourceType {
  const type = RESOURCE_TYPES.find((t) => t.kind === kind && !t.storage);
  if (!type) throw new Error(`simulator: unknown kind ${kind}`);
  return type;
}
