// ReplicaSet controller: keeps spec.replicas pods (owned, labelled from the template) and reports
// replicas/ready/available in status.
import { randomSuffix } from '../apiserver.ts';
import type { KObject } from '../store.ts';
import { controllerRef, EVENT_SOURCES, omitZero, podIsActive, podIsAvailable, podIsReady, type Any, type ControllerContext } from './context.ts';

/** Syncs one ReplicaSet; returns when a ready pod becomes available (minReadySeconds), if one will. */
export function syncReplicaSet(ctx: ControllerContext, rs: KObject): number | undefined {
  if (rs.metadata.deletionTimestamp) return undefined;
  const spec = rs.spec as Any;
  const owned = ctx.owned('Pod', rs).filter(podIsActive);
  const want = spec.replicas ?? 1;
  if (owned.length < want) {
    for (let i = owned.length; i < want; i++) {
      const template = (spec.template ?? {}) as Any;
      const created = ctx.create('Pod', {
        metadata: {
          name: `${rs.metadata.name}-${randomSuffix()}`,
          namespace: rs.metadata.namespace,
          labels: { ...(template.metadata?.labels ?? {}) },
          ...(template.metadata?.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
          ownerReferences: [controllerRef(rs)],
        },
        spec: structuredClone(template.spec ?? {}),
      });
      if (created) {
        owned.push(created);
        ctx.event(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata.name}`, EVENT_SOURCES.replicaSet);
      }
    }
  } else if (owned.length > want) {
    // Delete the least useful pods first: not ready before ready, newest before oldest.
    const victims = [...owned].sort((a, b) => {
      const ra = podIsReady(a) ? 1 : 0;
      const rb = podIsReady(b) ? 1 : 0;
      if (ra !== rb) return ra - rb;
      return (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '');
    });
    for (const pod of victims.slice(0, owned.length - want)) {
      ctx.delete(pod);
      ctx.event(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`, EVENT_SOURCES.replicaSet);
    }
    owned.splice(0, owned.length, ...owned.filter((p) => !victims.slice(0, owned.length - want).includes(p)));
  }
  const now = ctx.now();
  const minReady = spec.minReadySeconds ?? 0;
  const status = omitZero(
    {
      replicas: owned.length,
      fullyLabeledReplicas: owned.length,
      readyReplicas: owned.filter(podIsReady).length,
      availableReplicas: owned.filter((p) => podIsAvailable(p, minReady, now)).length,
      observedGeneration: rs.metadata.generation,
    },
    ['replicas'],
  );
  ctx.updateStatus(rs, status);
  return availableAt(owned, minReady, now);
}

/** The earliest time a ready pod that is not yet available (minReadySeconds) becomes available. */
export function availableAt(pods: KObject[], minReadySeconds: number, now: number): number | undefined {
  if (minReadySeconds <= 0) return undefined;
  let next: number | undefined;
  for (const pod of pods) {
    if (!podIsReady(pod) || podIsAvailable(pod, minReadySeconds, now)) continue;
    const cond = ((pod.status as Any).conditions as Any[]).find((c) => c.type === 'Ready');
    const at = Date.parse(cond?.lastTransitionTime ?? '') + minReadySeconds * 1000;
    if (!Number.isNaN(at) && (next === undefined || at < next)) next = at;
  }
  return next;
}

export function replicaSetsOf(ctx: ControllerContext, owner: KObject): KObject[] {
  return ctx.owned('ReplicaSet', owner);
}
