// Shapes shared by the Kubernetes layer and its callers. Objects are plain JSON as the API server
// returns them (timestamps are RFC 3339 strings), never client-node model instances.

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    /** Set by the server: */
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

/** A closed set, ordered from best to worst by `healthSeverity`. */
export type HealthStatus = 'Current' | 'InProgress' | 'Failed' | 'Terminating' | 'NotFound' | 'Unknown';

export interface Health {
  status: HealthStatus;
  message: string;
}

/** The label that marks every object keelson applies for a deployment. */
export const DEPLOYMENT_LABEL = 'keelson.dev/deployment';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'keelson';
/** `keelson.dev/adopt: "true"` in a manifest asks to take over an object keelson does not own. */
export const ADOPT_ANNOTATION = 'keelson.dev/adopt';

/** `Deployment shop/web`, `Namespace shop`: how messages name an object. */
export function describeRef(ref: { kind: string; name: string; namespace?: string }): string {
  return ref.namespace ? `${ref.kind} ${ref.namespace}/${ref.name}` : `${ref.kind} ${ref.name}`;
}

/** The API group of an apiVersion: `apps/v1` → `apps`, `v1` → `` (core). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/**
 * Identity of an object regardless of API version (`apps/Deployment/shop/web`): the same object
 * served as autoscaling/v1 and autoscaling/v2 is one object.
 */
export function refKey(ref: { apiVersion: string; kind: string; name: string; namespace?: string }): string {
  return `${groupOf(ref.apiVersion)}/${ref.kind}/${ref.namespace ?? ''}/${ref.name}`;
}

export function refOf(obj: KubeObject): ObjectRef {
  const ref: ObjectRef = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name };
  if (obj.metadata.namespace) ref.namespace = obj.metadata.namespace;
  return ref;
}
