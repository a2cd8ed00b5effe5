// In-memory object storage: one global resourceVersion counter (as etcd's revision), objects by
// type/namespace/name, and a bounded history of change events that watches resume from.
// Indexed by namespace and by owner uid, so a namespaced list, a controller's "what do I own"
// and the garbage collector cost what they return, not the size of the cluster.
import type { ResourceType } from './resources.ts';
import { clone, type JsonObject } from './ssa.ts';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  generateName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: unknown[];
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  readonly type: EventType;
  readonly resource: ResourceType;
  readonly object: KObject;
  /** The object before the change (MODIFIED), for selector-filtered watches. */
  readonly previous?: KObject;
  readonly rv: number;
}

const DEFAULT_HISTORY = 1000;

export class Store {
  private rv = 0;
  private readonly objects = new Map<ResourceType, Map<string, KObject>>();
  private readonly history: StoreEvent[] = [];
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private readonly historyLimit: number;
  /** Events with rv > compactedRv are in the history. */
  private compactedRv = 0;
  /** type → namespace → keys (`namespace/name`) */
  private readonly byNamespace = new Map<ResourceType, Map<string, Set<string>>>();
  /** owner uid → dependents (type and key) */
  private readonly byOwner = new Map<string, Map<string, [ResourceType, string]>>();
  /** uid → where the object is */
  private readonly byUid = new Map<string, [ResourceType, string]>();

  constructor(options: { historyLimit?: number } = {}) {
    this.historyLimit = options.historyLimit ?? DEFAULT_HISTORY;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  /** The oldest resourceVersion a watch may still start from. */
  get oldestResourceVersion(): number {
    return this.compactedRv;
  }

  private bucket(type: ResourceType): Map<string, KObject> {
    let b = this.objects.get(type);
    if (!b) {
      b = new Map();
      this.objects.set(type, b);
    }
    return b;
  }

  get(type: ResourceType, namespace: string | undefined, name: string): KObject | undefined {
    const obj = this.objects.get(type)?.get(`${namespace ?? ''}/${name}`);
    return obj ? clone(obj) : undefined;
  }

  /** Objects ordered by namespace then name, as etcd keys sort. */
  list(type: ResourceType, namespace?: string): KObject[] {
    const b = this.objects.get(type);
    if (!b) return [];
    const keys = namespace === undefined ? [...b.keys()] : [...(this.byNamespace.get(type)?.get(namespace) ?? [])];
    return keys.sort().map((k) => clone(b.get(k)!));
  }

  /** Whether an object with this uid is stored (the garbage collector's question). */
  hasUid(uid: string): boolean {
    return this.byUid.has(uid);
  }

  /** The object with this uid, and its type. */
  locate(uid: string): [ResourceType, KObject] | undefined {
    const at = this.byUid.get(uid);
    const obj = at && this.objects.get(at[0])?.get(at[1]);
    return obj ? [at[0], clone(obj)] : undefined;
  }

  /** Every object in a namespace, of any type. */
  inNamespace(namespace: string): [ResourceType, KObject][] {
    const out: [ResourceType, KObject][] = [];
    for (const [type, byNs] of this.byNamespace) {
      for (const key of byNs.get(namespace) ?? []) out.push([type, clone(this.objects.get(type)!.get(key)!)]);
    }
    return out;
  }

  /** The objects whose ownerReferences name `uid`, of any type. */
  dependents(uid: string): [ResourceType, KObject][] {
    const out: [ResourceType, KObject][] = [];
    for (const [type, key] of this.byOwner.get(uid)?.values() ?? []) {
      const obj = this.objects.get(type)?.get(key);
      if (obj) out.push([type, clone(obj)]);
    }
    return out;
  }

  private index(type: ResourceType, key: string, previous: KObject | undefined, next: KObject | undefined): void {
    const ref = `${type.group}/${type.plural}/${key}`;
    if (previous) {
      for (const owner of previous.metadata.ownerReferences ?? []) {
        const deps = this.byOwner.get(owner.uid);
        deps?.delete(ref);
        if (deps?.size === 0) this.byOwner.delete(owner.uid);
      }
      if (!next) {
        const ns = this.byNamespace.get(type)?.get(previous.metadata.namespace ?? '');
        ns?.delete(key);
        if (ns?.size === 0) this.byNamespace.get(type)!.delete(previous.metadata.namespace ?? '');
        if (previous.metadata.uid) this.byUid.delete(previous.metadata.uid);
      }
    }
    if (next) {
      for (const owner of next.metadata.ownerReferences ?? []) {
        let deps = this.byOwner.get(owner.uid);
        if (!deps) this.byOwner.set(owner.uid, (deps = new Map()));
        deps.set(ref, [type, key]);
      }
      if (!previous) {
        let byNs = this.byNamespace.get(type);
        if (!byNs) this.byNamespace.set(type, (byNs = new Map()));
        const ns = next.metadata.namespace ?? '';
        let keys = byNs.get(ns);
        if (!keys) byNs.set(ns, (keys = new Set()));
        keys.add(key);
      }
      if (next.metadata.uid) this.byUid.set(next.metadata.uid, [type, key]);
    }
  }

  /** Stores `object` (create or replace), stamping a new resourceVersion. Returns the stored copy. */
  put(type: ResourceType, object: KObject): KObject {
    const key = `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
    const b = this.bucket(type);
    const previous = b.get(key);
    const stored = clone(object);
    stored.metadata.resourceVersion = String(++this.rv);
    b.set(key, stored);
    this.index(type, key, previous, stored);
    this.emit({ type: previous ? 'MODIFIED' : 'ADDED', resource: type, object: stored, previous, rv: this.rv });
    return clone(stored);
  }

  remove(type: ResourceType, namespace: string | undefined, name: string): KObject | undefined {
    const key = `${namespace ?? ''}/${name}`;
    const b = this.objects.get(type);
    const previous = b?.get(key);
    if (!b || !previous) return undefined;
    b.delete(key);
    this.index(type, key, previous, undefined);
    const gone = clone(previous);
    gone.metadata.resourceVersion = String(++this.rv);
    this.emit({ type: 'DELETED', resource: type, object: gone, previous, rv: this.rv });
    return clone(gone);
  }

  private emit(event: StoreEvent): void {
    this.history.push(event);
    while (this.history.length > this.historyLimit) this.compactedRv = this.history.shift()!.rv;
    for (const listener of [...this.listeners]) listener(event);
  }

  /** Events after `rv`, or undefined when they were compacted away (the watch gets 410). */
  eventsSince(rv: number): StoreEvent[] | undefined {
    if (rv < this.compactedRv) return undefined;
    return this.history.filter((e) => e.rv > rv);
  }

  /** Drops the whole event history, as an etcd compaction would (tests of 410 Gone). */
  compact(): void {
    this.history.length = 0;
    this.compactedRv = this.rv;
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every stored object of every type (the garbage collector's scan). */
  *all(): Generator<[ResourceType, KObject]> {
    for (const [type, b] of this.objects) for (const obj of b.values()) yield [type, obj];
  }
}

export type { JsonObject };
