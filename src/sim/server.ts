// HTTP routing for the simulated API server (node:http, JSON everywhere): version, discovery,
// OpenAPI, resource CRUD, subresources, watches with bookmarks, Table output, fault injection.
// Every request passes the same front door first: authentication, injected faults, authorization
// (auth/), and leaves one record in the request log once its status code is known.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.ts';
import type { ApiServer } from './apiserver.ts';
import { matchesStored, storedFieldSelector } from './apiserver.ts';
import type { SimAuth, UserInfo } from './auth/index.ts';
import { toServed } from './conversion.ts';
import { forbidden, unauthorized } from './auth/policy.ts';
import { aggregated, AGGREGATED_CONTENT_TYPE, apiGroup, apiGroupList, apiResourceList, apiVersions, wantsAggregated } from './discovery.ts';
import { faultStatus, pickFault, type FaultState } from './faults.ts';
import { decodeProtobufObject, isProtobuf } from './protobuf.ts';
import { groupDocument, openapiIndex } from './openapi.ts';
import { requestInfo, wantsWatch, type RequestInfo } from './requestInfo.ts';
import type { RequestLog } from './requestLog.ts';
import { apiVersionOf, storageOf, type ResourceRegistry, type ResourceType } from './resources.ts';
import { parseLabelSelector, SelectorError, type FieldRequirement, type Requirement } from './selectors.ts';
import { badRequest, expired, methodNotAllowed, pathNotFound, StatusError, successStatus } from './status.ts';
import type { KObject, StoreEvent } from './store.ts';
import { toTable } from './table.ts';

export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.4-keelson-sim',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-04-22T00:00:00Z',
  goVersion: 'go1.23.6',
  compiler: 'gc',
  platform: 'linux/amd64',
};

const BOOKMARK_INTERVAL_MS = 5_000;
/** Without bookmarks a watch ends after this long, so idle clients re-watch instead of timing out. */
const IDLE_WATCH_LIMIT_MS = 25_000;

interface ActiveWatch {
  res: ServerResponse;
  type: ResourceType;
  bookmarks: boolean;
  lastRv: number;
  end: () => void;
}

export interface RouterDeps {
  api: ApiServer;
  auth: SimAuth;
  requests: RequestLog;
  faults: FaultState;
  log: Logger;
  address: () => string;
  /** The served kinds: built-in and those of established CustomResourceDefinitions. */
  registry: ResourceRegistry;
}

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** One request on its way through the router. */
interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  method: string;
  body: Buffer;
  info: RequestInfo;
  user: UserInfo;
}

/** The header keelson's kube client names its process with (PLAN: fencing checks use it). */
const CLIENT_HEADER = 'x-keelson-client';

function sendJson(res: ServerResponse, code: number, body: unknown, contentType = 'application/json'): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
  res.end(text);
}

function sendStatus(res: ServerResponse, error: StatusError, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(error.status);
  res.writeHead(error.code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function wantsTable(req: IncomingMessage): boolean {
  return /as=Table/.test(req.headers.accept ?? '');
}

function managerOf(req: IncomingMessage, query: URLSearchParams): string {
  const explicit = query.get('fieldManager');
  if (explicit) return explicit;
  const ua = req.headers['user-agent'] ?? 'unknown';
  return ua.split('/')[0]!.slice(0, 128) || 'unknown';
}

export class Router {
  private readonly deps: RouterDeps;
  readonly watches = new Set<ActiveWatch>();
  private readonly bookmarkTimer: NodeJS.Timeout;

  constructor(deps: RouterDeps) {
    this.deps = deps;
    this.bookmarkTimer = setInterval(() => this.sendBookmarks(), BOOKMARK_INTERVAL_MS);
  }

  close(): void {
    clearInterval(this.bookmarkTimer);
    this.dropWatches();
  }

  dropWatches(): void {
    for (const w of [...this.watches]) w.end();
  }

  /** Ends the watches of kinds no longer served (a deleted CRD's), as a real server does. */
  endWatchesOf(types: readonly ResourceType[]): void {
    for (const w of [...this.watches]) if (types.includes(w.type)) w.end();
  }

  private sendBookmarks(): void {
    const rv = this.deps.api.store.resourceVersion;
    for (const w of this.watches) {
      if (!w.bookmarks) continue;
      w.res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: w.type.kind, apiVersion: apiVersionOf(w.type), metadata: { resourceVersion: String(Math.max(rv, w.lastRv)) } } })}\n`);
    }
  }

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    // serve() answers every error itself; this only keeps a bug in it from crashing the process.
    this.serve(req, res).catch((error: unknown) => {
      this.deps.log.error({ err: error, url: req.url }, 'simulator request handling failed');
      res.destroy();
    });
  };

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const info = requestInfo(method, url);
    const user = this.deps.auth.authenticate(req.headers.authorization);
    try {
      await this.admit(req, res, url, method, info, user);
    } catch (error) {
      if (error instanceof StatusError) sendStatus(res, error);
      else {
        this.deps.log.error({ err: error, url: req.url }, 'simulator request failed');
        if (!res.headersSent) sendStatus(res, new StatusError(500, 'InternalError', `Internal error occurred: ${(error as Error).message}`));
        else res.end();
      }
    }
    this.record(req, res, url, info, user);
  }

  /** The front door: body, injected latency, authentication, injected faults, authorization. */
  private async admit(req: IncomingMessage, res: ServerResponse, url: URL, method: string, info: RequestInfo, user: UserInfo | undefined): Promise<void> {
    const body = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readBody(req);
    const { faults, auth } = this.deps;
    if (faults.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
    if (!user) throw unauthorized();
    const injected = pickFault(faults);
    if (injected !== undefined) {
      const { reason, message } = faultStatus(injected);
      sendStatus(res, new StatusError(injected, reason, message), injected === 429 ? { 'Retry-After': '1' } : {});
      return;
    }
    const decision = auth.authorize(user, info);
    if (!decision.allowed) throw forbidden(user, info, decision.reason);
    this.route({ req, res, url, method, body, info, user });
  }

  /** Called once the response's headers are out (a watch's too), so the code is final. */
  private record(req: IncomingMessage, res: ServerResponse, url: URL, info: RequestInfo, user: UserInfo | undefined): void {
    const header = req.headers[CLIENT_HEADER];
    // Optional fields are left undefined rather than spread in: this runs for every request.
    this.deps.requests.record({
      at: Date.now(),
      user: user?.name ?? '',
      groups: user?.groups,
      client: Array.isArray(header) ? header[0] : header,
      verb: info.verb,
      apiGroup: info.apiGroup,
      resource: info.resource,
      subresource: info.subresource || undefined,
      namespace: info.namespace || undefined,
      name: info.name || undefined,
      path: info.isResourceRequest ? undefined : info.path,
      dryRun: url.searchParams.get('dryRun') === 'All' ? true : undefined,
      code: res.statusCode,
    });
  }

  private route(call: Call): void {
    const { req, res, url, info } = call;
    const types = this.deps.registry.types();
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (path === '/version') return sendJson(res, 200, SERVER_VERSION);
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (path === '/api') {
      if (wantsAggregated(req.headers.accept)) return sendJson(res, 200, aggregated(true, types), AGGREGATED_CONTENT_TYPE);
      return sendJson(res, 200, apiVersions(this.deps.address()));
    }
    if (path === '/apis') {
      if (wantsAggregated(req.headers.accept)) return sendJson(res, 200, aggregated(false, types), AGGREGATED_CONTENT_TYPE);
      return sendJson(res, 200, apiGroupList(types));
    }
    if (path === '/openapi/v3') return sendJson(res, 200, openapiIndex(types));
    const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (segments[0] === 'openapi' && segments[1] === 'v3') {
      const [kind, a, b] = segments.slice(2);
      const doc = kind === 'api' && a && !b ? groupDocument('', a, types) : kind === 'apis' && a && b ? groupDocument(a, b, types) : undefined;
      if (!doc) throw pathNotFound();
      return sendJson(res, 200, doc);
    }
    if (!info.isResourceRequest) {
      // What is left of the non-resource paths: /api/v1, /apis/<group> and /apis/<group>/<version>.
      const [prefix, group, version] = segments;
      if (prefix === 'api' && group && !version) {
        const list = apiResourceList('', group, types);
        if (list) return sendJson(res, 200, list);
      }
      if (prefix === 'apis' && group && !version) {
        const doc = apiGroup(group, types);
        if (doc) return sendJson(res, 200, doc);
      }
      if (prefix === 'apis' && group && version && segments.length === 3) {
        const list = apiResourceList(group, version, types);
        if (list) return sendJson(res, 200, list);
      }
      throw pathNotFound();
    }
    if (!this.deps.registry.groupVersions().some((gv) => gv.group === info.apiGroup && gv.version === info.apiVersion)) throw pathNotFound();
    this.resource(call, this.parseResourcePath(info));
  }

  /** Which kind and object a resource request names; 404 for paths the server does not serve. */
  private parseResourcePath(info: RequestInfo): Route {
    const [plural, name, subresource, ...extra] = info.parts;
    const type = plural === undefined ? undefined : this.deps.registry.findByPlural(info.apiGroup, info.apiVersion, plural);
    if (!type || extra.length > 0) throw pathNotFound();
    if (type.kind === 'Namespace') return { type, name, subresource };
    if (info.namespace) {
      if (!type.namespaced) throw pathNotFound();
      return { type, namespace: info.namespace, name, subresource };
    }
    // A namespaced kind at cluster scope: only the collection (lists and watches across namespaces).
    if (type.namespaced && name !== undefined) throw pathNotFound();
    return { type, name, subresource };
  }

  private resource(call: Call, route: Route): void {
    const { req, res, method } = call;
    // Patch bodies are always text (JSON or YAML); a whole object may also come as protobuf.
    const body = call.body.toString('utf8');
    const object = (): unknown => (isProtobuf(req.headers['content-type']) ? decodeProtobufObject(call.body) : parseJson(body));
    const query = call.url.searchParams;
    const { api, auth } = this.deps;
    const { type, namespace, name, subresource } = route;
    const dryRun = query.get('dryRun') === 'All';
    if (subresource !== undefined && !(type.subresources as string[]).includes(subresource)) throw pathNotFound();
    if (type.virtual) {
      if (method !== 'POST' || name !== undefined) throw methodNotAllowed();
      return sendJson(res, 201, auth.review(type, object(), call.user));
    }
    if (subresource === 'token') {
      if (method !== 'POST') throw methodNotAllowed();
      return sendJson(res, 201, auth.requestToken(namespace!, name!, object()));
    }
    const isWatch = call.info.verb === 'watch' || (method === 'GET' && wantsWatch(query));
    if (name === undefined) {
      if (method === 'GET' && isWatch) return this.watch(req, res, query, type, namespace, undefined);
      if (method === 'GET') {
        const result = api.list(type, namespace, {
          labelSelector: query.get('labelSelector'),
          fieldSelector: query.get('fieldSelector'),
          limit: Number(query.get('limit') ?? 0) || undefined,
          continue: query.get('continue'),
        });
        const meta: Record<string, unknown> = { resourceVersion: result.resourceVersion };
        if (result.continue) meta.continue = result.continue;
        if (result.remainingItemCount !== undefined) meta.remainingItemCount = result.remainingItemCount;
        if (wantsTable(req)) return sendJson(res, 200, toTable(type, result.items, api.clock.now(), result.resourceVersion, meta, query.get('includeObject') ?? 'Metadata'), 'application/json;as=Table;v=v1;g=meta.k8s.io');
        const items = result.items.map((o) => {
          const { apiVersion: _a, kind: _k, ...rest } = o;
          return rest;
        });
        return sendJson(res, 200, { kind: `${type.kind}List`, apiVersion: apiVersionOf(type), metadata: meta, items });
      }
      if (method === 'POST') {
        if (!type.namespaced && namespace) throw pathNotFound();
        const created = api.create(type, namespace, object(), { manager: managerOf(req, query), dryRun });
        return sendJson(res, 201, created);
      }
      if (method === 'DELETE') {
        const list = api.list(type, namespace, { labelSelector: query.get('labelSelector'), fieldSelector: query.get('fieldSelector') });
        const opts = deleteOptions(body, query);
        const deleted = list.items.map((o) => api.delete(type, o.metadata.namespace, o.metadata.name, { ...opts, dryRun }));
        return sendJson(res, 200, { kind: `${type.kind}List`, apiVersion: apiVersionOf(type), metadata: { resourceVersion: String(api.store.resourceVersion) }, items: deleted });
      }
      throw methodNotAllowed();
    }
    if (method === 'GET' && isWatch && subresource === undefined) return this.watch(req, res, query, type, namespace, name);
    if (subresource === 'scale') {
      if (method === 'GET') return sendJson(res, 200, api.getScale(type, namespace, name));
      if (method === 'PUT') return sendJson(res, 200, api.writeScale(type, namespace, name, object(), managerOf(req, query)));
      if (method === 'PATCH') return sendJson(res, 200, api.patchScale(type, namespace, name, req.headers['content-type'] ?? '', body, managerOf(req, query)));
      throw methodNotAllowed();
    }
    const sub = subresource === 'status' ? 'status' : undefined;
    switch (method) {
      case 'GET': {
        const obj = api.get(type, namespace, name);
        if (wantsTable(req)) return sendJson(res, 200, toTable(type, [obj], api.clock.now(), obj.metadata.resourceVersion ?? '', {}, query.get('includeObject') ?? 'Metadata'), 'application/json;as=Table;v=v1;g=meta.k8s.io');
        return sendJson(res, 200, obj);
      }
      case 'PUT':
        return sendJson(res, 200, api.update(type, namespace, name, object(), { manager: managerOf(req, query), subresource: sub, dryRun }));
      case 'PATCH': {
        const force = query.get('force') === 'true';
        const result = api.patch(type, namespace, name, req.headers['content-type'] ?? '', body, { manager: query.get('fieldManager') ?? (isApply(req) ? '' : managerOf(req, query)), force, subresource: sub, dryRun });
        return sendJson(res, result.created ? 201 : 200, result.object);
      }
      case 'DELETE': {
        if (sub) throw methodNotAllowed();
        const deleted = api.delete(type, namespace, name, { ...deleteOptions(body, query), dryRun });
        if (type.kind === 'Pod' || type.kind === 'Namespace') return sendJson(res, 200, deleted);
        return sendJson(res, 200, successStatus({ name, group: type.group, kind: type.plural, uid: deleted.metadata.uid }));
      }
      default:
        throw methodNotAllowed();
    }
  }

  private watch(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, type: ResourceType, namespace: string | undefined, name: string | undefined): void {
    const { api } = this.deps;
    let labels: Requirement[];
    let fields: FieldRequirement[];
    try {
      labels = parseLabelSelector(query.get('labelSelector'));
      fields = storedFieldSelector(type, query.get('fieldSelector'));
    } catch (error) {
      if (error instanceof SelectorError) throw badRequest(error.message);
      throw error;
    }
    if (name !== undefined) fields = [...fields, { field: 'metadata.name', op: '=', value: name }];
    const ns = type.namespaced ? namespace : undefined;
    const table = wantsTable(req);
    // store events carry the stored form (a view's storage kind); it is converted as it is sent
    const stored = storageOf(type);
    const matches = (o: KObject | undefined): boolean => !!o && (ns === undefined || o.metadata.namespace === ns) && matchesStored(type, o, labels, fields);
    const rvParam = query.get('resourceVersion');
    const requested = rvParam && rvParam !== '0' ? Number(rvParam) : undefined;
    if (requested !== undefined && !Number.isFinite(requested)) throw badRequest(`invalid resource version: ${rvParam}`);
    const backlog = requested !== undefined ? api.store.eventsSince(requested) : [];

    res.writeHead(200, { 'Content-Type': table ? 'application/json;as=Table;v=v1;g=meta.k8s.io' : 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    let ended = false;
    const timers: NodeJS.Timeout[] = [];
    const watch: ActiveWatch = {
      res,
      type,
      bookmarks: query.get('allowWatchBookmarks') === 'true',
      lastRv: requested ?? api.store.resourceVersion,
      end: () => {
        if (ended) return;
        ended = true;
        unsubscribe();
        for (const t of timers) clearTimeout(t);
        this.watches.delete(watch);
        res.end();
      },
    };
    const send = (eventType: string, object: KObject): void => {
      if (ended) return;
      watch.lastRv = Math.max(watch.lastRv, Number(object.metadata.resourceVersion ?? 0));
      if (table) {
        res.write(`${JSON.stringify({ type: eventType, object: toTable(type, [toServed(type, object)], api.clock.now(), object.metadata.resourceVersion ?? '') })}\n`);
        return;
      }
      res.write(`{"type":${JSON.stringify(eventType)},"object":${serialized(type, object)}}\n`);
    };
    const deliver = (event: StoreEvent): void => {
      if (event.resource !== stored) return;
      const now = matches(event.object);
      if (event.type === 'ADDED') {
        if (now) send('ADDED', event.object);
      } else if (event.type === 'DELETED') {
        if (matches(event.previous) || now) send('DELETED', event.object);
      } else {
        const before = matches(event.previous);
        if (now && before) send('MODIFIED', event.object);
        else if (now) send('ADDED', event.object);
        else if (before) send('DELETED', event.object);
      }
    };
    const unsubscribe = api.store.subscribe(deliver);
    this.watches.add(watch);
    req.on('close', () => watch.end());
    res.on('error', () => watch.end());

    if (backlog === undefined) {
      // a Status, not an object of the kind: written as it is
      res.write(`${JSON.stringify({ type: 'ERROR', object: expired(requested!, api.store.oldestResourceVersion).status })}\n`);
      watch.end();
      return;
    }
    if (requested === undefined) {
      for (const o of api.store.list(stored, ns)) if (matches(o)) send('ADDED', o);
    } else for (const e of backlog) deliver(e);

    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? 0);
    const limitMs = timeoutSeconds > 0 ? timeoutSeconds * 1000 : watch.bookmarks ? 0 : IDLE_WATCH_LIMIT_MS;
    if (limitMs > 0) timers.push(setTimeout(() => watch.end(), limitMs));
  }
}

/**
 * An event's object as JSON in the form `type` serves, written (and converted) once however
 * many watches it goes to: the store hands every watcher the same (never mutated) object, so it
 * keys the cache; a view of another kind's storage has a cache of its own.
 */
const serializedObjects = new WeakMap<ResourceType, WeakMap<KObject, string>>();
function serialized(type: ResourceType, object: KObject): string {
  let cache = serializedObjects.get(type);
  if (!cache) serializedObjects.set(type, (cache = new WeakMap()));
  let text = cache.get(object);
  if (text === undefined) {
    text = JSON.stringify(toServed(type, object));
    cache.set(object, text);
  }
  return text;
}

function isApply(req: IncomingMessage): boolean {
  return (req.headers['content-type'] ?? '').startsWith('application/apply-patch');
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (error) {
    throw badRequest(`error decoding request body: ${(error as Error).message}`);
  }
}

function deleteOptions(body: string, query: URLSearchParams): { propagationPolicy?: string; preconditions?: { uid?: string; resourceVersion?: string } } {
  let parsed: { propagationPolicy?: string; preconditions?: { uid?: string; resourceVersion?: string }; orphanDependents?: boolean } = {};
  if (body.trim()) parsed = parseJson(body) as typeof parsed;
  const propagationPolicy = query.get('propagationPolicy') ?? parsed.propagationPolicy ?? (parsed.orphanDependents ? 'Orphan' : undefined);
  return { propagationPolicy, preconditions: parsed.preconditions };
}
