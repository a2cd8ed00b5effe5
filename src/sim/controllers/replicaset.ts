// ReplicaSet controller: keeps spec.replicas pods (owned, labelled from the template) and reports
// replicas/ready/available in status.
import { randomSuffix } from '../apiserver.ts';
import type { KObject } from '../store.ts';
import { controllerRef, isControlledBy, omitZero, podIsActive, podIsAvailable, podIsReady, type Any, type ControllerContext } from './context.ts';

export function reconcileReplicaSets(ctx: ControllerContext): void {
  const pods = ctx.list('Pod');
  for (const rs of ctx.list('ReplicaSet')) {
    if (rs.metadata.deletionTimestamp) continue;
    const spec = rs.spec as Any;
    const owned = pods.filter((p) => p.metadata.namespace === rs.metadata.namespace && isControlledBy(p, rs) && podIsActive(p));
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
        if (created) owned.push(created);
      }
    } else if (owned.length > want) {
      // Delete the least useful pods first: not ready before ready, newest before oldest.
      const victims = [...owned].sort((a, b) => {
        const ra = podIsReady(a) ? 1 : 0;
        const rb = podIsReady(b) ? 1 : 0;
        if (ra !== rb) return ra - rb;
        return (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '');
      });
      for (const pod of victims.slice(0, owned.length - want)) ctx.delete(pod);
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
  }
}

export function replicaSetsOf(ctx: ControllerContext, owner: KObject): KObject[] {
  return ctx.list('ReplicaSet', owner.metadata.namespace).filter((rs) => isControlledBy(rs, owner));
}
