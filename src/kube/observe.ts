// Live health of a deployment's inventory, from objects already in hand (the cluster cache):
// each object's kstatus health (health.ts), and for workloads the pods of their newest revision,
// so that a crash loop or an unpullable image is named with its pod and reason even while the
// workload's own status still looks fine. Pure: no I/O, time is a parameter.
//
// No grace period here: this reports what the cluster shows now. Deciding how long a degraded
// deployment may stay degraded before acting is the caller's (the statechart keeps time).
import { assessHealth, healthSeverity } from './health.ts';
import { POD_OWNER_KINDS, isNewRevisionPod, podProblem } from './rollout.ts';
import { describeRef, type Health, type HealthStatus, type KubeObject, type ObjectRef } from './types.ts';

export interface ObservedObject extends ObjectRef, Health {}

export interface Observation {
  /** The worst status of the inventory (`Current` when every object is). */
  status: HealthStatus;
  /** A sentence: the worst object and why, or that everything is Current. */
  message: string;
  objects: ObservedObject[];
}

export interface InventoryEntry {
  ref: ObjectRef;
  /** The live object, or undefined when it does not exist. */
  object: KubeObject | undefined;
  /** Pods selected by the workload (empty for other kinds). */
  pods: readonly KubeObject[];
  /** ReplicaSets owned by a Deployment (empty for other kinds). */
  replicaSets: readonly KubeObject[];
}

/** Health of one object, made worse by its new-revision pods' fail-fast states. */
export function observeObject(entry: InventoryEntry, now: Date = new Date()): Health {
  const health = assessHealth(entry.object, { now });
  const { object } = entry;
  if (!object || !POD_OWNER_KINDS.has(object.kind) || health.status === 'Failed' || health.status === 'Terminating') return health;
  // A status older than the spec says nothing about which pods are new.
  const observed = (object.status as { observedGeneration?: unknown } | undefined)?.observedGeneration;
  const generation = object.metadata.generation;
  if (typeof generation === 'number' && typeof observed === 'number' && observed < generation) return health;
  for (const pod of entry.pods) {
    if (!isNewRevisionPod(object, pod, [...entry.replicaSets])) continue;
    const problem = podProblem(pod);
    if (!problem) continue;
    // A lone ErrImagePull may be a registry hiccup: it degrades, it does not fail.
    if (problem.mayBeTransient) return { status: 'InProgress', message: `${problem.message}.` };
    return { status: 'Failed', message: `${problem.message}.` };
  }
  return health;
}

export function observeInventory(entries: readonly InventoryEntry[], now: Date = new Date()): Observation {
  const objects: ObservedObject[] = entries.map((entry) => ({ ...entry.ref, ...observeObject(entry, now) }));
  let worst: ObservedObject | undefined;
  for (const object of objects) {
    if (!worst || healthSeverity[object.status] > healthSeverity[worst.status]) worst = object;
  }
  if (!worst || worst.status === 'Current') {
    const count = objects.length;
    return { status: 'Current', message: `${count} object${count === 1 ? ' is' : 's are'} Current.`, objects };
  }
  return { status: worst.status, message: `${describeRef(worst)}: ${worst.message}`, objects };
}
