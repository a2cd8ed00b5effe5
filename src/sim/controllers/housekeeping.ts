// Garbage collection by ownerReferences (background propagation), namespace termination and a
// PVC binder that binds every claim at once. Each works on one object, queued by the manager
// from store events: the dependents of a deleted owner, a terminating namespace, a claim.
import { typeOf } from '../resources.ts';
import type { KObject } from '../store.ts';
import type { Any, ControllerContext } from './context.ts';

/** Deletes the object with this uid when it has owners and none of them exists any more. */
export function collectGarbage(ctx: ControllerContext, uid: string): void {
  const store = ctx.api.store;
  const found = store.locate(uid);
  if (!found) return;
  const [type, obj] = found;
  const refs = obj.metadata.ownerReferences;
  if (!refs || refs.length === 0) return;
  if (refs.some((r) => store.hasUid(r.uid))) return;
  try {
    ctx.api.delete(type, obj.metadata.namespace, obj.metadata.name, { propagationPolicy: 'Background' });
  } catch {
    // gone meanwhile
  }
}

/** Empties a terminating namespace, then removes it (its objects' deletions queue it again). */
export function terminateNamespace(ctx: ControllerContext, ns: KObject): void {
  if (!ns.metadata.deletionTimestamp) return;
  let remaining = 0;
  for (const [type, obj] of ctx.api.store.inNamespace(ns.metadata.name)) {
    remaining++;
    try {
      ctx.api.delete(type, obj.metadata.namespace, obj.metadata.name, { propagationPolicy: 'Background' });
    } catch {
      // gone meanwhile
    }
  }
  if (remaining === 0) ctx.api.store.remove(typeOf('Namespace'), undefined, ns.metadata.name);
}

export function bindClaim(ctx: ControllerContext, pvc: KObject): void {
  const status = (pvc.status ?? {}) as Any;
  if (status.phase === 'Bound' || pvc.metadata.deletionTimestamp) return;
  const spec = pvc.spec as Any;
  if (!spec.volumeName) {
    const bound = structuredClone(pvc);
    (bound.spec as Any).volumeName = `pvc-${pvc.metadata.uid}`;
    bound.metadata.annotations = { ...bound.metadata.annotations, 'pv.kubernetes.io/bind-completed': 'yes' };
    ctx.update(bound);
  }
  const latest = ctx.get('PersistentVolumeClaim', pvc.metadata.namespace, pvc.metadata.name);
  if (!latest) return;
  ctx.updateStatus(latest, { phase: 'Bound', accessModes: spec.accessModes ?? ['ReadWriteOnce'], capacity: { storage: spec.resources?.requests?.storage ?? '1Gi' } });
}
