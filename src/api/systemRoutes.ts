// Health, readiness, metrics, the OpenAPI document and Swagger UI (served from swagger-ui-dist,
// no CDN).
import { createRequire } from 'node:module';
import path from 'node:path';
import { sql } from 'slonik';
import type { ClusterKind, DatabaseKind } from '../config.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Db } from '../db/pool.ts';
import { redactSecrets } from './redact.ts';
import { jsonRoute, rawRoute, type AnyRoute } from './route.ts';
import { Health, Ready } from './schemas.ts';

export function swaggerUiDir(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve('swagger-ui-dist/package.json'));
}

const DOCS_HTML = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>keelson API</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css" />
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/keelson-initializer.js" charset="UTF-8"></script>
  </body>
</html>
`;

const INITIALIZER_JS = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: 'StandaloneLayout',
  });
};
`;

/** What readiness asks of the runtime (`Runtime` offers both). */
export interface ReadinessOfRuntime {
  isListening(): boolean;
  /** false while self-fenced or while its lease heartbeat fails: it then does no work */
  holdsLeases(): boolean;
}

export interface SystemRouteDeps {
  readonly db: Db;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly runtime?: ReadinessOfRuntime | undefined;
  readonly openApi: () => Record<string, unknown>;
  readonly mode?: { cluster: ClusterKind; database: DatabaseKind } | undefined;
}

const TAGS = ['system'];

export function systemRoutes(deps: SystemRouteDeps): AnyRoute[] {
  return [
    jsonRoute({
      method: 'get',
      path: '/healthz',
      operationId: 'healthz',
      summary: 'Liveness: the process answers.',
      tags: TAGS,
      access: 'public',
      responses: { 200: { description: 'Up.', schema: Health } },
      handler: async () => ({ status: 200, body: { status: 'ok' } }),
    }),
    jsonRoute({
      method: 'get',
      path: '/readyz',
      operationId: 'readyz',
      summary: "Readiness: the database answers, the runtime's listener is up and it holds its leases; `mode` names the kind of cluster and database in use.",
      description: 'Unauthenticated, so it says only which part is down; the reason is in the server log.',
      tags: TAGS,
      access: 'public',
      responses: {
        200: { description: 'Ready.', schema: Ready },
        503: { description: 'Not ready; `checks` says which part is down.', schema: Ready },
      },
      handler: async () => {
        let database: 'up' | 'down' = 'up';
        try {
          // a hung database must not hang the probe
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            deps.db.oneFirst(sql.unsafe`select 1`),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error('no answer within 3 s')), 3000);
            }),
          ]).finally(() => clearTimeout(timer));
        } catch (error) {
          database = 'down';
          // error text names hosts, ports and users: the log gets it, anonymous callers do not
          deps.log.warn({ err: { message: redactSecrets(errorMessage(error)) } }, 'readiness: the database does not answer');
        }
        let runtime: 'up' | 'down' | 'absent' = 'absent';
        if (deps.runtime) {
          const listening = deps.runtime.isListening();
          // a fenced runtime hosts nothing while the API pool may still answer: not ready
          const leases = deps.runtime.holdsLeases();
          runtime = listening && leases ? 'up' : 'down';
          if (!leases) deps.log.warn('readiness: the runtime does not certainly hold its leases (self-fenced, or its lease heartbeat fails)');
        }
        const ready = database === 'up' && runtime !== 'down';
        return {
          status: ready ? 200 : 503,
          body: { status: ready ? 'ready' : 'not_ready', checks: { database, runtime }, ...(deps.mode ? { mode: deps.mode } : {}) },
        };
      },
    }),
    rawRoute({
      method: 'get',
      path: '/metrics',
      operationId: 'metrics',
      summary: 'Prometheus metrics (text exposition format).',
      tags: TAGS,
      access: 'public',
      responses: { 200: { description: 'Metrics.', contentType: 'text/plain' } },
      handler: async (_ctx, res) => {
        res.setHeader('Content-Type', deps.metrics.registry.contentType);
        res.status(200).send(await deps.metrics.registry.metrics());
      },
    }),
    rawRoute({
      method: 'get',
      path: '/openapi.json',
      operationId: 'openapi',
      summary: 'This OpenAPI 3.1 document.',
      tags: TAGS,
      access: 'public',
      responses: { 200: { description: 'The document.', contentType: 'application/json' } },
      handler: async (_ctx, res) => {
        res.status(200).json(deps.openApi());
      },
    }),
    rawRoute({
      method: 'get',
      path: '/docs',
      operationId: 'docs',
      summary: 'Swagger UI for this API.',
      tags: TAGS,
      access: 'public',
      responses: { 200: { description: 'HTML page.', contentType: 'text/html' } },
      handler: async (_ctx, res) => {
        res.status(200).type('html').send(DOCS_HTML);
      },
    }),
    rawRoute({
      method: 'get',
      path: '/docs/keelson-initializer.js',
      operationId: 'docsInitializer',
      summary: 'Swagger UI start-up script pointing at /openapi.json.',
      tags: TAGS,
      access: 'public',
      responses: { 200: { description: 'JavaScript.', contentType: 'text/javascript' } },
      handler: async (_ctx, res) => {
        res.status(200).type('text/javascript').send(INITIALIZER_JS);
      },
    }),
  ];
}
