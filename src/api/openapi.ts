// OpenAPI 3.1 document built from the route declarations (zod 4's native JSON Schema output is
// JSON Schema 2020-12, which OpenAPI 3.1 uses as is).
import { z } from 'zod';
import type { AnyRoute } from './route.ts';
import { ErrorBody } from './schemas.ts';

type Json = Record<string, unknown>;

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Json;
  delete json.$schema;
  return json;
}

/** Express `/a/:b` → OpenAPI `/a/{b}`. */
export function toOpenApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parameters(route: AnyRoute): Json[] {
  const out: Json[] = [];
  for (const [where, schema] of [['path', route.params], ['query', route.query]] as const) {
    if (!schema) continue;
    const json = schemaOf(schema, 'input');
    const properties = (json.properties ?? {}) as Record<string, Json>;
    const required = new Set((json.required ?? []) as string[]);
    for (const [name, property] of Object.entries(properties)) {
      const { description, ...rest } = property;
      out.push({
        name,
        in: where,
        required: where === 'path' || required.has(name),
        ...(description ? { description } : {}),
        schema: rest,
      });
    }
  }
  for (const header of route.headers ?? []) {
    out.push({ name: header.name, in: 'header', required: header.required ?? false, description: header.description, schema: { type: 'string' } });
  }
  return out;
}

const errorResponse = (description: string): Json => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

export function buildOpenApi(routes: readonly AnyRoute[], info: { version: string }): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of routes) {
    const responses: Record<string, Json> = {};
    for (const [status, spec] of Object.entries(route.responses)) {
      const headers = spec.headers
        ? Object.fromEntries(Object.entries(spec.headers).map(([name, description]) => [name, { description, schema: { type: 'string' } }]))
        : undefined;
      responses[status] = {
        description: spec.description,
        ...(headers ? { headers } : {}),
        ...(spec.schema
          ? { content: { [spec.contentType ?? 'application/json']: { schema: schemaOf(spec.schema, 'output') } } }
          : spec.contentType
            ? { content: { [spec.contentType]: { schema: { type: 'string' } } } }
            : Number(status) >= 400
              ? { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }
              : {}),
      };
    }
    if (route.params || route.query || route.body) responses['400'] ??= errorResponse('Invalid input: `error.details` names each bad field and what is accepted.');
    if (route.access !== 'public') {
      responses['401'] ??= errorResponse('Missing, unknown or revoked bearer token.');
      if (route.access !== 'authenticated') responses['403'] ??= errorResponse('The token lacks the permission this operation needs.');
    }
    if (route.kind === 'json' && route.method !== 'get' && route.access !== 'public') {
      responses['422'] ??= errorResponse('The Idempotency-Key was already used with a different request.');
    }
    responses['500'] ??= errorResponse('Internal error.');
    const operation: Json = {
      operationId: route.operationId,
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      tags: [...route.tags],
      security: route.access === 'public' ? [] : [{ bearerAuth: [] }],
      parameters: [
        ...parameters(route),
        ...(route.kind === 'json' && route.method !== 'get' && route.access !== 'public'
          ? [
              { name: 'Idempotency-Key', in: 'header', required: false, description: 'Retry-safe key: a repeat returns the first response with Idempotent-Replayed: true.', schema: { type: 'string', maxLength: 255 } },
              { name: 'X-Request-ID', in: 'header', required: false, description: 'Used as the idempotency key when Idempotency-Key is absent.', schema: { type: 'string', maxLength: 255 } },
            ]
          : []),
      ],
      ...(route.body ? { requestBody: { required: !route.bodyOptional, content: { 'application/json': { schema: schemaOf(route.body, 'input') } } } } : {}),
      responses,
    };
    const path = toOpenApiPath(route.path);
    paths[path] ??= {};
    paths[path][route.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'keelson API',
      version: info.version,
      description: 'Desired state of Kubernetes deployments, their history, transitions and live events. See docs/api.md.',
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'deployments', description: 'Desired and observed state per project and environment.' },
      { name: 'fleet', description: 'Every visible deployment at once: counts by state, what needs attention, filtered pages (the /ui fleet view).' },
      { name: 'notifications', description: 'Outbox events, notification sinks (admin) and their deliveries. See docs/notifications.md.' },
      { name: 'ops-repos', description: 'Git repositories holding manifest templates (admin).' },
      { name: 'system', description: 'Health, readiness, metrics and this document.' },
    ],
    paths,
    components: {
      schemas: { Error: schemaOf(ErrorBody, 'output') },
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'kls_<43 base64url characters>', description: 'Create with `keelson token create`.' },
      },
    },
  };
}
