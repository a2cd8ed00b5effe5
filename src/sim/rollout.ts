// Rolling-update arithmetic of the Deployment controller (pkg/controller/deployment/rolling.go and
// util/deployment_util.go). Pure: unit tested in test/sim/rollout.test.ts.

export type IntOrPercent = number | string | undefined;

/** Resolves `25%` against `total`, rounding up or down as the Kubernetes helper does. */
export function scaledValue(value: IntOrPercent, total: number, roundUp: boolean, fallback: string): number {
  const v = value ?? fallback;
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(v);
  if (!m) {
    const n = Number(v);
    if (Number.isInteger(n)) return n;
    throw new Error(`invalid value for IntOrString: "${v}"`);
  }
  const exact = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/** maxSurge (rounded up) and maxUnavailable (rounded down); both zero makes unavailable 1. */
export function resolveFenceposts(maxSurge: IntOrPercent, maxUnavailable: IntOrPercent, replicas: number): { surge: number; unavailable: number } {
  const surge = scaledValue(maxSurge, replicas, true, '25%');
  let unavailable = scaledValue(maxUnavailable, replicas, false, '25%');
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

export interface RsCounts {
  /** spec.replicas of the ReplicaSet. */
  replicas: number;
  available: number;
}

/** Target size of the new ReplicaSet in one rolling step (NewRSNewReplicas). */
export function newReplicaSetReplicas(spec: number, surge: number, newRs: RsCounts, all: readonly RsCounts[]): number {
  if (newRs.replicas >= spec) return spec;
  const current = all.reduce((n, rs) => n + rs.replicas, 0);
  const maxTotal = spec + surge;
  if (current >= maxTotal) return newRs.replicas;
  const scaleUp = Math.min(maxTotal - current, spec - newRs.replicas);
  return newRs.replicas + scaleUp;
}

/**
 * How many old replicas may go in one step (reconcileOldReplicaSets): the pods above
 * `spec − maxUnavailable`, not counting the new ReplicaSet's unavailable pods.
 */
export function maxScaleDown(spec: number, unavailable: number, newRs: RsCounts, all: readonly RsCounts[]): number {
  const allPods = all.reduce((n, rs) => n + rs.replicas, 0);
  const minAvailable = spec - unavailable;
  const newUnavailable = newRs.replicas - newRs.available;
  return Math.max(0, allPods - minAvailable - newUnavailable);
}

/**
 * Scale-downs for old ReplicaSets (oldest first): first unhealthy replicas (cleanupUnhealthyReplicas),
 * then available ones while total availability stays at or above `spec − maxUnavailable`.
 * Returns the new spec.replicas of each old ReplicaSet, in the given order.
 */
export function scaleDownOld(spec: number, unavailable: number, newRs: RsCounts, old: readonly RsCounts[]): number[] {
  const targets = old.map((rs) => rs.replicas);
  const budget = maxScaleDown(spec, unavailable, newRs, [newRs, ...old]);
  if (budget <= 0) return targets;
  // cleanupUnhealthyReplicas
  let cleaned = 0;
  old.forEach((rs, i) => {
    if (budget - cleaned <= 0) return;
    const unhealthy = Math.max(0, rs.replicas - rs.available);
    const down = Math.min(unhealthy, budget - cleaned, targets[i]!);
    targets[i]! -= down;
    cleaned += down;
  });
  // scaleDownOldReplicaSetsForRollingUpdate: unhealthy pods were not available, so the
  // availability count is unchanged by the clean-up.
  const minAvailable = spec - unavailable;
  const available = newRs.available + old.reduce((n, rs) => n + rs.available, 0);
  let total = available - minAvailable;
  if (total <= 0) return targets;
  old.forEach((rs, i) => {
    if (total <= 0) return;
    const down = Math.min(targets[i]!, total);
    targets[i]! -= down;
    total -= down;
  });
  return targets;
}
