// keelson's Kubernetes verbs over inventories: apply (with ownership and a change set), diff by
// server-side-apply dry-run, prune, stop, teardown, verify and live health — the cluster side of
// issues #11, #13 and #14. Decisions are pure functions in the files beside this one; requests go
// through transport.ts (identity, fence, rate limit); reads come from the shared cluster cache.
//
// Requests per rollout (the built-in template, an image bump, cache warm): one apply per object
// that changes, and no LIST. An object this process applied or compared at the resourceVersion
// the cache still shows is known unchanged without a request; one whose rendered form differs
// from what this process last applied is known to change, also without one. Anything else (a
// process that just started, an object someone else changed) is compared by a dry-run first.
//
// Hazards:
// - Read-your-writes: the cache learns of keelson's own writes a moment later. Each write's uid
//   and generation are remembered, and verification waits until the cache has caught up, so a
//   stale "Current" from before the apply is never taken for the new rollout's health.
// - Everything is checked before anything is written: ownership refusals and unserved kinds fail
//   the whole apply with nothing applied.
// - Deletions carry the uid seen in the cache as a precondition: an object deleted and created
//   again by someone else meanwhile is not deleted by mistake.
import { createHash } from 'node:crypto';
import os from 'node:os';
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import { TerminalError, TransientError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { sortForApply, sortForDelete } from './applyOrder.ts';
import {
  NAMESPACE_KIND,
  POD_KIND,
  REPLICA_SET_KIND,
  TRIMMED_KINDS,
  createClusterCache,
  kindKey,
  type CacheKind,
  type ClusterCache,
} from './clusterCache.ts';
import { assessDrift, ownChangedPaths } from './drift.ts';
import { assessHealth } from './health.ts';
import { abortError, httpStatus, ROLLOUT_FAILED } from './kubeErrors.ts';
import { observeInventory, type InventoryEntry, type Observation } from './observe.ts';
import { namespaceMissingMessage, namespaceRefusalMessage, namespaceRefusals } from './namespaceScope.ts';
import { decideOwnership, ownerOf, refusalMessage, stampLabels } from './ownership.ts';
import type { RateLimit } from './rateLimiter.ts';
import { POD_OWNER_KINDS, ProblemTracker, VERIFIED_KINDS, isNewRevisionPod, matchesSelector, podProblem } from './rollout.ts';
import { createTransport, type ServedResource, type Transport } from './transport.ts';
import {
  DEPLOYMENT_LABEL,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  describeRef,
  refKey,
  refOf,
  type Health,
  type KubeObject,
  type ObjectRef,
} from './types.ts';

export type ChangeAction = 'created' | 'configured' | 'unchanged';

export interface Change {
  ref: ObjectRef;
  action: ChangeAction;
  /** For `configured`: the field paths the apply changed (empty when not compared). */
  paths: string[];
  /** Set when the object was adopted from its previous owner. */
  adoptedFrom?: string;
}

export interface ApplyResult {
  /** The applied objects in apply order: the deployment's inventory. */
  inventory: ObjectRef[];
  changes: Change[];
}

export interface DriftedObject {
  ref: ObjectRef;
  /** `missing`: not in the cluster (or no longer keelson's); `changed`: fields differ. */
  reason: 'missing' | 'changed';
  /** The field paths that differ from what keelson would apply. */
  paths: string[];
}

export interface TeardownResult {
  deleted: ObjectRef[];
  /** Objects and namespaces left in place, and why. */
  kept: Array<{ ref: ObjectRef; reason: string }>;
}

export interface ApplyOptions {
  /** Namespace of objects that name none. */
  namespace: string;
  deploymentId: string;
  /** The fence: once aborted, nothing more is sent. */
  signal: AbortSignal;
  /** Honour `keelson.dev/adopt: "true"` on manifests (the project's policy decides). */
  allowAdopt?: boolean;
}

export interface KubeClient {
  apply(objects: KubeObject[], options: ApplyOptions): Promise<ApplyResult>;
  /**
   * `release`: the caller's object for what `objects` were rendered from (the same object, the
   * same objects). When every object is found in sync, the live resourceVersions compared are
   * kept for it (weakly), for `inSyncSince`.
   */
  diff(objects: KubeObject[], options: { namespace: string; deploymentId: string; signal: AbortSignal; release?: object }): Promise<DriftedObject[]>;
  /**
   * Whether a release `diff` last found in sync still is, without its objects: every object it
   * compared is in the cache, still this deployment's, at the resourceVersion compared. A render
   * of the same release gives the same objects, so the diff would compare nothing again.
   */
  inSyncSince(release: object, deploymentId: string): boolean;
  prune(deploymentId: string, stale: readonly ObjectRef[], options: { signal: AbortSignal }): Promise<ObjectRef[]>;
  scaleToZero(
    deploymentId: string,
    inventory: readonly ObjectRef[],
    options: { signal: AbortSignal; timeoutMs?: number },
  ): Promise<{ scaled: ObjectRef[]; unscalable: ObjectRef[]; images: string[] }>;
  teardown(deploymentId: string, inventory: readonly ObjectRef[], options: { signal: AbortSignal; timeoutMs?: number }): Promise<TeardownResult>;
  verify(
    refs: readonly ObjectRef[],
    options: { signal?: AbortSignal; onProgress?: (message: string) => void; failFastGraceMs?: number },
  ): Promise<{ message: string }>;
  observe(deploymentId: string, inventory: readonly ObjectRef[], options?: { signal?: AbortSignal }): Promise<Observation>;
  /** Calls `listener` whenever the deployment's observed health (status or message) changes. */
  subscribeHealth(deploymentId: string, inventory: readonly ObjectRef[], listener: (observation: Observation) => void): () => void;
  /** The top-level objects labelled for a deployment, of the given kinds, from the cache. */
  labelledRefs(deploymentId: string, kinds: readonly CacheKind[], options?: { signal?: AbortSignal }): Promise<ObjectRef[]>;
  /** Health of every top-level object labelled for the deployment, in any namespace (API detail view). */
  liveStatus(deploymentId: string, namespace: string): Promise<Array<ObjectRef & Health>>;
  /** The Deployments, StatefulSets and DaemonSets labelled for a deployment, with their uids (from the cache). */
  workloads(deploymentId: string, options?: { signal?: AbortSignal }): Promise<Array<ObjectRef & { uid: string | null }>>;
  /**
   * Creates a core/v1 Event. Its name is the caller's idempotency key: an Event of that name
   * already there (a retried delivery) is `exists`, not an error.
   */
  recordEvent(event: KubeObject, options?: { signal?: AbortSignal }): Promise<'created' | 'exists'>;
  /**
   * The live object: from the cache when it holds it and has seen keelson's own last write, else
   * a GET; undefined when it does not exist or the cluster does not serve its kind.
   */
  get(ref: ObjectRef, options: { signal: AbortSignal }): Promise<KubeObject | undefined>;
  /**
   * Sets a workload's replicas through its `scale` subresource; no request when it already has
   * that many. Refuses (`owned_by_other`) a workload labelled for another deployment; a missing
   * one is the server's 404.
   */
  scaleTo(deploymentId: string, ref: ObjectRef, replicas: number, options: { signal: AbortSignal }): Promise<void>;
  /** Whether the cluster serves the kind (discovery, cached). */
  serves(apiVersion: string, kind: string, options: { signal: AbortSignal }): Promise<boolean>;
  /** The top-level objects (not controller-made) labelled for a deployment, of the given kinds, from the cache. */
  labelledObjects(deploymentId: string, kinds: readonly CacheKind[], options: { signal: AbortSignal }): Promise<KubeObject[]>;
  close(): void;
}

export interface KubeClientDeps {
  kubeConfig: KubeConfig;
  log: Logger;
  metrics?: Metrics;
  /** Sent as `X-Keelson-Client` on every request: keelson's instance id. */
  clientId?: string;
  /** Client-side rate limit of all requests; 50 QPS, burst 100 by default. */
  rateLimit?: RateLimit;
  /** Server-side apply field manager; `keelson` by default. */
  fieldManager?: string;
  /** Timeout of each single request (not of watches); 30 s by default. */
  requestTimeoutMs?: number;
  /** Consecutive failures of a cache watch after which waiters give up (it keeps retrying); 5 by default. */
  watchMaxFailures?: number;
  /** First retry delay of a failed watch, doubled each time; 200 ms by default. */
  watchBackoffMs?: number;
  /** How long `scaleToZero` waits for 0 ready replicas unless told; 5 minutes by default. */
  stopTimeoutMs?: number;
  /**
   * Namespaced mode (KEELSON_NAMESPACES): keelson's rights cover only these namespaces. The cache
   * watches each of them instead of the cluster; apply refuses objects elsewhere and
   * cluster-scoped ones, and never creates or deletes a namespace. Unset: the whole cluster.
   */
  namespaces?: readonly string[];
}

/** Fail-fast grace period for pods of a new revision stuck in a failing state. */
export const DEFAULT_FAIL_FAST_GRACE_MS = 10_000;

/** Kinds whose objects can be scaled to zero (DaemonSets are reported as unscalable). */
export const WORKLOAD_KINDS: readonly CacheKind[] = [
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  { apiVersion: 'apps/v1', kind: 'DaemonSet' },
  { apiVersion: 'apps/v1', kind: 'ReplicaSet' },
];

/** What the API's detail view shows when it knows no inventory: the kinds templates commonly hold. */
export const STATUS_KINDS: readonly CacheKind[] = [
  { apiVersion: 'v1', kind: 'Namespace' },
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding' },
  { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'v1', kind: 'Secret' },
  { apiVersion: 'v1', kind: 'PersistentVolumeClaim' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  { apiVersion: 'apps/v1', kind: 'DaemonSet' },
  { apiVersion: 'batch/v1', kind: 'Job' },
  { apiVersion: 'batch/v1', kind: 'CronJob' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress' },
  { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler' },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget' },
];

/** `file`, else client-node's default: `$KUBECONFIG`, `~/.kube/config`, in-cluster. */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

const CRD_ESTABLISH_WAIT_MS = 10_000;
const APPLY_PATCH = 'application/apply-patch+yaml';
const MERGE_PATCH = 'application/merge-patch+json';
const DISCOVERY_TTL_MS = 60_000;

function plural(count: number, singular: string): string {
  return `${count} ${count === 1 ? singular : `${singular}s`}`;
}

/** Objects created by a controller (ReplicaSets, Pods) carry keelson's labels but are not in inventories. */
function isControlled(obj: KubeObject): boolean {
  const owners = obj.metadata.ownerReferences;
  return Array.isArray(owners) && owners.some((owner) => (owner as { controller?: boolean }).controller === true);
}

function int(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}

function hashOf(object: KubeObject): string {
  return createHash('sha256').update(JSON.stringify(object)).digest('base64url');
}

function cacheKindOf(ref: { apiVersion: string; kind: string }): CacheKind {
  return { apiVersion: ref.apiVersion, kind: ref.kind };
}

/** Scope and apiVersion of a custom resource whose CRD is applied in the same batch. */
function crdScope(objects: readonly KubeObject[], apiVersion: string, kind: string): 'Namespaced' | 'Cluster' | undefined {
  for (const crd of objects) {
    if (crd.kind !== 'CustomResourceDefinition') continue;
    const spec = crd.spec as { group?: string; scope?: string; names?: { kind?: string }; versions?: Array<{ name?: string }> } | undefined;
    if (spec?.names?.kind !== kind) continue;
    if (!spec.versions?.some((v) => `${spec.group}/${v.name}` === apiVersion)) continue;
    return spec.scope === 'Cluster' ? 'Cluster' : 'Namespaced';
  }
  return undefined;
}

/** What this process last knew of an object it wrote or compared. */
interface Known {
  /** The stamped object's hash, and the live resourceVersion at which applying it changes nothing. */
  hash?: string;
  resourceVersion?: string;
  /** From keelson's last write: the cache must show this uid and at least this generation. */
  uid?: string;
  generation?: number;
}

export function createKubeClient(deps: KubeClientDeps): KubeClient {
  const { kubeConfig, log, metrics } = deps;
  const fieldManager = deps.fieldManager ?? 'keelson';
  const transport: Transport = createTransport({
    kubeConfig,
    log,
    metrics,
    clientId: deps.clientId ?? `keelson-${os.hostname()}-${process.pid}`,
    rateLimit: deps.rateLimit,
    requestTimeoutMs: deps.requestTimeoutMs,
  });
  const cache: ClusterCache = createClusterCache({
    transport,
    log,
    metrics,
    reportFailuresAfter: deps.watchMaxFailures,
    backoffBaseMs: deps.watchBackoffMs,
    namespaces: deps.namespaces,
  });
  const scoped = deps.namespaces;
  /** Namespaced mode: whether keelson's rights cover the ref at all. */
  const inScope = (ref: ObjectRef): boolean => !scoped || (ref.namespace !== undefined && scoped.includes(ref.namespace));
  const known = new Map<string, Known>();
  /** by release (see diff): the objects found in sync, at the resourceVersion compared */
  const inSync = new WeakMap<object, ReadonlyArray<{ readonly ref: ObjectRef; readonly resourceVersion: string }>>();

  function remember(ref: ObjectRef, update: Known): void {
    known.set(refKey(ref), { ...known.get(refKey(ref)), ...update });
  }

  // ---- requests ----

  async function getObject(apiVersion: string, kind: string, resource: ServedResource, name: string, namespace: string | undefined, signal?: AbortSignal): Promise<KubeObject | undefined> {
    try {
      const object = await transport.request<KubeObject>({
        verb: 'get',
        kind,
        what: describeRef({ kind, name, namespace }),
        method: HttpMethod.GET,
        path: transport.objectPath(apiVersion, resource, name, namespace),
        signal,
        answers: [404],
      });
      return { ...object, apiVersion: object.apiVersion || apiVersion, kind: object.kind || kind };
    } catch (error) {
      if (error instanceof TerminalError && httpStatus(error.cause) === 404) return undefined;
      throw error;
    }
  }

  function serverSideApply(object: KubeObject, resource: ServedResource, signal: AbortSignal, dryRun: boolean): Promise<KubeObject> {
    const { name, namespace } = object.metadata;
    return transport.request<KubeObject>({
      verb: dryRun ? 'dryrun' : 'apply',
      kind: object.kind,
      what: describeRef({ kind: object.kind, name, namespace }),
      method: HttpMethod.PATCH,
      path: transport.objectPath(object.apiVersion, resource, name, namespace),
      query: { fieldManager, force: 'true', dryRun: dryRun ? 'All' : undefined },
      body: object,
      contentType: APPLY_PATCH,
      signal,
    });
  }

  /**
   * Deletes an object if `keep(live)` finds no reason to keep it. The DELETE carries the uid and
   * resourceVersion the decision was made on: if the object changed meanwhile (relabelled for
   * another deployment, say), the server refuses with 409 and the decision is made again on a
   * fresh read. Returns why it was kept, or undefined when it is deleted (or was gone already).
   */
  async function deleteUnlessKept(
    ref: ObjectRef,
    live: KubeObject,
    resource: ServedResource,
    keep: (live: KubeObject) => string | undefined,
    propagationPolicy: 'Background' | 'Foreground',
    signal: AbortSignal,
  ): Promise<string | undefined> {
    let current: KubeObject | undefined = live;
    for (let attempt = 0; attempt < 5 && current; attempt++) {
      const reason = keep(current);
      if (reason !== undefined) return reason;
      if (current.metadata.deletionTimestamp) return undefined;
      try {
        await transport.request({
          verb: 'delete',
          kind: ref.kind,
          what: describeRef(ref),
          method: HttpMethod.DELETE,
          path: transport.objectPath(ref.apiVersion, resource, ref.name, ref.namespace),
          body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy, preconditions: { uid: current.metadata.uid, resourceVersion: current.metadata.resourceVersion } },
          signal,
          answers: [404, 409],
        });
        return undefined;
      } catch (error) {
        const status = error instanceof TerminalError ? httpStatus(error.cause) : undefined;
        if (status === 404) return undefined;
        if (status !== 409) throw error;
        current = await getObject(ref.apiVersion, ref.kind, resource, ref.name, ref.namespace, signal);
      }
    }
    if (!current) return undefined;
    throw new TransientError(`${describeRef(ref)} kept changing while keelson tried to delete it; trying again later may help.`, { code: 'kube_conflict' });
  }

  /** Keep what is not labelled for the deployment (the prune and teardown safety check). */
  const notOurs = (deploymentId: string) => (live: KubeObject) =>
    live.metadata.labels?.[DEPLOYMENT_LABEL] === deploymentId ? undefined : `it belongs to ${ownerOf(live)}`;

  /**
   * The live object from the cache when it holds it and has seen keelson's own last write to it;
   * else from the server (the cache may lag, or hold only objects labelled managed-by keelson).
   */
  async function liveOf(ref: ObjectRef, resource: ServedResource, signal: AbortSignal): Promise<KubeObject | undefined> {
    const { object, current } = caughtUp(ref);
    if (object && current && !TRIMMED_KINDS.has(ref.kind)) return object;
    return await getObject(ref.apiVersion, ref.kind, resource, ref.name, ref.namespace, signal);
  }

  // ---- discovery ----

  /**
   * Served resources of each ref's kind; unserved kinds are absent from the map. `fresh` asks
   * again about kinds recently found unserved (a CRD may have been installed since).
   */
  async function servedKinds(refs: ReadonlyArray<{ apiVersion: string; kind: string }>, signal?: AbortSignal, fresh = false): Promise<Map<string, ServedResource>> {
    const out = new Map<string, ServedResource>();
    for (const ref of refs) {
      const key = `${ref.apiVersion} ${ref.kind}`;
      if (out.has(key)) continue;
      const resource = await transport.served(ref.apiVersion, ref.kind, `${ref.kind} objects`, signal, fresh);
      if (resource) out.set(key, resource);
    }
    return out;
  }

  let namespacedResources: { at: number; list: Array<{ apiVersion: string; kind: string; resource: ServedResource }> } | undefined;

  /** Every namespaced, listable resource the cluster serves (preferred versions), for emptiness checks. */
  async function allNamespacedResources(signal?: AbortSignal): Promise<Array<{ apiVersion: string; kind: string; resource: ServedResource }>> {
    if (namespacedResources && Date.now() - namespacedResources.at < DISCOVERY_TTL_MS) return namespacedResources.list;
    interface ResourceList { resources?: Array<{ name: string; kind: string; namespaced: boolean; verbs?: string[] }> }
    const get = <T>(path: string) => transport.request<T>({ verb: 'discover', kind: '', what: `discovery ${path}`, method: HttpMethod.GET, path, signal });
    const groups = await get<{ groups?: Array<{ preferredVersion?: { groupVersion?: string } }> }>('/apis');
    const versions = ['v1', ...(groups.groups ?? []).map((g) => g.preferredVersion?.groupVersion).filter((v): v is string => !!v)];
    const list: Array<{ apiVersion: string; kind: string; resource: ServedResource }> = [];
    for (const apiVersion of versions) {
      const resources = await get<ResourceList>(apiVersion === 'v1' ? '/api/v1' : `/apis/${apiVersion}`);
      for (const r of resources.resources ?? []) {
        if (!r.namespaced || r.name.includes('/') || !r.verbs?.includes('list')) continue;
        list.push({ apiVersion, kind: r.kind, resource: { name: r.name, namespaced: true } });
      }
    }
    namespacedResources = { at: Date.now(), list };
    return list;
  }

  // ---- waiting on the cache ----

  /**
   * Resolves when `check` returns true, re-checking on every cache change in `namespaces` and when
   * `check` asks for it (`recheckIn`, for grace periods that end with no change). Rejects when
   * `check` throws, on abort, after `timeoutMs` with `onTimeout()`, or when the watch of one of
   * `kinds` keeps failing (the cache would only show stale state).
   */
  function waitForCache(options: {
    namespaces: readonly string[];
    kinds: readonly CacheKind[];
    check: (recheckIn: (ms: number) => void) => boolean;
    timeoutMs?: number;
    onTimeout?: () => Error;
    signal?: AbortSignal;
  }): Promise<void> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const watched = new Set(options.kinds.map(kindKey));
    return new Promise((resolve, reject) => {
      let settled = false;
      let recheck: NodeJS.Timeout | undefined;
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(recheck);
        unsubscribe();
        stopFailures();
        signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve();
      };
      const recheckIn = (ms: number) => {
        clearTimeout(recheck);
        recheck = setTimeout(run, ms);
      };
      const run = () => {
        if (settled) return;
        try {
          if (options.check(recheckIn)) finish();
        } catch (error) {
          finish(error as Error);
        }
      };
      const onAbort = () => finish(abortError(signal));
      const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => finish(options.onTimeout?.()), options.timeoutMs);
      const unsubscribe = cache.subscribe({ namespaces: options.namespaces }, run);
      const stopFailures = cache.onFailure((key, error) => {
        if (watched.has(key)) finish(error);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      run();
    });
  }

  function namespacesOf(refs: readonly ObjectRef[]): string[] {
    return [...new Set(refs.map((ref) => ref.namespace ?? ''))];
  }

  /** Pods (or ReplicaSets) of a workload: labelled for its deployment, in its namespace, matching its selector. */
  function selected(workload: KubeObject, kind: 'Pod' | 'ReplicaSet'): KubeObject[] {
    const deploymentId = workload.metadata.labels?.[DEPLOYMENT_LABEL];
    if (!deploymentId) return [];
    const selector = (workload.spec as { selector?: unknown } | undefined)?.selector;
    return cache
      .labelled(deploymentId, kind)
      .filter((obj) => obj.metadata.namespace === workload.metadata.namespace && matchesSelector(selector, obj.metadata.labels));
  }

  /** The cached object, unless the cache has not yet seen keelson's own last write to it. */
  function caughtUp(ref: ObjectRef): { object: KubeObject | undefined; current: boolean } {
    const object = cache.get(ref);
    const last = known.get(refKey(ref));
    if (!last?.uid) return { object, current: true };
    if (!object || object.metadata.uid !== last.uid) return { object, current: false };
    const generation = object.metadata.generation;
    return { object, current: last.generation === undefined || typeof generation !== 'number' || generation >= last.generation };
  }

  // ---- apply ----

  async function apply(objects: KubeObject[], options: ApplyOptions): Promise<ApplyResult> {
    const { namespace, deploymentId, signal } = options;
    const allowAdopt = options.allowAdopt ?? false;
    if (signal.aborted) throw abortError(signal);
    const sorted = sortForApply(objects);
    const served = await servedKinds(sorted, signal, true);

    // Resolve each object's scope and namespace; a kind nobody serves fails before any write.
    interface Plan {
      object: KubeObject;
      ref: ObjectRef;
      resource: ServedResource | undefined;
      live: KubeObject | undefined;
      adoptedFrom?: string;
    }
    const plans: Plan[] = [];
    for (const original of sorted) {
      const resource = served.get(`${original.apiVersion} ${original.kind}`);
      const scope = resource ? (resource.namespaced ? 'Namespaced' : 'Cluster') : crdScope(objects, original.apiVersion, original.kind);
      const what = describeRef({ kind: original.kind, name: original.metadata.name, namespace: original.metadata.namespace ?? namespace });
      if (!scope) {
        throw new TerminalError(`Kubernetes API rejected ${what}: the cluster does not serve ${original.kind} in ${original.apiVersion}, and no CustomResourceDefinition in the manifests defines it. Nothing was applied.`, {
          code: 'kube_rejected',
        });
      }
      const object = structuredClone(original);
      if (scope === 'Namespaced') object.metadata.namespace ??= namespace;
      else delete object.metadata.namespace;
      plans.push({ object, ref: refOf(object), resource, live: undefined });
    }

    // Namespaced mode: refuse what keelson's rights do not cover before any request about it.
    if (scoped) {
      const refusals = namespaceRefusals(plans.map((plan) => plan.ref), scoped);
      if (refusals.length > 0) throw new TerminalError(namespaceRefusalMessage(refusals), { code: 'namespace_not_allowed' });
      for (const ns of new Set(plans.map((plan) => plan.ref.namespace ?? ''))) {
        // keelson's RoleBinding in a namespace lets it GET that Namespace (RBAC reads
        // GET /api/v1/namespaces/N as a request in N). Without the namespace there is no
        // RoleBinding either, so the API server answers 403 before it could answer 404.
        let live: KubeObject | undefined;
        try {
          live = await getObject('v1', 'Namespace', { name: 'namespaces', namespaced: false }, ns, undefined, signal);
        } catch (error) {
          if (!(error instanceof TerminalError && httpStatus(error.cause) === 403)) throw error;
        }
        if (!live) throw new TerminalError(namespaceMissingMessage(ns), { code: 'namespace_missing' });
      }
    }

    // Ownership, from the cache or (for objects it does not hold) a GET. Nothing is written yet.
    await cache.ensure([NAMESPACE_KIND, ...[...served.keys()].map((key) => { const [apiVersion = '', kind = ''] = key.split(' '); return { apiVersion, kind }; })], signal);
    const refused: Array<{ what: string; owner: string }> = [];
    for (const plan of plans) {
      if (plan.resource) plan.live = await liveOf(plan.ref, plan.resource, signal);
      const ownership = decideOwnership(plan.object, plan.live, deploymentId, allowAdopt);
      if (ownership.verdict === 'refused') refused.push({ what: describeRef(plan.ref), owner: ownership.owner });
      if (ownership.verdict === 'adopt') plan.adoptedFrom = ownership.owner;
    }
    if (refused.length > 0) throw new TerminalError(refusalMessage(refused, deploymentId), { code: 'owned_by_other' });

    // Namespaces the objects go into that neither exist nor are in the manifests.
    const inBatch = new Set(plans.filter((p) => p.ref.kind === 'Namespace').map((p) => p.ref.name));
    const needed = new Set(plans.map((p) => p.ref.namespace).filter((ns): ns is string => !!ns && !inBatch.has(ns)));
    for (const ns of needed) {
      if (scoped || cache.get({ ...NAMESPACE_KIND, name: ns })) continue; // namespaced mode: checked above
      // Create, never apply: labelling someone else's namespace as keelson's would make it
      // keelson's to delete at teardown.
      try {
        await transport.request({
          verb: 'create',
          kind: 'Namespace',
          what: `Namespace ${ns}`,
          method: HttpMethod.POST,
          path: '/api/v1/namespaces',
          query: { fieldManager },
          body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } } },
          signal,
          answers: [409],
        });
        log.info({ namespace: ns }, 'created namespace');
      } catch (error) {
        if (!(error instanceof TerminalError && httpStatus(error.cause) === 409)) throw error;
      }
    }

    const withCrds = objects.some((obj) => obj.kind === 'CustomResourceDefinition');
    const changes: Change[] = [];
    for (const plan of plans) {
      const what = describeRef(plan.ref);
      // A custom resource of a CRD applied just before needs it established first.
      const resource = plan.resource ?? (await transport.resourceFor(plan.ref.apiVersion, plan.ref.kind, what, signal, withCrds ? CRD_ESTABLISH_WAIT_MS : 0));
      const stamped = stampLabels(plan.object, deploymentId, plan.live);
      const hash = hashOf(stamped);
      const change: Change = { ref: plan.ref, action: 'created', paths: [], ...(plan.adoptedFrom ? { adoptedFrom: plan.adoptedFrom } : {}) };
      const last = plan.live ? known.get(refKey(plan.ref)) : undefined;
      if (plan.live && last?.hash !== undefined && last.hash !== hash) {
        // What this process last applied differs from what it applies now: the object changes,
        // whatever else happened to it meanwhile, so a dry-run could only confirm it (one request
        // per changed object per rollout saved: an image bump costs one write, not two requests).
        change.action = 'configured';
        change.paths = ownChangedPaths(stamped, plan.live);
      } else if (plan.live) {
        if (last?.hash === hash && last.resourceVersion !== undefined && last.resourceVersion === plan.live.metadata.resourceVersion) {
          changes.push({ ...change, action: 'unchanged' });
          continue;
        }
        const dryRun = await serverSideApply(stamped, resource, signal, true);
        if (dryRun.metadata.resourceVersion) {
          // Compare with the live object at the version the dry-run saw; the cache may lag.
          const live =
            plan.live.metadata.resourceVersion === dryRun.metadata.resourceVersion && !TRIMMED_KINDS.has(plan.ref.kind)
              ? plan.live
              : ((await getObject(plan.ref.apiVersion, plan.ref.kind, resource, plan.ref.name, plan.ref.namespace, signal)) ?? plan.live);
          const { changed } = assessDrift(dryRun, live, fieldManager);
          if (changed.length === 0) {
            remember(plan.ref, { hash, resourceVersion: live.metadata.resourceVersion });
            changes.push({ ...change, action: 'unchanged' });
            continue;
          }
          change.action = 'configured';
          change.paths = changed;
        }
      }
      const written = await serverSideApply(stamped, resource, signal, false);
      remember(plan.ref, {
        hash,
        resourceVersion: written.metadata.resourceVersion,
        uid: written.metadata.uid as string | undefined,
        generation: written.metadata.generation as number | undefined,
      });
      changes.push(change);
    }
    const counts = { created: 0, configured: 0, unchanged: 0 };
    for (const change of changes) counts[change.action] += 1;
    log.info({ deploymentId, ...counts }, 'applied objects');
    return { inventory: plans.map((plan) => plan.ref), changes };
  }

  // ---- diff ----

  async function diff(objects: KubeObject[], options: { namespace: string; deploymentId: string; signal: AbortSignal; release?: object }): Promise<DriftedObject[]> {
    const { namespace, deploymentId, signal, release } = options;
    if (release) inSync.delete(release);
    const served = await servedKinds(objects, signal);
    await cache.ensure([...served.keys()].map((key) => { const [apiVersion = '', kind = ''] = key.split(' '); return { apiVersion, kind }; }), signal);
    const drifted: DriftedObject[] = [];
    // each object found in sync at this resourceVersion; undefined once one was not
    let compared: Array<{ ref: ObjectRef; resourceVersion: string }> | undefined = [];
    for (const original of sortForApply(objects)) {
      const resource = served.get(`${original.apiVersion} ${original.kind}`);
      const object = structuredClone(original);
      if (!resource || resource.namespaced) object.metadata.namespace ??= namespace;
      else delete object.metadata.namespace;
      const ref = refOf(object);
      const cached = resource && inScope(ref) ? await liveOf(ref, resource, signal) : undefined;
      if (!resource || !cached || cached.metadata.labels?.[DEPLOYMENT_LABEL] !== deploymentId) {
        drifted.push({ ref, reason: 'missing', paths: [] });
        continue;
      }
      const stamped = stampLabels(object, deploymentId, cached);
      const hash = hashOf(stamped);
      const last = known.get(refKey(ref));
      if (last?.hash === hash && last.resourceVersion !== undefined && last.resourceVersion === cached.metadata.resourceVersion) {
        compared?.push({ ref, resourceVersion: last.resourceVersion });
        continue;
      }
      const dryRun = await serverSideApply(stamped, resource, signal, true);
      const live =
        cached.metadata.resourceVersion === dryRun.metadata.resourceVersion && !TRIMMED_KINDS.has(ref.kind)
          ? cached
          : await getObject(ref.apiVersion, ref.kind, resource, ref.name, ref.namespace, signal);
      if (!live) {
        drifted.push({ ref, reason: 'missing', paths: [] });
        continue;
      }
      const { changed, drifted: paths } = assessDrift(dryRun, live, fieldManager);
      if (changed.length === 0 && live.metadata.resourceVersion !== undefined) {
        remember(ref, { hash, resourceVersion: live.metadata.resourceVersion });
        compared?.push({ ref, resourceVersion: live.metadata.resourceVersion });
      } else {
        compared = undefined;
      }
      if (paths.length > 0) drifted.push({ ref, reason: 'changed', paths });
    }
    if (release && compared && drifted.length === 0 && !signal.aborted) inSync.set(release, compared);
    return drifted;
  }

  function inSyncSince(release: object, deploymentId: string): boolean {
    const compared = inSync.get(release);
    if (!compared) return false;
    for (const { ref, resourceVersion } of compared) {
      const { object, current } = caughtUp(ref);
      if (!object || !current || object.metadata.labels?.[DEPLOYMENT_LABEL] !== deploymentId || object.metadata.resourceVersion !== resourceVersion) {
        inSync.delete(release);
        return false;
      }
    }
    return true;
  }

  // ---- prune, teardown ----

  /** The first object in `namespace` that is not this deployment's and would be lost with it, if any. */
  async function foreignObjectIn(namespace: string, deploymentId: string, signal: AbortSignal): Promise<string | undefined> {
    for (const { apiVersion, kind, resource } of await allNamespacedResources(signal)) {
      if (kind === 'Event') continue;
      let continueToken: string | undefined;
      do {
        let page;
        try {
          page = await transport.list(apiVersion, kind, resource, {
            namespace,
            labelSelector: `${DEPLOYMENT_LABEL}!=${deploymentId}`,
            limit: 100,
            continue: continueToken,
            what: `${kind} objects in namespace ${namespace}`,
            signal,
          });
        } catch (error) {
          const status = error instanceof TerminalError ? httpStatus(error.cause) : undefined;
          // What keelson may not look at might be there: keep the namespace.
          if (status === 403) return `${resource.name} keelson may not list`;
          if (status === 404 || status === 405) break; // gone since discovery, or not listable after all
          throw error;
        }
        for (const obj of page.items) {
          // What Kubernetes itself puts in every namespace, what is already going, and what a
          // controller made (its owner is counted instead).
          if (kind === 'ServiceAccount' && obj.metadata.name === 'default') continue;
          if (kind === 'ConfigMap' && obj.metadata.name === 'kube-root-ca.crt') continue;
          if (kind === 'Secret' && (obj as { type?: string }).type === 'kubernetes.io/service-account-token') continue;
          if (obj.metadata.deletionTimestamp || isControlled(obj)) continue;
          return describeRef({ kind, name: obj.metadata.name, namespace });
        }
        continueToken = page.continue;
      } while (continueToken);
    }
    return undefined;
  }

  /**
   * Deletes a namespace keelson created (managed-by label, and not labelled for another
   * deployment) when nothing but this deployment's objects is left in it. Returns why it was
   * kept, or undefined when it was deleted or is already gone.
   */
  async function deleteNamespaceIfEmpty(name: string, deploymentId: string, signal: AbortSignal): Promise<string | undefined> {
    const ref: ObjectRef = { ...NAMESPACE_KIND, name };
    const resource: ServedResource = { name: 'namespaces', namespaced: false };
    const live = await liveOf(ref, resource, signal);
    if (!live) return undefined;
    const notOursToDelete = (current: KubeObject): string | undefined => {
      const labels = current.metadata.labels ?? {};
      if (labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) return 'keelson did not create it';
      const owner = labels[DEPLOYMENT_LABEL];
      if (owner !== undefined && owner !== deploymentId) return `it belongs to keelson deployment ${owner}`;
      return undefined;
    };
    const reason = notOursToDelete(live);
    if (reason || live.metadata.deletionTimestamp) return reason;
    const foreign = await foreignObjectIn(name, deploymentId, signal);
    if (foreign) return `it still holds ${foreign}`;
    return await deleteUnlessKept(ref, live, resource, notOursToDelete, 'Background', signal);
  }

  async function prune(deploymentId: string, given: readonly ObjectRef[], options: { signal: AbortSignal }): Promise<ObjectRef[]> {
    const { signal } = options;
    const outside = given.filter((ref) => !inScope(ref));
    // Namespaced mode: what lies outside the listed namespaces is beyond keelson's rights (the
    // list changed since it was applied): left in place, and said so.
    if (outside.length > 0) log.info({ deploymentId, kept: outside.map(describeRef), reason: 'outside KEELSON_NAMESPACES' }, 'stale objects kept');
    const stale = given.filter(inScope);
    if (stale.length === 0) return [];
    // Fresh: a kind believed unserved would be skipped as if its objects were gone already.
    const served = await servedKinds(stale, signal, true);
    await cache.ensure([NAMESPACE_KIND, ...stale.filter((ref) => served.has(`${ref.apiVersion} ${ref.kind}`)).map(cacheKindOf)], signal);
    const deleted: ObjectRef[] = [];
    for (const ref of sortForDelete([...stale])) {
      const resource = served.get(`${ref.apiVersion} ${ref.kind}`);
      const live = resource ? await liveOf(ref, resource, signal) : undefined;
      if (!resource || !live) continue;
      // Safety: only what still carries this deployment's label.
      const kept =
        notOurs(deploymentId)(live) ??
        (ref.kind === 'Namespace'
          ? await deleteNamespaceIfEmpty(ref.name, deploymentId, signal)
          : await deleteUnlessKept(ref, live, resource, notOurs(deploymentId), 'Background', signal));
      if (kept) {
        log.info({ deploymentId, object: describeRef(ref), reason: kept }, 'stale object kept');
        continue;
      }
      known.delete(refKey(ref));
      deleted.push(ref);
    }
    if (deleted.length > 0) log.info({ deploymentId, deleted: deleted.map(describeRef) }, 'pruned objects');
    return deleted;
  }

  async function teardown(deploymentId: string, inventory: readonly ObjectRef[], options: { signal: AbortSignal; timeoutMs?: number }): Promise<TeardownResult> {
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? deps.stopTimeoutMs ?? 300_000;
    const all = [...new Map(inventory.map((ref) => [refKey(ref), ref] as const)).values()];
    const unique = all.filter(inScope);
    const kept: TeardownResult['kept'] = all.filter((ref) => !inScope(ref)).map((ref) => ({ ref, reason: 'it is outside the namespaces KEELSON_NAMESPACES lists' }));
    const served = await servedKinds(unique, signal, true);
    await cache.ensure([NAMESPACE_KIND, ...unique.filter((ref) => served.has(`${ref.apiVersion} ${ref.kind}`)).map(cacheKindOf)], signal);
    const deleted: ObjectRef[] = [];
    const objects = unique.filter((ref) => ref.kind !== 'Namespace');
    for (const ref of sortForDelete(objects)) {
      const resource = served.get(`${ref.apiVersion} ${ref.kind}`);
      const live = resource ? await liveOf(ref, resource, signal) : undefined;
      if (!resource || !live) continue; // gone already (a re-run after a crash)
      // Foreground: the object stays until its dependents (ReplicaSets, Pods) are gone, so "gone" means gone.
      const reason = await deleteUnlessKept(ref, live, resource, notOurs(deploymentId), 'Foreground', signal);
      if (reason) kept.push({ ref, reason });
      else deleted.push(ref);
    }
    const gone = (refs: readonly ObjectRef[]) => refs.every((ref) => !cache.get(ref));
    const still = (refs: readonly ObjectRef[]) => {
      const left = refs.filter((ref) => cache.get(ref));
      const finalizers = left.flatMap((ref) => (cache.get(ref)?.metadata.finalizers as string[] | undefined) ?? []);
      return new TransientError(
        `Teardown timed out after ${Math.round(timeoutMs / 1000)} s: ${left.map(describeRef).join(', ')} ${left.length === 1 ? 'is' : 'are'} still being deleted` +
          `${finalizers.length > 0 ? ` (finalizers: ${[...new Set(finalizers)].join(', ')})` : ''}. Running teardown again continues where it stopped.`,
        { code: 'teardown_timeout' },
      );
    };
    await waitForCache({ namespaces: namespacesOf(deleted), kinds: deleted.map(cacheKindOf), check: () => gone(deleted), timeoutMs, onTimeout: () => still(deleted), signal });

    // Namespaced mode: keelson created no namespace, and may not delete one.
    const namespaces = scoped
      ? new Set<string>()
      : new Set([...unique.filter((ref) => ref.kind === 'Namespace').map((ref) => ref.name), ...objects.map((ref) => ref.namespace).filter((ns): ns is string => !!ns)]);
    const deletedNamespaces: ObjectRef[] = [];
    for (const name of namespaces) {
      const ref: ObjectRef = { ...NAMESPACE_KIND, name };
      if (!(await liveOf(ref, { name: 'namespaces', namespaced: false }, signal))) continue;
      const reason = await deleteNamespaceIfEmpty(name, deploymentId, signal);
      if (reason) kept.push({ ref, reason });
      else deletedNamespaces.push(ref);
    }
    await waitForCache({ namespaces: [''], kinds: [NAMESPACE_KIND], check: () => gone(deletedNamespaces), timeoutMs, onTimeout: () => still(deletedNamespaces), signal });
    for (const ref of [...deleted, ...deletedNamespaces]) known.delete(refKey(ref));
    log.info({ deploymentId, deleted: deleted.length + deletedNamespaces.length, kept: kept.length }, 'tore down deployment');
    return { deleted: [...deleted, ...deletedNamespaces], kept };
  }

  // ---- stop ----

  /** Sets a workload's replicas through its scale subresource (what an autoscaler would use). */
  async function patchScale(ref: ObjectRef, resource: ServedResource, replicas: number, signal: AbortSignal): Promise<void> {
    await transport.request({
      verb: 'scale',
      kind: ref.kind,
      what: describeRef(ref),
      method: HttpMethod.PATCH,
      path: `${transport.objectPath(ref.apiVersion, resource, ref.name, ref.namespace)}/scale`,
      body: { spec: { replicas } },
      contentType: MERGE_PATCH,
      signal,
    });
  }

  async function scaleToZero(
    deploymentId: string,
    inventory: readonly ObjectRef[],
    options: { signal: AbortSignal; timeoutMs?: number },
  ): Promise<{ scaled: ObjectRef[]; unscalable: ObjectRef[]; images: string[] }> {
    const { signal } = options;
    const workloadKinds = new Set(WORKLOAD_KINDS.map((k) => k.kind));
    const workloads = inventory.filter((ref) => workloadKinds.has(ref.kind));
    await cache.ensure(workloads.map(cacheKindOf), signal);
    const scaled: ObjectRef[] = [];
    const unscalable: ObjectRef[] = [];
    for (const ref of workloads) {
      const live = cache.get(ref);
      if (!live || live.metadata.labels?.[DEPLOYMENT_LABEL] !== deploymentId) continue;
      // DaemonSets run one pod per node and have no scale subresource: reported, not stopped.
      if (ref.kind === 'DaemonSet') {
        unscalable.push(ref);
        continue;
      }
      scaled.push(ref);
      if ((live.spec as { replicas?: number } | undefined)?.replicas === 0) continue;
      const resource = await transport.resourceFor(ref.apiVersion, ref.kind, describeRef(ref), signal);
      await patchScale(ref, resource, 0, signal);
    }
    const timeoutMs = options.timeoutMs ?? deps.stopTimeoutMs ?? 300_000;
    const running = (ref: ObjectRef): boolean => {
      const obj = cache.get(ref);
      if (!obj) return false; // deleted: nothing runs
      const status = (obj.status ?? {}) as { readyReplicas?: number; replicas?: number; observedGeneration?: number };
      const generation = obj.metadata.generation;
      if (typeof generation === 'number' && typeof status.observedGeneration === 'number' && status.observedGeneration < generation) return true;
      if ((obj.spec as { replicas?: number } | undefined)?.replicas !== 0) return true;
      return int(status.readyReplicas) + int(status.replicas) > 0;
    };
    await waitForCache({
      namespaces: namespacesOf(scaled),
      kinds: scaled.map(cacheKindOf),
      check: () => !scaled.some(running),
      timeoutMs,
      onTimeout: () => {
        const left = scaled.filter(running).map(describeRef);
        return new TransientError(`Stopping timed out after ${Math.round(timeoutMs / 1000)} s: ${left.join(', ')} still ${left.length === 1 ? 'has' : 'have'} ready replicas.`, {
          code: 'stop_timeout',
        });
      },
      signal,
    });
    // what the stopped workloads would run again: the stop records it as the deployed image
    const images = new Set<string>();
    for (const ref of scaled) {
      const containers = (cache.get(ref)?.spec as { template?: { spec?: { containers?: Array<{ image?: unknown }> } } } | undefined)?.template?.spec?.containers;
      for (const c of containers ?? []) if (typeof c.image === 'string') images.add(c.image);
    }
    log.info({ deploymentId, scaled: scaled.length, unscalable: unscalable.length }, 'scaled to zero');
    return { scaled, unscalable, images: [...images] };
  }

  // ---- verify ----

  async function verify(
    refs: readonly ObjectRef[],
    options: { signal?: AbortSignal; onProgress?: (message: string) => void; failFastGraceMs?: number },
  ): Promise<{ message: string }> {
    const { signal, onProgress } = options;
    const graceMs = options.failFastGraceMs ?? DEFAULT_FAIL_FAST_GRACE_MS;
    if (signal?.aborted) throw abortError(signal);
    const workloads = refs.filter((ref) => VERIFIED_KINDS.has(ref.kind));
    if (workloads.length === 0) return { message: `No workloads to wait for among ${plural(refs.length, 'applied object')}.` };
    const tracker = new ProblemTracker();
    let lastProgress = '';

    /** True when every workload is Current; throws the rollout's failure. */
    const evaluate = (recheckIn: (ms: number) => void): boolean => {
      const now = Date.now();
      const present = new Set<string>();
      const states = workloads.map((ref) => ({ ref, ...caughtUp(ref) }));
      let firstProblem: string | undefined;
      let nextDue: number | undefined;
      for (const state of states) {
        if (!state.current) continue;
        const health = assessHealth(state.object);
        if (health.status === 'Failed') throw new TerminalError(`${describeRef(state.ref)} failed: ${health.message}`, { code: ROLLOUT_FAILED });
        const object = state.object;
        if (!object) continue;
        // A status older than the spec says nothing about which pods are new.
        const observed = (object.status as { observedGeneration?: number } | undefined)?.observedGeneration;
        const generation = object.metadata.generation;
        if (typeof generation === 'number' && typeof observed === 'number' && observed < generation) continue;
        const candidates = state.ref.kind === 'Pod' ? [object] : POD_OWNER_KINDS.has(state.ref.kind) ? selected(object, 'Pod') : [];
        const replicaSets = state.ref.kind === 'Deployment' ? selected(object, 'ReplicaSet') : [];
        for (const pod of candidates) {
          if (state.ref.kind !== 'Pod' && !isNewRevisionPod(object, pod, replicaSets)) continue;
          const key = `${describeRef(state.ref)} ${pod.metadata.name}`;
          present.add(key);
          const problem = podProblem(pod);
          firstProblem ??= problem?.message;
          const due = tracker.observe(key, problem, now, graceMs);
          if (due !== undefined && (nextDue === undefined || due < nextDue)) nextDue = due;
          if (problem !== undefined && due !== undefined && due <= now) {
            throw new TerminalError(`${describeRef(state.ref)} failed: ${problem.message}.`, { code: ROLLOUT_FAILED });
          }
        }
      }
      tracker.retain(present);
      if (nextDue !== undefined) recheckIn(Math.max(0, nextDue - Date.now()) + 5);
      const pending = states.filter((state) => !state.current || assessHealth(state.object).status !== 'Current');
      const first = pending[0];
      if (!first) return true;
      const health = first.current ? assessHealth(first.object) : { message: 'Waiting for the cluster cache to see the applied object.' };
      const message =
        `${states.length - pending.length} of ${plural(states.length, 'workload')} Current; ${describeRef(first.ref)}: ${health.message}` +
        (firstProblem ? ` Meanwhile ${firstProblem}.` : '');
      if (message !== lastProgress) {
        lastProgress = message;
        onProgress?.(message);
      }
      return false;
    };

    // No timeout of its own: the caller aborts through the signal.
    const kinds = [...workloads.map(cacheKindOf), POD_KIND, REPLICA_SET_KIND];
    const names = workloads.map(describeRef).join(', ');
    await cache.ensure(kinds, signal);
    await waitForCache({ namespaces: namespacesOf(workloads), kinds, check: evaluate, signal });
    return { message: `${plural(workloads.length, 'workload')} ${workloads.length === 1 ? 'is' : 'are'} Current: ${names}.` };
  }

  // ---- live health ----

  function entriesOf(inventory: readonly ObjectRef[]): InventoryEntry[] {
    return inventory.map((ref) => {
      const object = cache.get(ref);
      const owner = object && POD_OWNER_KINDS.has(ref.kind);
      return {
        ref,
        object,
        pods: owner ? selected(object, 'Pod') : [],
        replicaSets: owner && ref.kind === 'Deployment' ? selected(object, 'ReplicaSet') : [],
      };
    });
  }

  function kindsFor(inventory: readonly ObjectRef[]): CacheKind[] {
    return [...inventory.map(cacheKindOf), POD_KIND, REPLICA_SET_KIND];
  }

  async function observe(deploymentId: string, inventory: readonly ObjectRef[], options: { signal?: AbortSignal } = {}): Promise<Observation> {
    await cache.ensure(kindsFor(inventory), options.signal);
    return observeInventory(entriesOf(inventory));
  }

  function subscribeHealth(deploymentId: string, inventory: readonly ObjectRef[], listener: (observation: Observation) => void): () => void {
    let last = '';
    let scheduled = false;
    let active = true;
    const recompute = () => {
      scheduled = false;
      if (!active) return;
      const observation = observeInventory(entriesOf(inventory));
      const key = `${observation.status} ${observation.message}`;
      if (key === last) return;
      last = key;
      listener(observation);
    };
    // A burst of changes (a rollout's pod churn) is assessed once.
    const schedule = () => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(recompute);
    };
    const unsubscribe = cache.subscribe({ deployments: [deploymentId], namespaces: namespacesOf(inventory) }, schedule);
    cache.ensure(kindsFor(inventory)).then(schedule, (error: unknown) => {
      if (!active) return;
      listener({ status: 'Unknown', message: `Live health is unavailable: ${(error as Error).message}`, objects: [] });
    });
    return () => {
      active = false;
      unsubscribe();
    };
  }

  async function labelledRefs(deploymentId: string, kinds: readonly CacheKind[], options: { signal?: AbortSignal } = {}): Promise<ObjectRef[]> {
    await cache.ensure(kinds, options.signal);
    const wanted = new Set(kinds.map((k) => k.kind));
    return cache
      .labelled(deploymentId)
      .filter((obj) => wanted.has(obj.kind) && !isControlled(obj))
      .map(refOf);
  }

  async function liveStatus(deploymentId: string): Promise<Array<ObjectRef & Health>> {
    await cache.ensure(STATUS_KINDS);
    const kinds = new Set(STATUS_KINDS.map((k) => k.kind));
    return cache
      .labelled(deploymentId)
      .filter((obj) => kinds.has(obj.kind) && !isControlled(obj))
      .map((obj) => ({ ...refOf(obj), ...assessHealth(obj) }));
  }

  return {
    apply,
    diff,
    inSyncSince,
    prune,
    scaleToZero,
    teardown,
    verify,
    observe,
    subscribeHealth,
    labelledRefs,
    liveStatus,
    async workloads(deploymentId, options = {}) {
      const kinds = WORKLOAD_KINDS.filter((k) => k.kind !== 'ReplicaSet');
      await cache.ensure(kinds, options.signal);
      const wanted = new Set(kinds.map((k) => k.kind));
      return cache
        .labelled(deploymentId)
        .filter((obj) => wanted.has(obj.kind) && !isControlled(obj))
        .map((obj) => ({ ...refOf(obj), uid: obj.metadata.uid ?? null }));
    },
    async recordEvent(event, options = {}) {
      const namespace = event.metadata.namespace ?? 'default';
      try {
        await transport.request({
          verb: 'create',
          kind: 'Event',
          what: `Event ${namespace}/${event.metadata.name}`,
          method: HttpMethod.POST,
          path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
          body: event,
          signal: options.signal,
          answers: [409],
        });
        return 'created';
      } catch (error) {
        if (error instanceof TerminalError && httpStatus(error.cause) === 409) return 'exists';
        throw error;
      }
    },
    async get(ref, options) {
      const resource = await transport.served(ref.apiVersion, ref.kind, describeRef(ref), options.signal);
      if (!resource || !inScope(ref)) return undefined;
      await cache.ensure([cacheKindOf(ref)], options.signal);
      return await liveOf(ref, resource, options.signal);
    },
    async scaleTo(deploymentId, ref, replicas, options) {
      const { signal } = options;
      const resource = await transport.resourceFor(ref.apiVersion, ref.kind, describeRef(ref), signal);
      await cache.ensure([cacheKindOf(ref)], signal);
      const live = await liveOf(ref, resource, signal);
      if (live && live.metadata.labels?.[DEPLOYMENT_LABEL] !== deploymentId) {
        throw new TerminalError(refusalMessage([{ what: describeRef(ref), owner: ownerOf(live) }], deploymentId), { code: 'owned_by_other' });
      }
      if (live && (live.spec as { replicas?: number } | undefined)?.replicas === replicas) return;
      await patchScale(ref, resource, replicas, signal);
      // Read-your-writes: the Scale answer carries no generation, so read the workload's, and
      // `verify` then waits until the cache shows at least it (not the size from before).
      const after = await getObject(ref.apiVersion, ref.kind, resource, ref.name, ref.namespace, signal);
      if (after) remember(ref, { uid: after.metadata.uid as string | undefined, generation: after.metadata.generation as number | undefined });
    },
    async serves(apiVersion, kind, options) {
      return (await transport.served(apiVersion, kind, `${kind} objects`, options.signal, true)) !== undefined;
    },
    async labelledObjects(deploymentId, kinds, options) {
      const served = await servedKinds(kinds, options.signal);
      const mirrored = kinds.filter((k) => served.has(`${k.apiVersion} ${k.kind}`));
      await cache.ensure(mirrored, options.signal);
      const wanted = new Set(mirrored.map((k) => k.kind));
      return cache.labelled(deploymentId).filter((obj) => wanted.has(obj.kind) && !isControlled(obj));
    },
    close: () => cache.close(),
  };
}
