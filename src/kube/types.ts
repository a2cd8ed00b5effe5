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

/** `Deployment shop/web`, `Namespace shop`: how messages name an object. */
export function describeRef(ref: { kind: string; name: string; namespace?: string }): string {
  return ref.namespace ? `${ref.kind} ${ref.namespace}/${ref.name}` : `${ref.kind} ${ref.name}`;
}

export function refOf(obj: KubeObject): ObjectRef {
  const ref: ObjectRef = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name };
  if (obj.metadata.namespace) ref.namespace = obj.metadata.namespace;
  return ref;
}
