// keelson's only way to a Kubernetes cluster: server-side apply in dependency order, rollout
// verification by watching, stop (scale to 0), pruning and live status, through
// @kubernetes/client-node 2.x. Decisions (health, order, fail-fast) are pure functions in
// health.ts, applyOrder.ts and rollout.ts; this file only does I/O.
//
// Design notes and hazards:
// - Objects are handled as raw JSON. client-node would otherwise deserialize responses into model
//   classes (Date objects, unknown fields dropped); `RawObjectApi` overrides that.
// - Cancellation: client-node's KubernetesObjectApi takes no AbortSignal, so a request-scoped
//   signal travels through AsyncLocalStorage to a middleware that sets it on every request. Each
//   request also gets its own timeout (a paused API server must not hang a deploy forever).
// - Every request is classified (kubeErrors.ts) and counted in the metrics by verb and outcome.
// - Verification never polls: it watches each workload, its pods and (for Deployments) its
//   ReplicaSets, and fails fast when a pod of the new revision stays in a fail-fast state.
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ApiException,
  HttpMethod,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  ServerConfiguration,
  Watch,
  createConfiguration,
  type KubernetesObject,
  type ResponseContext,
} from '@kubernetes/client-node';
import { TerminalError, TransientError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { sortForApply } from './applyOrder.ts';
import { assessHealth } from './health.ts';
import { abortError, classifyKubeError, httpStatus, ROLLOUT_FAILED } from './kubeErrors.ts';
import { startResourceWatch, type ListResult, type ResourceWatchHandle } from './resourceWatch.ts';
import {
  POD_OWNER_KINDS,
  ProblemTracker,
  VERIFIED_KINDS,
  isNewRevisionPod,
  podProblem,
  selectorToString,
} from './rollout.ts';
import {
  DEPLOYMENT_LABEL,
  MANAGED_BY_LABEL,
  describeRef,
  type Health,
  type KubeObject,
  type ObjectRef,
} from './types.ts';

export interface KubeClient {
  apply(objects: KubeObject[], options: { namespace: string; signal?: AbortSignal }): Promise<ObjectRef[]>;
  verify(
    refs: ObjectRef[],
    options: { signal?: AbortSignal; onProgress?: (message: string) => void; failFastGraceMs?: number },
  ): Promise<{ message: string }>;
  scaleToZero(
    deploymentId: string,
    namespace: string,
    options?: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<{ scaled: ObjectRef[]; unscalable: ObjectRef[] }>;
  prune(deploymentId: string, namespace: string, keep: ObjectRef[], options?: { signal?: AbortSignal }): Promise<ObjectRef[]>;
  liveStatus(deploymentId: string, namespace: string): Promise<Array<ObjectRef & Health>>;
}

export interface KubeClientDeps {
  kubeConfig: KubeConfig;
  log: Logger;
  metrics?: Metrics;
  /** Server-side apply field manager; `keelson` by default. */
  fieldManager?: string;
  /** Timeout of each single request (not of watches); 30 s by default. */
  requestTimeoutMs?: number;
  /** Consecutive transient failures after which a watch gives up; 5 by default. */
  watchMaxFailures?: number;
  /** First retry delay of a failed watch, doubled each time; 200 ms by default. */
  watchBackoffMs?: number;
  /** How long `scaleToZero` waits for 0 ready replicas unless told; 5 minutes by default. */
  stopTimeoutMs?: number;
}

/** Fail-fast grace period for pods of a new revision stuck in a failing state. */
export const DEFAULT_FAIL_FAST_GRACE_MS = 10_000;

/** What prune and live status look at: kind, apiVersion. Namespace is listed but never pruned. */
export const MANAGED_KINDS: ReadonlyArray<{ apiVersion: string; kind: string }> = [
  { apiVersion: 'v1', kind: 'Namespace' },
  { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition' },
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding' },
  { apiVersion: 'v1', kind: 'ConfigMap' },
  { apiVersion: 'v1', kind: 'Secret' },
  { apiVersion: 'v1', kind: 'PersistentVolumeClaim' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  { apiVersion: 'apps/v1', kind: 'DaemonSet' },
  { apiVersion: 'apps/v1', kind: 'ReplicaSet' },
  { apiVersion: 'batch/v1', kind: 'Job' },
  { apiVersion: 'batch/v1', kind: 'CronJob' },
  { apiVersion: 'v1', kind: 'Pod' },
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

const UNSERVED_TTL_MS = 60_000;
const CRD_ESTABLISH_WAIT_MS = 10_000;

interface ServedResource {
  name: string;
  namespaced: boolean;
}

/** KubernetesObjectApi answering raw JSON, plus the discovery and scale calls keelson needs. */
class RawObjectApi extends KubernetesObjectApi {
  protected override async processResponse<T extends KubernetesObject>(response: ResponseContext): Promise<T> {
    if (response.httpStatusCode >= 200 && response.httpStatusCode <= 299) {
      const text = await response.body.text();
      return (text ? JSON.parse(text) : {}) as T;
    }
    throw new ApiException(response.httpStatusCode, 'Unsuccessful HTTP Request', await response.getBodyAsAny(), response.headers);
  }

  /** Kinds (`v1 Widget`) and group versions (`example.com/v1`) the cluster did not serve, until when. */
  readonly #unserved = new Map<string, number>();

  /**
   * Discovery from memory: the resource, `null` when recently found unserved (live status asks
   * often; a CRD may be installed later, hence the expiry), undefined when a request is needed.
   */
  known(apiVersion: string, kind: string): ServedResource | null | undefined {
    const found = this.apiVersionResourceCache[apiVersion]?.resources.find((r) => r.kind === kind);
    if (found) return { name: found.name, namespaced: found.namespaced };
    const now = Date.now();
    if ((this.#unserved.get(apiVersion) ?? 0) > now || (this.#unserved.get(`${apiVersion} ${kind}`) ?? 0) > now) return null;
    return undefined;
  }

  /** Discovery: the resource for a kind, or undefined when the cluster does not serve it. */
  async served(apiVersion: string, kind: string): Promise<ServedResource | undefined> {
    try {
      const resource = await this.resource(apiVersion, kind);
      if (resource) return { name: resource.name, namespaced: resource.namespaced };
      this.#unserved.set(`${apiVersion} ${kind}`, Date.now() + UNSERVED_TTL_MS);
      return undefined;
    } catch (error) {
      if (httpStatus(error) !== 404) throw error;
      this.#unserved.set(apiVersion, Date.now() + UNSERVED_TTL_MS);
      return undefined;
    }
  }

  collectionPath(apiVersion: string, kind: string, namespace?: string): Promise<string> {
    return this.specUriPath({ apiVersion, kind, metadata: namespace ? { namespace } : {} }, 'list');
  }

  async patchScale(ref: ObjectRef, replicas: number): Promise<KubeObject> {
    const path = await this.specUriPath({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } }, 'patch');
    const context = this.configuration.baseServer.makeRequestContext(`${path}/scale`, HttpMethod.PATCH);
    context.setHeaderParam('Accept', 'application/json');
    context.setHeaderParam('Content-Type', PatchStrategy.MergePatch);
    context.setBody(JSON.stringify({ spec: { replicas } }));
    return this.requestPromise(context);
  }

  async listRaw(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    selectors: { fieldSelector?: string; labelSelector?: string } = {},
  ): Promise<ListResult> {
    const list = (await this.list(apiVersion, kind, namespace, undefined, undefined, undefined, selectors.fieldSelector, selectors.labelSelector)) as unknown as {
      items?: KubeObject[];
      metadata?: { resourceVersion?: string };
    };
    // List items carry no apiVersion/kind on a real server.
    const items = (list.items ?? []).map((item) => ({ ...item, apiVersion, kind }));
    return { items, resourceVersion: list.metadata?.resourceVersion };
  }
}

function plural(count: number, singular: string): string {
  return `${count} ${count === 1 ? singular : `${singular}s`}`;
}

function refKey(ref: ObjectRef): string {
  const group = ref.apiVersion.includes('/') ? ref.apiVersion.split('/')[0] : '';
  return `${group}/${ref.kind}/${ref.namespace ?? ''}/${ref.name}`;
}

function toRef(obj: KubeObject): ObjectRef {
  const ref: ObjectRef = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name };
  if (obj.metadata.namespace) ref.namespace = obj.metadata.namespace;
  return ref;
}

/** Objects created by a controller (ReplicaSets, Pods) inherit the labels but are not keelson's. */
function isControlled(obj: KubeObject): boolean {
  const owners = obj.metadata.ownerReferences;
  return Array.isArray(owners) && owners.some((owner) => (owner as { controller?: boolean }).controller === true);
}

function int(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}

export function createKubeClient(deps: KubeClientDeps): KubeClient {
  const { kubeConfig, log, metrics } = deps;
  const fieldManager = deps.fieldManager ?? 'keelson';
  const requestTimeoutMs = deps.requestTimeoutMs ?? 30_000;
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new TerminalError('The kubeconfig has no current cluster.', { code: 'config_invalid' });

  const requestSignal = new AsyncLocalStorage<AbortSignal>();
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kubeConfig },
    promiseMiddleware: [
      {
        pre: async (context) => {
          const signal = requestSignal.getStore();
          if (signal) context.setSignal(signal);
          return context;
        },
        post: async (response) => response,
      },
    ],
  });
  const api = new RawObjectApi(configuration);
  const watch = new Watch(kubeConfig);

  /** One logical request: timed, counted, cancellable, and classified when it fails. */
  async function request<T>(verb: string, what: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    if (signal?.aborted) throw abortError(signal);
    const timeout = AbortSignal.timeout(requestTimeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const endTimer = metrics?.kubeRequestDuration.startTimer({ verb });
    try {
      const result = await requestSignal.run(combined, fn);
      metrics?.kubeRequests.inc({ verb, outcome: 'ok' });
      return result;
    } catch (error) {
      const classified = classifyKubeError(error, what, signal);
      const outcome = classified instanceof TransientError ? 'transient' : classified instanceof TerminalError ? 'terminal' : 'aborted';
      metrics?.kubeRequests.inc({ verb, outcome });
      throw classified;
    } finally {
      endTimer?.();
    }
  }

  /** Discovery, counted as a request only when it is not answered from the cache. */
  async function discover(apiVersion: string, kind: string, what: string, signal?: AbortSignal): Promise<ServedResource | undefined> {
    const known = api.known(apiVersion, kind);
    if (known !== undefined) return known ?? undefined;
    return request('discover', what, signal, () => api.served(apiVersion, kind));
  }

  /**
   * Discovery for a write or a watch: a kind believed unserved is asked again (the CRD may have
   * just been applied), and `waitMs` gives a fresh CRD time to be established.
   */
  async function resourceFor(apiVersion: string, kind: string, what: string, signal?: AbortSignal, waitMs = 0): Promise<ServedResource> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const served = api.known(apiVersion, kind) || (await request('discover', what, signal, () => api.served(apiVersion, kind)));
      if (served) return served;
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (signal?.aborted) throw abortError(signal);
    }
    throw new TerminalError(`Kubernetes API rejected ${what}: the cluster does not serve ${kind} in ${apiVersion}.`, {
      code: 'kube_rejected',
    });
  }

  function listWatch(options: {
    apiVersion: string;
    kind: string;
    namespace?: string;
    what: string;
    fieldSelector?: string;
    labelSelector?: string;
    onChange: (items: ReadonlyMap<string, KubeObject>) => void;
    onError: (error: Error) => void;
  }): ResourceWatchHandle {
    let handle: ResourceWatchHandle | undefined;
    let stopped = false;
    void (async () => {
      try {
        await resourceFor(options.apiVersion, options.kind, options.what);
        const path = await api.collectionPath(options.apiVersion, options.kind, options.namespace);
        if (stopped) return;
        handle = startResourceWatch({
          path,
          what: options.what,
          apiVersion: options.apiVersion,
          kind: options.kind,
          fieldSelector: options.fieldSelector,
          labelSelector: options.labelSelector,
          watch,
          log,
          maxFailures: deps.watchMaxFailures,
          backoffBaseMs: deps.watchBackoffMs,
          list: (signal) =>
            request('list', options.what, signal, () =>
              api.listRaw(options.apiVersion, options.kind, options.namespace, {
                fieldSelector: options.fieldSelector,
                labelSelector: options.labelSelector,
              }),
            ),
          onChange: options.onChange,
          onError: options.onError,
          onWatchRequest: (outcome) => metrics?.kubeRequests.inc({ verb: 'watch', outcome }),
        });
      } catch (error) {
        if (!stopped) options.onError(error as Error);
      }
    })();
    return {
      stop: () => {
        stopped = true;
        handle?.stop();
      },
    };
  }

  async function apply(objects: KubeObject[], options: { namespace: string; signal?: AbortSignal }): Promise<ObjectRef[]> {
    const { namespace, signal } = options;
    const nsWhat = `Namespace ${namespace}`;
    const existing = await request('get', nsWhat, signal, () =>
      api.read({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }).then(
        () => true,
        (error: unknown) => {
          if (httpStatus(error) === 404) return false;
          throw error;
        },
      ),
    );
    if (!existing) {
      const ns: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { [MANAGED_BY_LABEL]: 'keelson' } } };
      await request('apply', nsWhat, signal, () => api.patch(ns, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply));
      log.info({ namespace }, 'created namespace');
    }

    const refs: ObjectRef[] = [];
    // Custom resources applied with their CRD may need a moment until the CRD is established.
    const withCrds = objects.some((obj) => obj.kind === 'CustomResourceDefinition');
    for (const original of sortForApply(objects)) {
      const object = structuredClone(original);
      const provisional = describeRef({ kind: object.kind, name: object.metadata.name, namespace: object.metadata.namespace ?? namespace });
      const served = await resourceFor(object.apiVersion, object.kind, provisional, signal, withCrds ? CRD_ESTABLISH_WAIT_MS : 0);
      if (served.namespaced) object.metadata.namespace ??= namespace;
      else delete object.metadata.namespace;
      const what = describeRef({ kind: object.kind, name: object.metadata.name, namespace: object.metadata.namespace });
      await request('apply', what, signal, () => api.patch(object, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply));
      refs.push(toRef(object));
    }
    log.info({ namespace, count: refs.length }, 'applied objects');
    return refs;
  }

  function verify(
    refs: ObjectRef[],
    options: { signal?: AbortSignal; onProgress?: (message: string) => void; failFastGraceMs?: number },
  ): Promise<{ message: string }> {
    const { signal, onProgress } = options;
    const graceMs = options.failFastGraceMs ?? DEFAULT_FAIL_FAST_GRACE_MS;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const workloads = refs.filter((ref) => VERIFIED_KINDS.has(ref.kind));
    if (workloads.length === 0) {
      return Promise.resolve({ message: `No workloads to wait for among ${plural(refs.length, 'applied object')}.` });
    }

    return new Promise((resolve, reject) => {
      interface State {
        ref: ObjectRef;
        listed: boolean;
        object?: KubeObject;
        pods: ReadonlyMap<string, KubeObject>;
        replicaSets: KubeObject[];
        podWatch?: ResourceWatchHandle;
      }
      const states: State[] = workloads.map((ref) => ({ ref, listed: false, pods: new Map(), replicaSets: [] }));
      const handles: ResourceWatchHandle[] = [];
      const tracker = new ProblemTracker();
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let lastProgress = '';

      const finish = (error: Error | undefined, message = '') => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        for (const handle of handles) handle.stop();
        if (error) reject(error);
        else resolve({ message });
      };
      const onAbort = () => finish(abortError(signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      const fail = (state: State, why: string) =>
        finish(new TerminalError(`${describeRef(state.ref)} failed: ${why}`, { code: ROLLOUT_FAILED }));

      const evaluate = () => {
        if (settled) return;
        const now = Date.now();
        const present = new Set<string>();
        const problems = new Map<State, string>();
        let nextDue: number | undefined;
        for (const state of states) {
          const health = assessHealth(state.object);
          if (health.status === 'Failed') return fail(state, health.message);
          if (!state.object) continue;
          // A status older than the spec says nothing about which pods are new.
          const observed = state.object.status as { observedGeneration?: number } | undefined;
          const generation = state.object.metadata.generation;
          if (typeof generation === 'number' && typeof observed?.observedGeneration === 'number' && observed.observedGeneration < generation) continue;
          const candidates = state.ref.kind === 'Pod' ? [state.object] : [...state.pods.values()];
          for (const pod of candidates) {
            if (state.ref.kind !== 'Pod' && !isNewRevisionPod(state.object, pod, state.replicaSets)) continue;
            const key = `${describeRef(state.ref)} ${pod.metadata.name}`;
            present.add(key);
            const problem = podProblem(pod);
            if (problem !== undefined && !problems.has(state)) problems.set(state, problem.message);
            const due = tracker.observe(key, problem, now, graceMs);
            if (due !== undefined && (nextDue === undefined || due < nextDue)) nextDue = due;
            if (problem !== undefined && due !== undefined && due <= now) return fail(state, `${problem.message}.`);
          }
        }
        tracker.retain(present);

        const healths = states.map((state) => ({ state, health: assessHealth(state.object) }));
        const pending = healths.filter(({ state, health }) => !state.listed || health.status !== 'Current');
        if (pending.length === 0) {
          const names = states.map((state) => describeRef(state.ref)).join(', ');
          return finish(undefined, `${plural(states.length, 'workload')} ${states.length === 1 ? 'is' : 'are'} Current: ${names}.`);
        }
        const first = pending[0];
        if (first) {
          const done = states.length - pending.length;
          const problem = problems.get(first.state);
          const message =
            `${done} of ${plural(states.length, 'workload')} Current; ${describeRef(first.state.ref)}: ${first.health.message}` +
            (problem ? ` Meanwhile ${problem}.` : '');
          if (message !== lastProgress) {
            lastProgress = message;
            onProgress?.(message);
          }
        }
        clearTimeout(timer);
        if (nextDue !== undefined) timer = setTimeout(evaluate, Math.max(0, nextDue - Date.now()) + 5);
      };

      const onError = (error: Error) => finish(error);

      for (const state of states) {
        const { ref } = state;
        const what = describeRef(ref);
        handles.push(
          listWatch({
            apiVersion: ref.apiVersion,
            kind: ref.kind,
            namespace: ref.namespace,
            what,
            fieldSelector: `metadata.name=${ref.name}`,
            onError,
            onChange: (items) => {
              state.listed = true;
              state.object = items.get(ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name);
              if (state.object && !state.podWatch && POD_OWNER_KINDS.has(ref.kind)) startPodWatches(state, state.object);
              evaluate();
            },
          }),
        );
      }

      function startPodWatches(state: State, workload: KubeObject) {
        const spec = workload.spec as { selector?: unknown; template?: { metadata?: { labels?: Record<string, string> } } } | undefined;
        const labelSelector =
          selectorToString(spec?.selector) ??
          selectorToString({ matchLabels: spec?.template?.metadata?.labels ?? {} });
        if (!labelSelector) return;
        const what = describeRef(state.ref);
        state.podWatch = listWatch({
          apiVersion: 'v1',
          kind: 'Pod',
          namespace: state.ref.namespace,
          what: `Pods of ${what}`,
          labelSelector,
          onError,
          onChange: (items) => {
            state.pods = items;
            evaluate();
          },
        });
        handles.push(state.podWatch);
        if (state.ref.kind === 'Deployment') {
          handles.push(
            listWatch({
              apiVersion: 'apps/v1',
              kind: 'ReplicaSet',
              namespace: state.ref.namespace,
              what: `ReplicaSets of ${what}`,
              labelSelector,
              onError,
              onChange: (items) => {
                state.replicaSets = [...items.values()];
                evaluate();
              },
            }),
          );
        }
      }
    });
  }

  /** Lists every served kind of `kinds` carrying the deployment's label (top-level objects only). */
  async function listLabelled(
    deploymentId: string,
    namespace: string,
    kinds: ReadonlyArray<{ apiVersion: string; kind: string }>,
    signal?: AbortSignal,
  ): Promise<KubeObject[]> {
    const labelSelector = `${DEPLOYMENT_LABEL}=${deploymentId}`;
    const what = (kind: string) => `${kind} objects of deployment ${deploymentId}`;
    // Discovery one kind after the other (one request per group version, then cached), the lists
    // in parallel.
    const served: Array<{ apiVersion: string; kind: string; namespaced: boolean }> = [];
    for (const { apiVersion, kind } of kinds) {
      const resource = await discover(apiVersion, kind, what(kind), signal);
      if (resource) served.push({ apiVersion, kind, namespaced: resource.namespaced });
    }
    const lists = await Promise.all(
      served.map(async ({ apiVersion, kind, namespaced }) => {
        const list = await request('list', what(kind), signal, () =>
          api.listRaw(apiVersion, kind, namespaced ? namespace : undefined, { labelSelector }),
        );
        return list.items;
      }),
    );
    return lists.flat().filter((obj) => !isControlled(obj));
  }

  async function scaleToZero(
    deploymentId: string,
    namespace: string,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<{ scaled: ObjectRef[]; unscalable: ObjectRef[] }> {
    const { signal } = options;
    const objects = await listLabelled(
      deploymentId,
      namespace,
      MANAGED_KINDS.filter(({ kind }) => kind === 'Deployment' || kind === 'StatefulSet' || kind === 'DaemonSet'),
      signal,
    );
    // DaemonSets run one pod per node and have no scale subresource: they are reported, not stopped.
    const unscalable = objects.filter((obj) => obj.kind === 'DaemonSet').map(toRef);
    const scaled = objects.filter((obj) => obj.kind !== 'DaemonSet').map(toRef);
    for (const ref of scaled) {
      await request('scale', describeRef(ref), signal, () => api.patchScale(ref, 0));
    }
    if (scaled.length > 0) await waitForZeroReady(scaled, options.timeoutMs ?? deps.stopTimeoutMs ?? 300_000, signal);
    log.info({ deploymentId, namespace, scaled: scaled.length, unscalable: unscalable.length }, 'scaled to zero');
    return { scaled, unscalable };
  }

  function waitForZeroReady(refs: ObjectRef[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      const ready = new Map<string, number>(refs.map((ref) => [refKey(ref), Number.POSITIVE_INFINITY]));
      const handles: ResourceWatchHandle[] = [];
      let settled = false;
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        for (const handle of handles) handle.stop();
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => finish(abortError(signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(() => {
        const still = refs.filter((ref) => (ready.get(refKey(ref)) ?? 0) > 0).map(describeRef);
        finish(
          new TransientError(`Stopping timed out after ${Math.round(timeoutMs / 1000)} s: ${still.join(', ')} still ${still.length === 1 ? 'has' : 'have'} ready replicas.`, {
            code: 'stop_timeout',
          }),
        );
      }, timeoutMs);
      for (const ref of refs) {
        handles.push(
          listWatch({
            apiVersion: ref.apiVersion,
            kind: ref.kind,
            namespace: ref.namespace,
            what: describeRef(ref),
            fieldSelector: `metadata.name=${ref.name}`,
            onError: (error) => finish(error),
            onChange: (items) => {
              const obj = items.get(`${ref.namespace}/${ref.name}`);
              const status = (obj?.status ?? {}) as { readyReplicas?: number; replicas?: number; observedGeneration?: number };
              const generation = obj?.metadata.generation;
              const observed = typeof generation !== 'number' || typeof status.observedGeneration !== 'number' || status.observedGeneration >= generation;
              // A deleted object has no replicas left either.
              ready.set(refKey(ref), !obj ? 0 : observed ? int(status.readyReplicas) + int(status.replicas) : Number.POSITIVE_INFINITY);
              if ([...ready.values()].every((count) => count === 0)) finish();
            },
          }),
        );
      }
    });
  }

  async function prune(deploymentId: string, namespace: string, keep: ObjectRef[], options: { signal?: AbortSignal } = {}): Promise<ObjectRef[]> {
    const { signal } = options;
    // A kept ref without a namespace stands for the deployment's namespace (as apply defaults it)
    // or for a cluster-scoped object.
    const keepKeys = new Set(keep.flatMap((ref) => (ref.namespace ? [refKey(ref)] : [refKey(ref), refKey({ ...ref, namespace })])));
    const candidates = await listLabelled(
      deploymentId,
      namespace,
      MANAGED_KINDS.filter(({ kind }) => kind !== 'Namespace'),
      signal,
    );
    const deleted: ObjectRef[] = [];
    for (const obj of candidates) {
      const ref = toRef(obj);
      if (keepKeys.has(refKey(ref))) continue;
      if (obj.metadata.deletionTimestamp) continue;
      await request('delete', describeRef(ref), signal, () =>
        api.delete(obj, undefined, undefined, undefined, undefined, 'Background').catch((error: unknown) => {
          if (httpStatus(error) === 404) return undefined; // already gone
          throw error;
        }),
      );
      deleted.push(ref);
    }
    if (deleted.length > 0) log.info({ deploymentId, namespace, deleted: deleted.map(describeRef) }, 'pruned objects');
    return deleted;
  }

  async function liveStatus(deploymentId: string, namespace: string): Promise<Array<ObjectRef & Health>> {
    const objects = await listLabelled(deploymentId, namespace, MANAGED_KINDS);
    return objects.map((obj) => ({ ...toRef(obj), ...assessHealth(obj) }));
  }

  return { apply, verify, scaleToZero, prune, liveStatus };
}
