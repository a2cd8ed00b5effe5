// Inventories: the objects a deployment applied, as `ObjectRef`s (cluster-scoped ones carry no
// namespace). Pruning deletes previous − next, for any kind, as kustomize-controller's
// `inventory.Diff` does. Pure: no I/O.
import { refKey, type ObjectRef } from './types.ts';

/** The refs of `previous` that `next` no longer holds (API versions aside), in `previous`'s order. */
export function staleRefs(previous: readonly ObjectRef[], next: readonly ObjectRef[]): ObjectRef[] {
  const keep = new Set(next.map(refKey));
  const seen = new Set<string>();
  return previous.filter((ref) => {
    const key = refKey(ref);
    if (keep.has(key) || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
