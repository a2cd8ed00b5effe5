// Health, readiness, metrics, /openapi.json (valid OpenAPI 3.1, covering every registered
// express route) and Swagger UI served without a CDN.
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import type { Db } from '../../src/db/pool.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { startHarness, type Harness } from './harness.ts';

let h: Harness;
let listening = true;
let holdsLeases = true;

beforeAll(async () => {
  h = await startHarness({ runtime: { isListening: () => listening, holdsLeases: () => holdsLeases } });
});

afterAll(async () => {
  await h.close();
});

describe('health and readiness', () => {
  it('GET /healthz answers without a token', async () => {
    const response = await h.request('GET', '/healthz');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'ok' });
  });

  it('GET /readyz is 200 when the database answers and the runtime listens, 503 naming the runtime otherwise', async () => {
    const ready = await h.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', checks: { database: 'up', runtime: 'up' } });
    listening = false;
    try {
      const down = await h.request('GET', '/readyz');
      expect(down.status).toBe(503);
      expect(down.body).toEqual({ status: 'not_ready', checks: { database: 'up', runtime: 'down' } });
    } finally {
      listening = true;
    }
  });

  // self-fenced (lease validity ran out) or heartbeat failing, while the API pool still answers:
  // this process does no work, so it must not look ready (an orphaned lease once hid behind 200)
  it('GET /readyz is 503 naming the runtime while it does not certainly hold its leases', async () => {
    holdsLeases = false;
    try {
      const down = await h.request('GET', '/readyz');
      expect(down.status).toBe(503);
      expect(down.body).toEqual({ status: 'not_ready', checks: { database: 'up', runtime: 'down' } });
    } finally {
      holdsLeases = true;
    }
    expect((await h.request('GET', '/readyz')).status).toBe(200);
  });

  it('GET /readyz is 503 naming the database when it does not answer, and discloses no error text or address', async () => {
    // a pool whose every query fails, as one does while PostgreSQL is unreachable
    const failing = (async () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    }) as never;
    const db = { oneFirst: failing, one: failing, maybeOne: failing, any: failing, query: failing } as unknown as Db;
    const api = createApp({ db, databaseUrl: h.t.url, log: createLogger({ level: 'silent', format: 'json' }), metrics: createMetrics() });
    const server = api.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const address = server.address() as { port: number };
      const response = await fetch(`http://127.0.0.1:${address.port}/readyz`);
      expect(response.status).toBe(503);
      const text = await response.text();
      expect(JSON.parse(text)).toEqual({ status: 'not_ready', checks: { database: 'down', runtime: 'absent' } });
      expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|5432/);
    } finally {
      await api.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('metrics', () => {
  it('serves Prometheus text including the http request counter and histogram', async () => {
    await h.request('GET', '/healthz');
    const response = await h.request('GET', '/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(response.text).toMatch(/keelson_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
    expect(response.text).toContain('keelson_http_request_duration_seconds_bucket');
    expect(response.text).toContain('keelson_transitions_total');
  });
});

describe('OpenAPI', () => {
  it('is a valid OpenAPI 3.1 document with a bearer security scheme', async () => {
    const response = await h.request('GET', '/openapi.json');
    expect(response.status).toBe(200);
    expect(response.body.openapi).toBe('3.1.0');
    const result = await new Validator().validate(response.body);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(response.body.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(response.body.paths['/api/projects/{project}/deployments/{env}'].patch.security).toEqual([{ bearerAuth: [] }]);
  });

  it('documents every route registered on the express router', async () => {
    const doc = (await h.request('GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const registered: string[] = [];
    const stack = (h.api.app.router as unknown as { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> }).stack;
    for (const layer of stack) {
      if (!layer.route) continue;
      for (const method of Object.keys(layer.route.methods)) registered.push(`${method} ${layer.route.path.replace(/:(\w+)/g, '{$1}')}`);
    }
    expect(registered.length).toBeGreaterThan(15);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method} ${path}`));
    expect(documented.sort()).toEqual(registered.sort());
    expect(registered).toContain('get /api/machine');
  });
});

describe('Swagger UI', () => {
  it('serves /docs from swagger-ui-dist pointing at /openapi.json, with no CDN', async () => {
    const page = await h.request('GET', '/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const sources = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) {
      expect(source.startsWith('/docs/')).toBe(true);
      const asset = await fetch(`${h.baseUrl}${source}`);
      expect(asset.status).toBe(200);
      await asset.arrayBuffer();
    }
    const init = await h.request('GET', '/docs/keelson-initializer.js');
    expect(init.text).toContain("url: '/openapi.json'");
  });
});

describe('errors', () => {
  it('answers an unknown route with the one error shape', async () => {
    const response = await h.request('GET', '/api/nope');
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ error: { code: 'not_found', message: expect.stringContaining('/openapi.json') } });
  });

  it('answers a method a known path does not serve with 405 and Allow, and OPTIONS with 204 and Allow', async () => {
    const put = await h.request('PUT', '/api/projects/shop/deployments/prod');
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, PATCH, DELETE, OPTIONS');
    expect(put.body).toEqual({ error: { code: 'method_not_allowed', message: 'PUT is not supported on /api/projects/shop/deployments/prod; use GET, HEAD, PATCH, DELETE, OPTIONS.' } });
    expect((await h.request('DELETE', '/healthz')).headers.get('allow')).toBe('GET, HEAD, OPTIONS');
    const options = await h.request('OPTIONS', '/api/admin/ops-repos');
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')).toBe('GET, HEAD, POST, OPTIONS');
  });

  it('types query parameters: an unknown one, an array, or a repeated one is a 400 naming it', async () => {
    const token = await h.token(['deploy:read'], null, 'query-reader');
    for (const [query, field] of [['project[]=zzz', 'query.project[]'], ['project=a&project=b', 'query.project'], ['projekt=a', 'query.projekt']]) {
      const response = await h.request('GET', `/api/deployments?${query}`, { token });
      expect(response.status, query).toBe(400);
      expect(response.body.error.details.map((d: { field: string }) => d.field), query).toContain(field);
    }
    expect((await h.request('GET', '/api/machine?x=1', { token })).status).toBe(400);
  });

  it('refuses two Authorization headers in the error shape, before looking at either', async () => {
    const token = await h.token(['deploy:read'], null, 'twice');
    const socket = (await import('node:net')).connect(Number(new URL(h.baseUrl).port), '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.write(`GET /api/deployments HTTP/1.1\r\nHost: k\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    await new Promise((resolve) => socket.on('close', resolve));
    expect(text).toMatch(/^HTTP\/1\.1 400/);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).error).toEqual({
      code: 'invalid_request',
      message: 'The request has more than one Authorization header; send exactly one.',
      details: [{ field: 'Authorization', message: 'expected exactly one Authorization header' }],
    });
  });

  it('answers malformed HTTP in the error shape too', async () => {
    const socket = (await import('node:net')).connect(Number(new URL(h.baseUrl).port), '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.write('GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n');
    await new Promise((resolve) => socket.on('close', resolve));
    expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toEqual({ error: { code: 'invalid_request', message: 'The request is not valid HTTP/1.1.' } });
  });
});

describe('unauthenticated endpoints disclose nothing', () => {
  it('/healthz, /readyz and /metrics carry no error text, file paths, URLs or addresses', async () => {
    await h.request('GET', '/api/projects/x/deployments'); // a 401 counted in the metrics
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const { text } = await h.request('GET', path);
      expect(text, path).not.toMatch(/\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b|:\/\/|\/(tmp|home|work|root|var|etc|usr)\/|node_modules|Error:|ECONN/);
      expect(text, path).not.toContain(new URL(h.t.url).hostname === 'localhost' ? 'localhost:' : new URL(h.t.url).host);
    }
  });
});
