// What every controller gets: the API (direct, no HTTP, no faults), the simulated clock and
// small helpers for writes that are skipped when nothing would change (no event storms).
import type { Logger } from '../../logger.ts';
import type { ApiServer } from '../apiserver.ts';
import type { SimClock } from '../clock.ts';
import { apiVersionOf, typeOf } from '../resources.ts';
import { deepEqual } from '../ssa.ts';
import type { KObject, ObjectMeta, OwnerReference } from '../store.ts';
import { EventRecorder, type EventSource } from './events.ts';

export interface NewObject {
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** The field manager of the controllers' writes (their client's user agent), not their event source. */
export const CONTROLLER_MANAGER = 'kube-controller-manager';
export const NODE_NAME = 'sim-node';

/**
 * Who records each event, named as on a real cluster: each controller of the controller manager
 * has its own recorder (deployment_controller.go, replica_set.go), the kubelet names its node, and
 * the scheduler records through events.k8s.io with its profile's name and an action.
 */
export const EVENT_SOURCES = {
  deployment: { component: 'deployment-controller' },
  replicaSet: { component: 'replicaset-controller' },
  scheduler: { reportingController: 'default-scheduler', reportingInstance: `default-scheduler-${NODE_NAME}`, action: 'Binding' },
  kubelet: { component: 'kubelet', host: NODE_NAME },
} as const satisfies Record<string, EventSource>;

export interface KubeletOptions {
  podStartupDelayMs: number;
  pullFailurePatterns: RegExp[];
  crashLoopPatterns: RegExp[];
}

export class ControllerContext {
  readonly api: ApiServer;
  readonly clock: SimClock;
  readonly log: Logger;
  readonly kubelet: KubeletOptions;
  readonly events: EventRecorder;

  constructor(api: ApiServer, clock: SimClock, log: Logger, kubelet: KubeletOptions) {
    this.api = api;
    this.clock = clock;
    this.log = log;
    this.kubelet = kubelet;
    this.events = new EventRecorder(api.store, clock);
  }

  /** Records a core/v1 Event about `involved` (see events.ts). */
  event(involved: KObject, type: 'Normal' | 'Warning', reason: string, message: string, source: EventSource, fieldPath?: string): void {
    try {
      this.events.record(involved, type, reason, message, source, fieldPath);
    } catch (error) {
      this.log.debug({ err: error, reason }, 'simulated event not recorded');
    }
  }

  list(kind: string, namespace?: string): KObject[] {
    return this.api.store.list(typeOf(kind), namespace);
  }

  get(kind: string, namespace: string | undefined, name: string): KObject | undefined {
    return this.api.store.get(typeOf(kind), namespace, name);
  }

  /** The objects of `kind` that `owner` controls, by name (the order a namespaced list has). */
  owned(kind: string, owner: KObject): KObject[] {
    const type = typeOf(kind);
    return this.api.store
      .dependents(owner.metadata.uid!)
      .filter(([t, o]) => t === type && o.metadata.namespace === owner.metadata.namespace && isControlledBy(o, owner))
      .map(([, o]) => o)
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  }

  create(kind: string, obj: NewObject, manager = CONTROLLER_MANAGER): KObject | undefined {
    const type = typeOf(kind);
    try {
      return this.api.create(type, obj.metadata.namespace, { apiVersion: apiVersionOf(type), kind, ...obj }, { manager });
    } catch (error) {
      this.log.debug({ err: error, kind, name: obj.metadata.name }, 'simulated controller create failed');
      return undefined;
    }
  }

  /** Writes the main resource (spec/metadata) when it differs. */
  update(obj: KObject, manager = CONTROLLER_MANAGER): KObject {
    const type = typeOf(obj.kind);
    const current = this.api.store.get(type, obj.metadata.namespace, obj.metadata.name);
    if (!current) return obj;
    return this.api.update(type, obj.metadata.namespace, obj.metadata.name, { ...obj, metadata: { ...obj.metadata, resourceVersion: undefined } }, { manager });
  }

  /** Writes `.status` through the status subresource when it differs. */
  updateStatus(obj: KObject, status: Record<string, unknown>, manager = CONTROLLER_MANAGER): KObject {
    if (deepEqual(obj.status, status)) return obj;
    const type = typeOf(obj.kind);
    return this.api.update(type, obj.metadata.namespace, obj.metadata.name, { ...obj, metadata: { ...obj.metadata, resourceVersion: undefined }, status }, { manager, subresource: 'status' });
  }

  delete(obj: KObject): void {
    try {
      this.api.delete(typeOf(obj.kind), obj.metadata.namespace, obj.metadata.name, { propagationPolicy: 'Background' });
    } catch {
      // already gone
    }
  }

  now(): number {
    return this.clock.now();
  }

  timestamp(ms?: number): string {
    return this.clock.timestamp(ms);
  }
}

export function controllerRef(owner: KObject): OwnerReference {
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid!, controller: true, blockOwnerDeletion: true };
}

export function isControlledBy(obj: KObject, owner: KObject): boolean {
  return (obj.metadata.ownerReferences ?? []).some((r) => r.controller && r.uid === owner.metadata.uid);
}

/** Drops zero and undefined integers, as Go's `omitempty` does when the controller writes status. */
export function omitZero<T extends Record<string, unknown>>(status: T, keep: readonly string[] = []): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(status)) {
    if (v === undefined) continue;
    if (v === 0 && !keep.includes(k)) continue;
    out[k] = v;
  }
  return out as T;
}

const SAFE = 'bcdfghjklmnpqrstvwxz2456789';

/** fnv-32a over a stable JSON encoding, encoded as apimachinery's rand.SafeEncodeString does. */
export function templateHash(value: unknown): string {
  let hash = 0x811c9dc5;
  const text = stableJson(value);
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return [...String(hash)].map((c) => SAFE[c.charCodeAt(0) % SAFE.length]).join('');
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function podIsReady(pod: KObject): boolean {
  const conds = ((pod.status as Any | undefined)?.conditions ?? []) as Any[];
  return conds.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Ready for at least minReadySeconds (simulated time). */
export function podIsAvailable(pod: KObject, minReadySeconds: number, now: number): boolean {
  if (!podIsReady(pod)) return false;
  if (minReadySeconds <= 0) return true;
  const cond = ((pod.status as Any).conditions as Any[]).find((c) => c.type === 'Ready');
  const since = Date.parse(cond?.lastTransitionTime ?? '');
  return Number.isNaN(since) || since + minReadySeconds * 1000 <= now;
}

export function podIsActive(pod: KObject): boolean {
  const phase = (pod.status as Any | undefined)?.phase;
  return !pod.metadata.deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed';
}

export type { Any };
