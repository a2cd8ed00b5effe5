// Rendered objects between render and apply, kept in this process only. The actor's context
// holds a PlanHandle (id, content hash, refs, count) instead of the objects, so Secret data never
// reaches a snapshot, a transition or an API response. The cache is bounded (by plans and by
// bytes, least recently stored first out): a plan evicted, or never held because the actor was
// restored after a crash or on another replica, is rendered again from the same inputs by the
// apply effect — a miss costs a render, never correctness.
import { createHash, randomUUID } from 'node:crypto';
import type { PlanHandle } from '../../machines/deployment.machine.ts';
import { refOf, type KubeObject } from '../kube/types.ts';

export interface PlanCacheOptions {
  /** Plans held at once; 256 by default (rollouts in flight are capped at 32 by default). */
  readonly maxPlans?: number;
  /** Their JSON size in total; 64 MiB by default. */
  readonly maxBytes?: number;
}

interface Entry {
  readonly objects: readonly KubeObject[];
  readonly hash: string;
  readonly bytes: number;
}

/** sha256 of the rendered content (hex), as a plan handle carries it. */
export function planHash(objects: readonly KubeObject[]): string {
  return createHash('sha256').update(JSON.stringify(objects)).digest('hex');
}

export type PlanCache = ReturnType<typeof createPlanCache>;

export function createPlanCache(options: PlanCacheOptions = {}) {
  const maxPlans = options.maxPlans ?? 256;
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  /** Insertion order is eviction order. */
  const plans = new Map<string, Entry>();
  let bytes = 0;

  function remove(id: string): void {
    const entry = plans.get(id);
    if (!entry) return;
    plans.delete(id);
    bytes -= entry.bytes;
  }

  return {
    /** Keeps the objects and returns the handle the actor holds instead. */
    put(objects: readonly KubeObject[]): PlanHandle {
      const text = JSON.stringify(objects);
      const hash = createHash('sha256').update(text).digest('hex');
      const id = randomUUID();
      plans.set(id, { objects, hash, bytes: text.length });
      bytes += text.length;
      // the newest plan always stays, even alone above the byte bound
      for (const oldest of plans.keys()) {
        if (plans.size <= 1 || (plans.size <= maxPlans && bytes <= maxBytes)) break;
        remove(oldest);
      }
      return { id, hash, refs: objects.map(refOf), count: objects.length };
    },

    /** The plan's objects, or undefined when this process does not hold them (render again). */
    get(handle: PlanHandle | null): readonly KubeObject[] | undefined {
      if (!handle) return undefined;
      const entry = plans.get(handle.id);
      return entry && entry.hash === handle.hash ? entry.objects : undefined;
    },

    /** Forgets an applied plan. */
    delete(handle: PlanHandle | null): void {
      if (handle) remove(handle.id);
    },

    size(): { plans: number; bytes: number } {
      return { plans: plans.size, bytes };
    },
  };
}
