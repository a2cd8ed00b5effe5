// One shared cache of the cluster for the whole process: a list-then-watch mirror per kind,
// across all namespaces, selected by keelson's managed-by label. Verification, live health,
// stop, drift and ownership checks read it instead of sending a LIST per deployment; in steady
// state the cache costs no request but the watches themselves (re-established when a stream ends,
// relisted only on 410 Gone or after a failure).
//
// - Kinds are started lazily, the first time a verb needs them, and kept until `close()`.
// - Namespaces are watched without a selector (keelson must know whether a namespace exists
//   before it creates one); every other kind with `app.kubernetes.io/managed-by=keelson`. Pods and
//   ReplicaSets are found because keelson labels pod templates (see ownership.ts `stampLabels`).
// - Memory: objects keep only what decisions need. managedFields are dropped except entries
//   written through the `scale` subresource (drift ignores autoscaled fields); Pods keep no spec,
//   ReplicaSets no pod template, and Secrets no data (keelson holds no secret it need not hold).
//   Verbs that compare a whole object of these kinds read it fresh.
// - Changes are dispatched by topic — the object's namespace and its deployment label — so a
//   change wakes the verifications and health subscriptions it concerns, not all of them.
// - A watch that keeps failing keeps retrying with backoff; after `reportFailuresAfter` failures
//   in a row its waiters are told (they give up with the error), and `ensure` rejects.
// - A kind whose collection answers 404 (its CRD was deleted) is dropped: its objects are
//   reported deleted, and it is discovered again the next time a verb needs it.
// - Namespaced mode (`namespaces`, KEELSON_NAMESPACES): an identity bound by RoleBindings may
//   not LIST or WATCH across namespaces, so each namespaced kind gets one mirror per listed
//   namespace, and cluster-scoped kinds (Namespaces included) are not mirrored at all: they
//   read as "not served", and the verbs never need them there (apply refuses them first).
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { TransientError } from '../errors.ts';
import { abortError, httpStatus } from './kubeErrors.ts';
import { mirrorKey, startResourceWatch, type ResourceWatchHandle, type WatchChange } from './resourceWatch.ts';
import type { ServedResource, Transport } from './transport.ts';
import { DEPLOYMENT_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, groupOf, type KubeObject } from './types.ts';

export interface CacheKind {
  apiVersion: string;
  kind: string;
}

export interface CacheChange extends WatchChange {
  /** `apps/Deployment`: the kind's key in the cache. */
  readonly kindKey: string;
}

export type CacheListener = (change: CacheChange) => void;
export type FailureListener = (kindKey: string, error: Error) => void;

export interface ClusterCacheOptions {
  transport: Transport;
  log: Logger;
  metrics?: Metrics;
  /** Failures in a row of one kind's watch after which its waiters give up; 5 by default. */
  reportFailuresAfter?: number;
  /** First retry delay of a failed watch, doubled each time; 200 ms by default. */
  backoffBaseMs?: number;
  /** Namespaced mode: mirror only these namespaces, one watch per kind and namespace. */
  namespaces?: readonly string[];
}

interface KindEntry {
  readonly key: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly resource: ServedResource;
  /** One mirror per watched namespace, or one under "" for the whole cluster. */
  readonly handles: Map<string, ResourceWatchHandle>;
  /** The mirrors (by namespace key) that completed a LIST, and failures in a row of each. */
  readonly syncedIn: Set<string>;
  readonly failuresIn: Map<string, number>;
  synced: boolean;
  failures: number;
  lastError?: Error;
  readonly waiters: Set<{ resolve: () => void; reject: (error: Error) => void }>;
}

export const NAMESPACE_KIND: CacheKind = { apiVersion: 'v1', kind: 'Namespace' };
export const POD_KIND: CacheKind = { apiVersion: 'v1', kind: 'Pod' };
export const REPLICA_SET_KIND: CacheKind = { apiVersion: 'apps/v1', kind: 'ReplicaSet' };

/** Kinds the cache trims beyond managedFields: compare them from a fresh read. */
export const TRIMMED_KINDS: ReadonlySet<string> = new Set(['Pod', 'ReplicaSet', 'Secret']);

export function kindKey(ref: { apiVersion: string; kind: string }): string {
  return `${groupOf(ref.apiVersion)}/${ref.kind}`;
}

/** Keeps what decisions need; see the header. */
export function trimObject(object: KubeObject): KubeObject {
  const { managedFields, ...metadata } = object.metadata;
  const scaleEntries = Array.isArray(managedFields)
    ? managedFields
        .filter((entry) => (entry as { subresource?: unknown }).subresource === 'scale')
        .map((entry) => {
          const { manager, subresource, fieldsV1 } = entry as Record<string, unknown>;
          return { manager, subresource, fieldsV1 };
        })
    : [];
  const trimmed: KubeObject = { ...object, metadata: scaleEntries.length > 0 ? { ...metadata, managedFields: scaleEntries } : metadata };
  if (object.kind === 'Pod') delete trimmed.spec;
  if (object.kind === 'Secret') {
    delete trimmed.data;
    delete trimmed.stringData;
  }
  if (object.kind === 'ReplicaSet' && trimmed.spec && typeof trimmed.spec === 'object') {
    const { template: _template, ...spec } = trimmed.spec as Record<string, unknown>;
    trimmed.spec = spec;
  }
  return trimmed;
}

function topicsOf(object: KubeObject | undefined): string[] {
  if (!object) return [];
  const topics = [`ns:${object.metadata.namespace ?? ''}`];
  const deployment = object.metadata.labels?.[DEPLOYMENT_LABEL];
  if (deployment) topics.push(`dep:${deployment}`);
  return topics;
}

export type ClusterCache = ReturnType<typeof createClusterCache>;

function itemCount(entry: KindEntry): number {
  let total = 0;
  for (const handle of entry.handles.values()) total += handle.items.size;
  return total;
}

export function createClusterCache(options: ClusterCacheOptions) {
  const { transport, log, metrics } = options;
  const reportAfter = options.reportFailuresAfter ?? 5;
  const scoped = options.namespaces ? [...new Set(options.namespaces)] : undefined;

  /** The mirror that holds objects of `namespace` (cluster-wide: the only one). */
  function handleFor(entry: KindEntry, namespace: string | undefined): ResourceWatchHandle | undefined {
    return entry.handles.get(scoped ? (namespace ?? '') : '');
  }

  /** The cached object under its mirror key (`ns/name` or `name`). */
  function itemOf(entry: KindEntry, key: string): KubeObject | undefined {
    const slash = key.indexOf('/');
    return handleFor(entry, slash < 0 ? undefined : key.slice(0, slash))?.items.get(key);
  }
  const kinds = new Map<string, KindEntry>();
  /** Kinds being started: concurrent `ensure` calls share one discovery and one watch. */
  const starting = new Map<string, Promise<KindEntry | undefined>>();
  /** deployment id → `kindKey|mirrorKey` of every cached object labelled for it. */
  const byDeployment = new Map<string, Set<string>>();
  const listeners = new Map<string, Set<CacheListener>>();
  const failureListeners = new Set<FailureListener>();
  let closed = false;

  function index(entryKey: string, change: WatchChange): void {
    const key = `${entryKey}|${mirrorKey(change.object)}`;
    const before = change.previous?.metadata.labels?.[DEPLOYMENT_LABEL];
    const after = change.type === 'DELETED' ? undefined : change.object.metadata.labels?.[DEPLOYMENT_LABEL];
    if (before && before !== after) {
      const set = byDeployment.get(before);
      set?.delete(key);
      if (set?.size === 0) byDeployment.delete(before);
    }
    if (after) {
      let set = byDeployment.get(after);
      if (!set) byDeployment.set(after, (set = new Set()));
      set.add(key);
    }
  }

  function dispatch(change: CacheChange): void {
    const topics = new Set([...topicsOf(change.object), ...topicsOf(change.previous)]);
    const notified = new Set<CacheListener>();
    for (const topic of topics) {
      for (const listener of listeners.get(topic) ?? []) {
        if (notified.has(listener)) continue;
        notified.add(listener);
        try {
          listener(change);
        } catch (error) {
          // One broken subscriber must not stop the cache for everyone else.
          log.error({ err: (error as Error).message }, 'cluster cache listener failed');
        }
      }
    }
  }

  function settleWaiters(entry: KindEntry, error?: Error): void {
    for (const waiter of entry.waiters) {
      if (error) waiter.reject(error);
      else waiter.resolve();
    }
    entry.waiters.clear();
  }

  /** Drops a kind whose collection is gone: its objects are reported deleted. */
  function drop(entry: KindEntry): void {
    for (const handle of entry.handles.values()) handle.stop();
    kinds.delete(entry.key);
    transport.forget(entry.apiVersion);
    for (const handle of entry.handles.values()) {
      for (const object of handle.items.values()) {
        const change: CacheChange = { type: 'DELETED', object, previous: object, kindKey: entry.key };
        index(entry.key, change);
        dispatch(change);
      }
    }
    metrics?.kubeCacheObjects.set({ kind: entry.kind }, 0);
    settleWaiters(entry);
    log.info({ kind: entry.kind, apiVersion: entry.apiVersion }, 'kind no longer served; dropped from the cluster cache');
  }

  async function start(kind: CacheKind, signal?: AbortSignal): Promise<KindEntry | undefined> {
    const what = kind.kind === 'Namespace' ? 'Namespaces' : `${kind.kind} objects managed by keelson`;
    // Not fresh: a kind found unserved is asked about again at most once a minute, however
    // often verbs need it (apply asks afresh itself, before it needs the cache).
    const resource = await transport.served(kind.apiVersion, kind.kind, what, signal);
    if (!resource || closed) return undefined;
    const key = kindKey(kind);
    if (scoped && !resource.namespaced) {
      // Namespaced mode: listing a cluster-scoped kind would be refused (403); nothing of it is
      // keelson's to know about here.
      log.debug({ kind: kind.kind }, 'cluster-scoped kind not mirrored in namespaced mode');
      return undefined;
    }
    const labelSelector = kind.kind === 'Namespace' ? undefined : `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
    const entry: KindEntry = {
      key,
      apiVersion: kind.apiVersion,
      kind: kind.kind,
      resource,
      handles: new Map(),
      syncedIn: new Set(),
      failuresIn: new Map(),
      synced: false,
      failures: 0,
      waiters: new Set(),
    };
    for (const namespace of scoped ?? ['']) {
      const where = namespace ? `${what} in namespace ${namespace}` : what;
      const handle = startResourceWatch({
        path: transport.collectionPath(kind.apiVersion, resource, namespace || undefined),
        what: where,
        apiVersion: kind.apiVersion,
        kind: kind.kind,
        labelSelector,
        watch: transport.watch,
        log,
        backoffBaseMs: options.backoffBaseMs,
        trim: trimObject,
        beforeWatch: (watchSignal) => transport.throttle('watch', watchSignal),
        list: (listSignal) =>
          transport.list(kind.apiVersion, kind.kind, resource, { namespace: namespace || undefined, labelSelector, what: where, signal: listSignal }),
        onChanges: (changes) => {
          for (const change of changes) {
            const cacheChange: CacheChange = { ...change, kindKey: key };
            index(key, cacheChange);
            dispatch(cacheChange);
          }
          metrics?.kubeCacheObjects.set({ kind: kind.kind }, itemCount(entry));
        },
        onSynced: () => {
          entry.syncedIn.add(namespace);
          entry.failuresIn.delete(namespace);
          entry.failures = Math.max(0, ...entry.failuresIn.values());
          if (entry.failures === 0) entry.lastError = undefined;
          // Complete only when every namespace's mirror is.
          if (entry.syncedIn.size < entry.handles.size) return;
          entry.synced = true;
          settleWaiters(entry);
        },
        onFailure: (error, failures) => {
          if (httpStatus(error.cause) === 404) {
            drop(entry);
            return;
          }
          entry.failuresIn.set(namespace, failures);
          entry.failures = Math.max(...entry.failuresIn.values());
          entry.lastError = error;
          if (failures >= reportAfter) {
            settleWaiters(entry, error);
            for (const listener of failureListeners) listener(key, error);
          }
        },
        onWatchRequest: (outcome) => metrics?.kubeRequests.inc({ verb: 'watch', kind: kind.kind, outcome }),
        onRestart: (reason) => metrics?.kubeWatchRestarts.inc({ kind: kind.kind, reason }),
      });
      entry.handles.set(namespace, handle);
    }
    kinds.set(key, entry);
    log.debug({ kind: kind.kind, apiVersion: kind.apiVersion, namespaces: scoped }, 'cluster cache watches a new kind');
    return entry;
  }

  function waitSynced(entry: KindEntry, signal?: AbortSignal): Promise<void> {
    if (entry.failures >= reportAfter && entry.lastError) return Promise.reject(entry.lastError);
    if (entry.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        entry.waiters.delete(waiter);
        reject(abortError(signal));
      };
      const waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      entry.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Starts watching each kind (once per process) and resolves when all are mirrored. Kinds the
   * cluster does not serve are skipped: nothing of them can exist.
   */
  async function ensure(wanted: readonly CacheKind[], signal?: AbortSignal): Promise<void> {
    if (closed) throw new TransientError('The cluster cache is closed: keelson is shutting down.', { code: 'kube_unavailable' });
    const unique = new Map(wanted.map((kind) => [kindKey(kind), kind] as const));
    await Promise.all(
      [...unique].map(async ([key, kind]) => {
        let entry = kinds.get(key);
        if (!entry) {
          let pending = starting.get(key);
          if (!pending) {
            pending = start(kind, signal).finally(() => starting.delete(key));
            starting.set(key, pending);
          }
          entry = await pending;
        }
        if (entry) await waitSynced(entry, signal);
      }),
    );
  }

  function entryFor(ref: { apiVersion: string; kind: string }): KindEntry | undefined {
    return kinds.get(kindKey(ref));
  }

  return {
    ensure,

    /** Whether the kind is mirrored (after `ensure`): false means the cluster does not serve it. */
    serves(ref: { apiVersion: string; kind: string }): boolean {
      return entryFor(ref)?.synced === true;
    },

    /** The cached object, or undefined (absent, or not labelled managed-by keelson). */
    get(ref: { apiVersion: string; kind: string; name: string; namespace?: string }): KubeObject | undefined {
      const key = ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
      const entry = entryFor(ref);
      return entry ? handleFor(entry, ref.namespace)?.items.get(key) : undefined;
    },

    /** Every cached object labelled for the deployment (ReplicaSets and Pods included). */
    labelled(deploymentId: string, kind?: string): KubeObject[] {
      const out: KubeObject[] = [];
      for (const key of byDeployment.get(deploymentId) ?? []) {
        const bar = key.indexOf('|');
        const entry = kinds.get(key.slice(0, bar));
        if (!entry || (kind !== undefined && entry.kind !== kind)) continue;
        const object = itemOf(entry, key.slice(bar + 1));
        if (object) out.push(object);
      }
      return out;
    },

    /** Listens to changes of objects in any of `namespaces` or labelled for any of `deployments`. */
    subscribe(topics: { namespaces?: readonly string[]; deployments?: readonly string[] }, listener: CacheListener): () => void {
      const keys = [...(topics.namespaces ?? []).map((ns) => `ns:${ns}`), ...(topics.deployments ?? []).map((id) => `dep:${id}`)];
      for (const key of keys) {
        let set = listeners.get(key);
        if (!set) listeners.set(key, (set = new Set()));
        set.add(listener);
      }
      return () => {
        for (const key of keys) {
          const set = listeners.get(key);
          set?.delete(listener);
          if (set?.size === 0) listeners.delete(key);
        }
      };
    },

    /** Told when a kind's watch has failed `reportFailuresAfter` times in a row. */
    onFailure(listener: FailureListener): () => void {
      failureListeners.add(listener);
      return () => failureListeners.delete(listener);
    },

    /** The error of a kind whose watch keeps failing, if any. */
    failure(ref: { apiVersion: string; kind: string }): Error | undefined {
      const entry = entryFor(ref);
      return entry && entry.failures >= reportAfter ? entry.lastError : undefined;
    },

    /** Namespaced mode: the namespaces mirrored; undefined when the whole cluster is. */
    namespaces: scoped as readonly string[] | undefined,

    size(): number {
      let total = 0;
      for (const entry of kinds.values()) total += itemCount(entry);
      return total;
    },

    close(): void {
      closed = true;
      for (const entry of kinds.values()) {
        for (const handle of entry.handles.values()) handle.stop();
        settleWaiters(entry, new TransientError('The cluster cache closed: keelson is shutting down.', { code: 'kube_unavailable' }));
      }
      kinds.clear();
      byDeployment.clear();
      listeners.clear();
    },
  };
}
