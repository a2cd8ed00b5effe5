// The labels keelson adds to every rendered object, whichever template rendered it.
import { DEPLOYMENT_LABEL, MANAGED_BY_LABEL, type KubeObject } from '../kube/types.ts';

/**
 * Adds keelson's labels to the object's own metadata.labels. Never to pod templates or selectors:
 * a Deployment's selector is immutable, and a label added to the pod template would roll every
 * pod whenever the deployment id changed.
 */
export function labelObject(object: KubeObject, deploymentId: string): KubeObject {
  object.metadata.labels = { ...(object.metadata.labels ?? {}), [MANAGED_BY_LABEL]: 'keelson', [DEPLOYMENT_LABEL]: deploymentId };
  return object;
}
