// One declaration per route: express registration, input validation, auth, idempotency and the
// OpenAPI operation all come from the same object, so a route cannot exist undocumented.
import { createHash } from 'node:crypto';
import type express from 'express';
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Db } from '../db/pool.ts';
import { ApiError, parseOr400 } from './httpErrors.ts';
import { redactSecrets } from './redact.ts';
import { findPrincipal, hasPermission, type Permission, type Principal } from './tokens.ts';

export type Method = 'get' | 'post' | 'patch' | 'delete';

/** `public`: no token; a permission: a valid token holding it; `admin-global`: admin without a project scope. */
/** `authenticated`: any valid token, whatever its permissions (for what names no data). */
export type Access = 'public' | 'authenticated' | Permission | 'admin-global';

export interface ResponseSpec {
  readonly description: string;
  readonly schema?: z.ZodType;
  /** Defaults to application/json when a schema is given. */
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface JsonResult {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface Context<P, Q, B> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  readonly principal: Principal | null;
  /** Inside a transaction for mutations: the change, its audit row and its idempotency key commit together. */
  readonly db: CommonQueryMethods;
  readonly req: express.Request;
  /** Writes an audit row (actor: the token's name, or `actor` for requests without one). */
  readonly audit: (action: string, target: string, payload?: Record<string, unknown>, actor?: string) => Promise<void>;
}

interface RouteBase<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  readonly method: Method;
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  readonly access: Access;
  readonly params?: P;
  readonly query?: Q;
  readonly body?: B;
  /** the body may be left out (then it is parsed as `{}`): for a body of optional fields added later */
  readonly bodyOptional?: boolean;
  readonly headers?: ReadonlyArray<{ name: string; description: string; required?: boolean }>;
  readonly responses: Readonly<Record<number, ResponseSpec>>;
}

export interface JsonRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> extends RouteBase<P, Q, B> {
  readonly kind: 'json';
  /** POST/PATCH honour Idempotency-Key / X-Request-ID; a replay rebuilds headers from the stored body. */
  readonly replayHeaders?: (body: unknown) => Record<string, string>;
  readonly handler: (ctx: Context<z.output<P>, z.output<Q>, z.output<B>>) => Promise<JsonResult>;
}

export interface RawRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> extends RouteBase<P, Q, B> {
  readonly kind: 'raw';
  /** Runs outside a transaction: `audit` commits on its own. */
  readonly handler: (ctx: Context<z.output<P>, z.output<Q>, z.output<B>>, res: express.Response) => Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRoute = JsonRoute<any, any, any> | RawRoute<any, any, any>;

type Empty = z.ZodObject<Record<string, never>>;

export function jsonRoute<P extends z.ZodType = Empty, Q extends z.ZodType = Empty, B extends z.ZodType = Empty>(
  route: Omit<JsonRoute<P, Q, B>, 'kind'>,
): AnyRoute {
  return { kind: 'json', ...route };
}

export function rawRoute<P extends z.ZodType = Empty, Q extends z.ZodType = Empty, B extends z.ZodType = Empty>(
  route: Omit<RawRoute<P, Q, B>, 'kind'>,
): AnyRoute {
  return { kind: 'raw', ...route };
}

export interface RouteDeps {
  readonly db: Db;
  /** Records that a token was used (throttled by the caller). */
  readonly touchToken: (principal: Principal) => void;
  /** KEELSON_IDEMPOTENCY_TTL: an older key is forgotten (the retention pruner deletes it later). */
  readonly idempotencyTtlMs: number;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

async function authenticate(deps: RouteDeps, req: express.Request, access: Access): Promise<Principal | null> {
  if (access === 'public') return null;
  const challenge = { 'WWW-Authenticate': 'Bearer realm="keelson"' };
  // node keeps the first of repeated Authorization headers; two credentials are ambiguous (a
  // proxy added one?), so neither is used
  if (req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]?.toLowerCase() === 'authorization').length > 1) {
    throw new ApiError(400, 'invalid_request', 'The request has more than one Authorization header; send exactly one.', {
      details: [{ field: 'Authorization', message: 'expected exactly one Authorization header' }],
    });
  }
  const header = req.get('authorization');
  if (!header) {
    throw new ApiError(401, 'unauthenticated', 'Missing Authorization header; send "Authorization: Bearer <token>" (create one with `keelson token create`).', { headers: challenge });
  }
  const match = BEARER.exec(header);
  const principal = match?.[1] ? await findPrincipal(deps.db, match[1]) : null;
  if (!principal) {
    throw new ApiError(401, 'unauthenticated', 'The bearer token is malformed, unknown or revoked.', { headers: { ...challenge, 'WWW-Authenticate': 'Bearer realm="keelson", error="invalid_token"' } });
  }
  deps.touchToken(principal);
  if (access === 'authenticated') return principal;
  const needed: Permission = access === 'admin-global' ? 'admin' : access;
  if (!hasPermission(principal, needed)) {
    throw new ApiError(403, 'forbidden', `Token "${principal.name}" lacks the "${needed}" permission this request needs.`);
  }
  if (access === 'admin-global' && principal.project !== null) {
    throw new ApiError(403, 'forbidden', `Token "${principal.name}" is limited to project "${principal.project}"; this request needs an admin token without a project scope.`);
  }
  return principal;
}

/** Keys sorted at every level, so {a,b} and {b,a} hash alike. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

const StoredKey = z.object({ request_hash: z.string(), response_status: z.number().int(), response_body: z.unknown() });

/** A route without a query schema takes no query parameters: `?anything` is a 400, not ignored. */
const NoQuery = z.strictObject({});

function sendJson(res: express.Response, result: JsonResult, extraHeaders: Record<string, string> = {}): void {
  for (const [name, value] of Object.entries({ ...result.headers, ...extraHeaders })) res.setHeader(name, value);
  if (result.status === 204) res.status(204).end();
  else res.status(result.status).json(result.body);
}

export function registerRoute(app: express.Express, route: AnyRoute, deps: RouteDeps): void {
  const handler: express.RequestHandler = async (req, res) => {
    const principal = await authenticate(deps, req, route.access);
    const params = route.params ? parseOr400(route.params, req.params, 'path') : {};
    const query = parseOr400(route.query ?? NoQuery, req.query, 'query');
    const given = route.bodyOptional && (req.body === undefined || req.body === null) ? {} : req.body;
    if (route.body && (given === undefined || given === null || typeof given !== 'object' || Array.isArray(given))) {
      throw new ApiError(400, 'invalid_request', 'Expected a JSON object body with Content-Type: application/json.', {
        details: [{ field: '(body)', message: 'expected a JSON object' }],
      });
    }
    const body = route.body ? parseOr400(route.body, given, 'body') : undefined;
    const auditTo = (db: CommonQueryMethods) => async (action: string, target: string, payload: Record<string, unknown> = {}, actor?: string) => {
      await db.query(sql.unsafe`
        insert into audit_log (actor, action, target, payload, ip)
        values (${principal?.name ?? actor ?? 'anonymous'}, ${action}, ${target}, ${sql.jsonb(JSON.parse(redactSecrets(JSON.stringify(payload))))}, ${req.ip ?? null})`);
    };
    if (route.kind === 'raw') {
      await route.handler({ params, query, body, principal, db: deps.db, req, audit: auditTo(deps.db) }, res);
      return;
    }
    const run = async (db: CommonQueryMethods): Promise<JsonResult> => route.handler({ params, query, body, principal, db, req, audit: auditTo(db) });
    if (route.method === 'get') {
      sendJson(res, await run(deps.db));
      return;
    }
    const key = req.get('idempotency-key') ?? req.get('x-request-id');
    if (key === undefined || principal === null) {
      sendJson(res, await deps.db.transaction(run));
      return;
    }
    if (!KEY_PATTERN.test(key)) {
      throw new ApiError(400, 'invalid_request', 'Idempotency-Key must be 1-255 visible ASCII characters.', {
        details: [{ field: 'Idempotency-Key', message: 'expected 1-255 visible ASCII characters, e.g. a UUID' }],
      });
    }
    const requestHash = createHash('sha256')
      .update(`${req.method} ${req.originalUrl}\n${canonicalJson(req.body ?? null)}`)
      .digest('hex');
    // The key row is inserted first, in the same transaction as the change: a concurrent
    // duplicate blocks on the primary key until this commits, then replays the stored response;
    // if this rolls back (an error), the duplicate executes instead. Errors are not stored.
    const outcome = await deps.db.transaction(async (tx) => {
      const inserted = await tx.maybeOne(sql.type(z.object({ key: z.string() }))`
        insert into idempotency_keys (key, token_id, method, path, request_hash, response_status, response_body)
        values (${key}, ${principal.tokenId}, ${req.method}, ${req.originalUrl}, ${requestHash}, 0, 'null'::jsonb)
        on conflict (token_id, key) do update
          set method = excluded.method, path = excluded.path, request_hash = excluded.request_hash,
              response_status = 0, response_body = 'null'::jsonb, created_at = now()
          -- an expired key is forgotten: it starts over as a new request
          where idempotency_keys.created_at < now() - make_interval(secs => ${deps.idempotencyTtlMs / 1000})
        returning key`);
      if (!inserted) {
        const stored = await tx.one(sql.type(StoredKey)`
          select request_hash, response_status, response_body from idempotency_keys
          where token_id = ${principal.tokenId} and key = ${key}`);
        if (stored.request_hash !== requestHash) {
          throw new ApiError(422, 'idempotency_key_reused', 'This Idempotency-Key was already used for a different request (method, path or body); use a new key for a new request.', {
            details: [{ field: 'Idempotency-Key', message: 'expected a key not used before with a different request' }],
          });
        }
        return { replayed: true, result: { status: stored.response_status, body: stored.response_body, headers: route.replayHeaders?.(stored.response_body) ?? {} } };
      }
      const result = await run(tx);
      await tx.query(sql.unsafe`
        update idempotency_keys set response_status = ${result.status}, response_body = ${sql.jsonb((result.body ?? null) as never)}
        where token_id = ${principal.tokenId} and key = ${key}`);
      return { replayed: false, result };
    });
    sendJson(res, outcome.result, outcome.replayed ? { 'Idempotent-Replayed': 'true' } : {});
  };
  app[route.method](route.path, handler);
}
