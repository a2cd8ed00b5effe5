// Garbage collection by ownerReferences (background propagation), namespace termination and a
// PVC binder that binds every claim at once.
import { typeOf } from '../resources.ts';
import type { Any, ControllerContext } from './context.ts';

export function collectGarbage(ctx: ControllerContext): void {
  const store = ctx.api.store;
  const uids = new Set<string>();
  const entries = [...store.all()];
  for (const [, obj] of entries) uids.add(obj.metadata.uid!);
  for (const [type, obj] of entries) {
    const refs = obj.metadata.ownerReferences;
    if (!refs || refs.length === 0) continue;
    if (refs.some((r) => uids.has(r.uid))) continue;
    try {
      ctx.api.delete(type, obj.metadata.namespace, obj.metadata.name, { propagationPolicy: 'Background' });
    } catch {
      // gone meanwhile
    }
  }
}

export function terminateNamespaces(ctx: ControllerContext): void {
  for (const ns of ctx.list('Namespace')) {
    if (!ns.metadata.deletionTimestamp) continue;
    let remaining = 0;
    for (const [type, obj] of [...ctx.api.store.all()]) {
      if (obj.metadata.namespace !== ns.metadata.name) continue;
      remaining++;
      try {
        ctx.api.delete(type, obj.metadata.namespace, obj.metadata.name, { propagationPolicy: 'Background' });
      } catch {
        // gone meanwhile
      }
    }
    if (remaining === 0) ctx.api.store.remove(typeOf('Namespace'), undefined, ns.metadata.name);
  }
}

export function bindClaims(ctx: ControllerContext): void {
  for (const pvc of ctx.list('PersistentVolumeClaim')) {
    const status = (pvc.status ?? {}) as Any;
    if (status.phase === 'Bound' || pvc.metadata.deletionTimestamp) continue;
    const spec = pvc.spec as Any;
    if (!spec.volumeName) {
      const bound = structuredClone(pvc);
      (bound.spec as Any).volumeName = `pvc-${pvc.metadata.uid}`;
      bound.metadata.annotations = { ...bound.metadata.annotations, 'pv.kubernetes.io/bind-completed': 'yes' };
      ctx.update(bound);
    }
    const latest = ctx.get('PersistentVolumeClaim', pvc.metadata.namespace, pvc.metadata.name);
    if (!latest) continue;
    ctx.updateStatus(latest, { phase: 'Bound', accessModes: spec.accessModes ?? ['ReadWriteOnce'], capacity: { storage: spec.resources?.requests?.storage ?? '1Gi' } });
  }
}
