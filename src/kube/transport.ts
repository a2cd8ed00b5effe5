// Every request keelson sends to a Kubernetes API server passes here: client identity, the fence,
// the client-side rate limiter, 429 back-off, a per-request timeout, error classification and
// metrics. Built on @kubernetes/client-node 2.x for credentials (tokens, exec plugins, client
// certificates, TLS) and discovery; the requests themselves are plain paths and JSON.
//
// Design notes and hazards:
// - Objects are handled as raw JSON: client-node would otherwise deserialize responses into model
//   classes (Date objects, unknown fields dropped); `RawObjectApi` overrides that.
// - Client identity: `X-Keelson-Client: <clientId>` rides on every request, watches included,
//   because it is added where credentials are (the simulator records it; the chaos suite proves
//   with it that no process writes after its lease expired).
// - The fence: a request made on behalf of a caller whose AbortSignal has aborted is refused in
//   the last middleware before the HTTP send — after the rate limiter's wait and any discovery,
//   so a lease lost while queued can never be followed by a write.
// - Cancellation: client-node's object API takes no AbortSignal, so the signal travels through
//   AsyncLocalStorage to that middleware.
// - 429 Too Many Requests (and 503 with Retry-After): the request is retried after Retry-After
//   (1 s if absent), at most MAX_THROTTLE_RETRIES times, through the limiter and the fence again.
import { AsyncLocalStorage } from 'node:async_hooks';
import type {
  KubeConfig} from '@kubernetes/client-node';
import {
  ApiException,
  HttpMethod,
  KubernetesObjectApi,
  ServerConfiguration,
  Watch,
  createConfiguration,
  type KubernetesObject,
  type ResponseContext,
} from '@kubernetes/client-node';
import { TerminalError, TransientError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { abortError, classifyKubeError, delay, httpStatus } from './kubeErrors.ts';
import { DEFAULT_RATE_LIMIT, TokenBucket, type RateLimit } from './rateLimiter.ts';
import type { ListResult } from './resourceWatch.ts';
import type { KubeObject } from './types.ts';

export const CLIENT_HEADER = 'X-Keelson-Client';

/** Metric verbs: Kubernetes' own names where they fit, plus keelson's kinds of PATCH. */
export type KubeVerb = 'get' | 'list' | 'watch' | 'create' | 'apply' | 'dryrun' | 'delete' | 'scale' | 'discover';

export interface ServedResource {
  /** The resource name in paths: `deployments`. */
  name: string;
  namespaced: boolean;
}

export interface RequestSpec {
  verb: KubeVerb;
  /** Kind for the metrics: `Deployment`. */
  kind: string;
  /** For messages: `Deployment shop/web`. */
  what: string;
  method: HttpMethod;
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  /** The caller's signal: aborting it cancels the request and fences it off before sending. */
  signal?: AbortSignal;
  /** HTTP statuses that are answers to this request, not failures (404 for an existence check). */
  answers?: readonly number[];
}

export interface TransportDeps {
  kubeConfig: KubeConfig;
  log: Logger;
  metrics?: Metrics;
  /** Sent as `X-Keelson-Client` on every request (keelson's instance id). */
  clientId: string;
  rateLimit?: RateLimit;
  /** Timeout of each single request (not of watches); 30 s by default. */
  requestTimeoutMs?: number;
}

const MAX_THROTTLE_RETRIES = 5;
const MAX_RETRY_AFTER_MS = 30_000;
const UNSERVED_TTL_MS = 60_000;

interface RequestScope {
  /** Caller's signal combined with the request timeout: cancels the HTTP request. */
  signal: AbortSignal;
  /** The caller's own signal: once aborted, nothing more may be sent for this call. */
  fence?: AbortSignal;
}

/** KubernetesObjectApi answering raw JSON, plus plain requests by path. */
class RawObjectApi extends KubernetesObjectApi {
  protected override async processResponse<T extends KubernetesObject>(response: ResponseContext): Promise<T> {
    if (response.httpStatusCode >= 200 && response.httpStatusCode <= 299) {
      const text = await response.body.text();
      return (text ? JSON.parse(text) : {}) as T;
    }
    throw new ApiException(response.httpStatusCode, 'Unsuccessful HTTP Request', await response.getBodyAsAny(), response.headers);
  }

  send<T>(spec: RequestSpec): Promise<T> {
    const context = this.configuration.baseServer.makeRequestContext(spec.path, spec.method);
    context.setHeaderParam('Accept', 'application/json');
    for (const [key, value] of Object.entries(spec.query ?? {})) if (value !== undefined) context.setQueryParam(key, value);
    if (spec.body !== undefined) {
      context.setHeaderParam('Content-Type', spec.contentType ?? 'application/json');
      context.setBody(JSON.stringify(spec.body));
    }
    return this.requestPromise(context) as Promise<T>;
  }

  /** Discovery from client-node's cache, or undefined when a request is needed. */
  cached(apiVersion: string, kind: string): ServedResource | undefined {
    const found = this.apiVersionResourceCache[apiVersion]?.resources.find((r) => r.kind === kind);
    return found ? { name: found.name, namespaced: found.namespaced } : undefined;
  }

  /** Discovery through client-node (one request per group version, then cached). */
  async discover(apiVersion: string, kind: string): Promise<ServedResource | undefined> {
    const found = await this.resource(apiVersion, kind);
    return found ? { name: found.name, namespaced: found.namespaced } : undefined;
  }

  forget(apiVersion: string): void {
    delete this.apiVersionResourceCache[apiVersion];
  }
}

/** The kubeconfig's credentials plus keelson's client identity header, for requests and watches. */
function withClientIdentity(kubeConfig: KubeConfig, clientId: string): KubeConfig {
  // Delegates everything else to `kubeConfig` through the prototype chain.
  const identified = Object.create(kubeConfig) as KubeConfig;
  identified.applySecurityAuthentication = async (context) => {
    await kubeConfig.applySecurityAuthentication(context);
    context.setHeaderParam(CLIENT_HEADER, clientId);
  };
  return identified;
}

function header(error: unknown, name: string): string | undefined {
  const headers = (error as { headers?: Record<string, string> } | undefined)?.headers;
  if (!headers) return undefined;
  const found = Object.entries(headers).find(([key]) => key.toLowerCase() === name);
  return found?.[1];
}

/** How long the server asked us to wait (429, or 503 with Retry-After), or undefined. */
function retryAfterMs(error: unknown): number | undefined {
  const status = httpStatus(error);
  const value = header(error, 'retry-after');
  if (status !== 429 && !(status === 503 && value !== undefined)) return undefined;
  const seconds = value === undefined ? 1 : Number(value);
  return Math.min(MAX_RETRY_AFTER_MS, Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 1000);
}

/** `promise`, or an AbortError as soon as `signal` aborts (the promise itself runs on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export type Transport = ReturnType<typeof createTransport>;

export function createTransport(deps: TransportDeps) {
  const { kubeConfig, log, metrics } = deps;
  const requestTimeoutMs = deps.requestTimeoutMs ?? 30_000;
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new TerminalError('The kubeconfig has no current cluster.', { code: 'config_invalid' });
  const limiter = new TokenBucket(deps.rateLimit ?? DEFAULT_RATE_LIMIT);
  const identified = withClientIdentity(kubeConfig, deps.clientId);
  const scope = new AsyncLocalStorage<RequestScope>();
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: identified },
    promiseMiddleware: [
      {
        pre: async (context) => {
          const current = scope.getStore();
          // The fence: the last moment before the request leaves.
          if (current?.fence?.aborted) throw abortError(current.fence);
          if (current) context.setSignal(current.signal);
          return context;
        },
        post: async (response) => response,
      },
    ],
  });
  const api = new RawObjectApi(configuration);
  const watch = new Watch(identified);
  /** Kinds (`v1 Widget`) and group versions (`example.com/v1`) found unserved, until when. */
  const unserved = new Map<string, number>();
  /** Discoveries under way, by `apiVersion kind`: callers asking at once share one request. */
  const discovering = new Map<string, Promise<ServedResource | undefined>>();

  async function throttle(verb: KubeVerb, signal?: AbortSignal): Promise<void> {
    const waited = await limiter.take(signal);
    if (waited > 0) metrics?.kubeRateLimitWait.observe({ verb }, waited / 1000);
  }

  /** One logical request: rate-limited, fenced, timed, counted, retried on 429, classified. */
  async function run<T>(verb: KubeVerb, kind: string, what: string, signal: AbortSignal | undefined, fn: () => Promise<T>, answers: readonly number[] = []): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw abortError(signal);
      await throttle(verb, signal);
      const timeout = AbortSignal.timeout(requestTimeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      const endTimer = metrics?.kubeRequestDuration.startTimer({ verb });
      try {
        const result = await scope.run({ signal: combined, fence: signal }, fn);
        metrics?.kubeRequests.inc({ verb, kind, outcome: 'ok' });
        return result;
      } catch (error) {
        const wait = signal?.aborted ? undefined : retryAfterMs(error);
        if (wait !== undefined && attempt < MAX_THROTTLE_RETRIES) {
          metrics?.kubeRequests.inc({ verb, kind, outcome: 'throttled' });
          log.debug({ what, verb, waitMs: wait }, 'Kubernetes API asked to retry later');
          await delay(wait, signal);
          continue;
        }
        const classified = classifyKubeError(error, what, signal);
        const status = httpStatus(error);
        const outcome =
          status !== undefined && answers.includes(status) ? 'ok' : classified instanceof TransientError ? 'transient' : classified instanceof TerminalError ? 'terminal' : 'aborted';
        metrics?.kubeRequests.inc({ verb, kind, outcome });
        throw classified;
      } finally {
        endTimer?.();
      }
    }
  }

  function request<T>(spec: RequestSpec): Promise<T> {
    return run(spec.verb, spec.kind, spec.what, spec.signal, () => api.send<T>(spec), spec.answers);
  }

  /**
   * Discovery: the resource for a kind, or undefined when the cluster does not serve it. A miss
   * is remembered for a minute for reads; `fresh` (writes, prune, teardown: a CRD may have been
   * installed since) asks again. The rate stays bounded: concurrent askers share one request,
   * and every request passes the rate limiter.
   */
  async function served(apiVersion: string, kind: string, what: string, signal?: AbortSignal, fresh = false): Promise<ServedResource | undefined> {
    const cached = api.cached(apiVersion, kind);
    if (cached) return cached;
    const now = Date.now();
    if (!fresh && ((unserved.get(apiVersion) ?? 0) > now || (unserved.get(`${apiVersion} ${kind}`) ?? 0) > now)) return undefined;
    if (signal?.aborted) throw abortError(signal);
    const key = `${apiVersion} ${kind}`;
    let pending = discovering.get(key);
    if (!pending) {
      // Shared, so no one caller's signal may cancel it (a read: no fence to honour); each
      // caller still stops waiting when its own signal aborts.
      pending = discover(apiVersion, kind, what).finally(() => discovering.delete(key));
      discovering.set(key, pending);
    }
    return await untilAborted(pending, signal);
  }

  function discover(apiVersion: string, kind: string, what: string): Promise<ServedResource | undefined> {
    return run('discover', kind, what, undefined, async () => {
      try {
        const resource = await api.discover(apiVersion, kind);
        if (resource) {
          unserved.delete(apiVersion);
          unserved.delete(`${apiVersion} ${kind}`);
          return resource;
        }
        unserved.set(`${apiVersion} ${kind}`, Date.now() + UNSERVED_TTL_MS);
        return undefined;
      } catch (error) {
        if (httpStatus(error) !== 404) throw error;
        unserved.set(apiVersion, Date.now() + UNSERVED_TTL_MS);
        return undefined;
      }
    });
  }

  /**
   * Discovery for a write: a kind believed unserved is asked again (its CRD may have just been
   * applied), and `waitMs` gives a fresh CRD time to be established.
   */
  async function resourceFor(apiVersion: string, kind: string, what: string, signal?: AbortSignal, waitMs = 0): Promise<ServedResource> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const found = await served(apiVersion, kind, what, signal, true);
      if (found) return found;
      if (Date.now() >= deadline) break;
      await delay(500, signal);
    }
    throw new TerminalError(`Kubernetes API rejected ${what}: the cluster does not serve ${kind} in ${apiVersion}.`, { code: 'kube_rejected' });
  }

  /** Forgets what discovery learnt about a group version (a CRD was removed or changed). */
  function forget(apiVersion: string): void {
    api.forget(apiVersion);
  }

  function apiPrefix(apiVersion: string): string {
    return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  }

  function collectionPath(apiVersion: string, resource: ServedResource, namespace?: string): string {
    const ns = resource.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    return `${apiPrefix(apiVersion)}${ns}/${resource.name}`;
  }

  function objectPath(apiVersion: string, resource: ServedResource, name: string, namespace?: string): string {
    return `${collectionPath(apiVersion, resource, namespace)}/${encodeURIComponent(name)}`;
  }

  async function list(
    apiVersion: string,
    kind: string,
    resource: ServedResource,
    options: { namespace?: string; labelSelector?: string; fieldSelector?: string; limit?: number; continue?: string; what: string; signal?: AbortSignal },
  ): Promise<ListResult & { continue?: string }> {
    const result = await request<{ items?: KubeObject[]; metadata?: { resourceVersion?: string; continue?: string } }>({
      verb: 'list',
      kind,
      what: options.what,
      method: HttpMethod.GET,
      path: collectionPath(apiVersion, resource, options.namespace),
      query: {
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        limit: options.limit === undefined ? undefined : String(options.limit),
        continue: options.continue,
      },
      signal: options.signal,
    });
    // List items carry no apiVersion/kind on a real server.
    const items = (result.items ?? []).map((item) => ({ ...item, apiVersion, kind }));
    return { items, resourceVersion: result.metadata?.resourceVersion, continue: result.metadata?.continue || undefined };
  }

  return { request, served, resourceFor, forget, collectionPath, objectPath, list, watch, throttle, log };
}
