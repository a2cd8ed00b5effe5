// The REST API as an express app. Everything it needs is passed in (no module singletons);
// `keelson serve` wires the runtime, the Kubernetes client and the ops repo syncer.
// Route declarations live in *Routes.ts; route.ts turns each into an express handler (auth,
// validation, transaction, audit, idempotency) and openapi.ts into an OpenAPI operation.
import express from 'express';
import { Counter, Histogram } from 'prom-client';
import pkg from '../../package.json' with { type: 'json' };
import type { ClusterKind, DatabaseKind } from '../config.ts';
import type { Db } from '../db/pool.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { jsonDepth } from '../tenancy/inputRules.ts';
import { deploymentRoutes, type LiveResource } from './deploymentRoutes.ts';
import { createEventStreams, DEFAULT_STREAM_LIMITS, type StreamLimits } from './eventStreams.ts';
import { ApiError, errorMiddleware } from './httpErrors.ts';
import { buildOpenApi } from './openapi.ts';
import { capabilityRoutes } from './capabilityRoutes.ts';
import type { RenderLimits } from '../render/renderer.ts';
import { opsRepoRoutes } from './opsRepoRoutes.ts';
import { projectRoutes } from './projectRoutes.ts';
import { redactSecrets } from './redact.ts';
import { registerRoute, type AnyRoute } from './route.ts';
import { swaggerUiDir, systemRoutes, type ReadinessOfRuntime } from './systemRoutes.ts';
import type { Principal } from './tokens.ts';
import { sql } from 'slonik';
import { createTransitionHub } from './transitionHub.ts';
import { visualizerRoutes } from './visualizerRoutes.ts';
import { uiRouter } from '../ui/uiRouter.ts';
import { fleetRoutes } from './fleetRoutes.ts';
import { notifyRoutes } from './notifyRoutes.ts';

export interface ApiDeps {
  /** The API's own pool, apart from the runtime's: API reads never queue before journal writes. */
  db: Db;
  databaseUrl: string;
  log: Logger;
  metrics: Metrics;
  runtime?: ReadinessOfRuntime;
  kube?: { liveStatus(deploymentId: string, namespace: string): Promise<LiveResource[]> };
  opsRepos?: { fetch(repoId: string, options?: { force?: boolean }): Promise<{ sha: string; fetched: boolean }> };
  /** SSE limits and heartbeat (KEELSON_SSE_MAX_PER_TOKEN, KEELSON_SSE_MAX; DEFAULT_STREAM_LIMITS). */
  streamLimits?: Partial<StreamLimits>;
  /** KEELSON_ALLOW_FILE_REPOS (default false). */
  allowFileRepos?: boolean;
  /** The render limits in force (KEELSON_RENDER_*), reported by /api/capabilities. */
  renderLimits?: RenderLimits;
  /** KEELSON_IDEMPOTENCY_TTL (default 24 h). */
  idempotencyTtlMs?: number;
  /** How long GET detail waits for `kube.liveStatus` (default 5 s). */
  liveStatusTimeoutMs?: number;
  /** express `trust proxy` (default false): which proxies may name the client in X-Forwarded-For. */
  trustProxy?: boolean | number | string;
  /** What /readyz reports keelson runs against (kinds only: no addresses, no secrets). */
  mode?: { cluster: ClusterKind; database: DatabaseKind };
}

export interface ApiApp {
  app: express.Express;
  /** Every declared route (the source of /openapi.json). */
  routes: readonly AnyRoute[];
  /** Ends SSE streams and the shared transition listener; waits for pending token touches. */
  close(): Promise<void>;
}

const TOKEN_TOUCH_INTERVAL_MS = 60_000;
export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
/**
 * Any JSON body nested deeper is refused before anything walks it (zod, hashing, audit): the
 * deepest legitimate field, values_override, allows 32 levels.
 */
const MAX_BODY_DEPTH = 40;

function httpMetrics(metrics: Metrics) {
  const registry = metrics.registry;
  // a second app on the same registry (tests) reuses the collectors
  const requests =
    (registry.getSingleMetric('keelson_http_requests_total') as Counter<'method' | 'route' | 'status'> | undefined) ??
    new Counter({
      name: 'keelson_http_requests_total',
      help: 'HTTP requests served by the API, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    });
  const duration =
    (registry.getSingleMetric('keelson_http_request_duration_seconds') as Histogram<'method' | 'route'> | undefined) ??
    new Histogram({
      name: 'keelson_http_request_duration_seconds',
      help: 'HTTP request durations (for SSE: the stream lifetime), by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  return { requests, duration };
}

/** `Allow` of the declared route whose path matches (`:param` = one segment), or undefined. */
function allowedMethods(routes: readonly AnyRoute[]): (path: string) => string | undefined {
  const byPath = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  for (const route of routes) {
    let entry = byPath.get(route.path);
    if (!entry) {
      const source = route.path.split('/').map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
      entry = { pattern: new RegExp(`^${source}/?$`), methods: new Set() };
      byPath.set(route.path, entry);
    }
    entry.methods.add(route.method.toUpperCase());
    if (route.method === 'get') entry.methods.add('HEAD');
  }
  return (path) => {
    for (const { pattern, methods } of byPath.values()) {
      if (pattern.test(path)) return [...methods, 'OPTIONS'].join(', ');
    }
    return undefined;
  };
}

export function createApp(deps: ApiDeps): ApiApp {
  const { db, log } = deps;
  const app = express();
  app.set('trust proxy', deps.trustProxy ?? false);
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  const streamLimits = { ...DEFAULT_STREAM_LIMITS, ...deps.streamLimits };
  const streams = createEventStreams({ limits: streamLimits, metrics: deps.metrics, log });
  const pending = new Set<Promise<unknown>>();
  const touched = new Map<string, number>();
  const hub = createTransitionHub({ db, databaseUrl: deps.databaseUrl, log });
  const http = httpMetrics(deps.metrics);

  // last_used_at: at most one write per token per minute, off the request path
  const touchToken = (principal: Principal) => {
    const now = Date.now();
    if ((touched.get(principal.tokenId) ?? 0) > now - TOKEN_TOUCH_INTERVAL_MS) return;
    touched.set(principal.tokenId, now);
    const write = db
      .query(sql.unsafe`update api_tokens set last_used_at = now()
        where id = ${principal.tokenId} and (last_used_at is null or last_used_at < now() - interval '1 minute')`)
      .catch((error: unknown) => log.warn({ err: { message: redactSecrets(errorMessage(error)) } }, 'recording token use failed'))
      .finally(() => pending.delete(write));
    pending.add(write);
  };

  const routes: AnyRoute[] = [];
  let openApiDoc: Record<string, unknown> | undefined;
  const openApi = () => (openApiDoc ??= buildOpenApi(routes, { version: pkg.version }));
  routes.push(
    ...systemRoutes({ db, log, metrics: deps.metrics, runtime: deps.runtime, openApi, mode: deps.mode }),
    ...deploymentRoutes({ hub, streams, kube: deps.kube, liveTimeoutMs: deps.liveStatusTimeoutMs ?? 5_000 }),
    ...projectRoutes(),
    ...opsRepoRoutes({ opsRepos: deps.opsRepos, allowFileRepos: deps.allowFileRepos ?? false, log }),
    ...visualizerRoutes({ hub, log, streams }),
    ...fleetRoutes(),
    ...notifyRoutes(),
    ...capabilityRoutes({
      renderLimits: deps.renderLimits,
      streamLimits,
      idempotencyTtlMs: deps.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS,
      allowFileRepos: deps.allowFileRepos ?? false,
      cluster: deps.mode?.cluster,
      routes: () => routes,
    }),
  );

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      http.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      http.duration.observe({ method: req.method, route }, seconds);
      // path only: query strings and headers (tokens) are never logged
      log.info({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
    });
    next();
  });
  // webhooks are signed over the exact bytes sent: keep them raw (and never parse before verifying)
  app.use('/api/hooks', express.raw({ type: () => true, limit: '1mb' }));
  app.use(express.json({ limit: '1mb' }));
  app.use((req, _res, next) => {
    if (req.body !== null && typeof req.body === 'object' && !Buffer.isBuffer(req.body) && jsonDepth(req.body, MAX_BODY_DEPTH) > MAX_BODY_DEPTH) {
      next(new ApiError(400, 'invalid_request', `The JSON body is nested more than ${MAX_BODY_DEPTH} levels deep; values_override allows 32.`, {
        details: [{ field: '(body)', message: `expected at most ${MAX_BODY_DEPTH} levels of nesting` }],
      }));
      return;
    }
    next();
  });
  const idempotencyTtlMs = deps.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS;
  for (const route of routes) registerRoute(app, route, { db, touchToken, idempotencyTtlMs });
  // A known path with a method it does not serve is 405 naming the ones it does (OPTIONS: 204).
  const allowed = allowedMethods(routes);
  app.use((req, res, next) => {
    const allow = allowed(req.path);
    if (!allow) {
      next();
      return;
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('Allow', allow);
      res.status(204).end();
      return;
    }
    next(new ApiError(405, 'method_not_allowed', `${req.method} is not supported on ${req.path}; use ${allow}.`, { headers: { Allow: allow } }));
  });
  // the visualizer's pages and scripts hold no data (they read it through /api with a token)
  app.use('/ui', uiRouter());
  app.use('/docs', express.static(swaggerUiDir(), { index: false, fallthrough: true, maxAge: '1h' }));
  app.use((req, _res, next) => {
    next(new ApiError(404, 'not_found', `No route ${req.method} ${req.path}; see /openapi.json or /docs for the API.`));
  });
  app.use(errorMiddleware(log));

  return {
    app,
    routes,
    close: async () => {
      streams.closeAll();
      await hub.close();
      await Promise.all([...pending]);
    },
  };
}
