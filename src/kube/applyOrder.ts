// Apply order: what others depend on goes first (a Deployment's pods need its ServiceAccount,
// ConfigMaps and PVCs; custom resources need their CRD), the objects that merely point at
// workloads (Ingress, HPA, PDB) go last. Pure: no I/O.

const ORDER: readonly (readonly string[])[] = [
  ['Namespace'],
  ['CustomResourceDefinition'],
  ['ServiceAccount', 'Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding'],
  ['ConfigMap', 'Secret'],
  ['PersistentVolumeClaim'],
  ['Service'],
  ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Pod'],
];

const RANK = new Map<string, number>(ORDER.flatMap((kinds, rank) => kinds.map((kind) => [kind, rank] as const)));
/** Ingress, HorizontalPodAutoscaler, PodDisruptionBudget, custom resources, anything else. */
const LAST = ORDER.length;

export function applyRank(kind: string): number {
  return RANK.get(kind) ?? LAST;
}

/** Stable sort by dependency rank: objects of the same rank keep their rendered order. */
export function sortForApply<T extends { kind: string }>(objects: T[]): T[] {
  return objects
    .map((object, index) => ({ object, index, rank: applyRank(object.kind) }))
    .sort((a, b) => a.rank - b.rank || a.index - b.index)
    .map((entry) => entry.object);
}

/** Deletion order: the reverse of apply order (workloads before their ConfigMaps, CRs before CRDs). */
export function sortForDelete<T extends { kind: string }>(objects: T[]): T[] {
  return sortForApply(objects).reverse();
}
