// Namespaced mode (KEELSON_NAMESPACES): keelson holds rights in the listed namespaces only
// (deploy/kustomize/components/namespaced), so it refuses up front what those rights cannot
// cover — an object in another namespace, or a cluster-scoped object — instead of sending a
// request the API server would refuse halfway through an apply. Pure: the apply verb decides with it.
import { describeRef, type ObjectRef } from './types.ts';

export const NAMESPACES_SETTING = 'KEELSON_NAMESPACES';

/** One sentence per object the listed namespaces do not cover; empty when all are covered. */
export function namespaceRefusals(refs: readonly ObjectRef[], allowed: readonly string[]): string[] {
  const list = allowed.join(',');
  const out: string[] = [];
  for (const ref of refs) {
    if (!ref.namespace) {
      out.push(
        `${describeRef(ref)} is cluster-scoped; keelson runs limited to the namespaces ${NAMESPACES_SETTING}=${list} and may not create cluster-scoped objects`,
      );
    } else if (!allowed.includes(ref.namespace)) {
      out.push(
        `${ref.kind} ${ref.name} is in namespace ${ref.namespace}, which is not one of the namespaces keelson may deploy into (${NAMESPACES_SETTING}=${list})`,
      );
    }
  }
  return out;
}

/** The namespace_not_allowed sentence for a whole apply. */
export function namespaceRefusalMessage(refusals: readonly string[]): string {
  return `${refusals.join('; ')}. Nothing was applied.`;
}

/** The namespace_missing sentence. */
export function namespaceMissingMessage(namespace: string): string {
  return (
    `Namespace ${namespace} does not exist or holds no RoleBinding for keelson, and keelson, limited to the namespaces ${NAMESPACES_SETTING} lists, ` +
    `cannot create namespaces: create it (kubectl create namespace ${namespace}) with keelson's RoleBinding in it, then deploy again. Nothing was applied.`
  );
}
