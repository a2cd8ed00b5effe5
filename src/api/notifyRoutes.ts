// Notifications in the API: /api/admin/sinks (CRUD, admin token without a project scope),
// /api/admin/deliveries (e.g. ?status=dead) and a deployment's outbox events with their
// deliveries and attempts, …/notifications (deploy:read of its project). A sink's url, secret and headers are write-only: every
// response shows the URL's scheme and host, whether a secret is set and the header names —
// never the values (a Slack webhook's path is its credential) — and audit rows say the same.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { SinkFields, urlHost } from '../notify/sinkRules.ts';
import { SINK_KINDS } from '../notify/sinks/sink.ts';
import { loadDeployment } from './deploymentRoutes.ts';
import { ApiError, notFound } from './httpErrors.ts';
import { redactSecrets } from './redact.ts';
import { jsonRoute, type AnyRoute } from './route.ts';
import { DeploymentParams, page, PageQuery, Uuid } from './schemas.ts';

const TAGS = ['notifications'];

const StoredSink = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(SINK_KINDS),
  url: z.string(),
  has_secret: z.boolean(),
  headers: z.record(z.string(), z.unknown()),
  projects: z.array(z.string()).nullable(),
  environments: z.array(z.string()).nullable(),
  event_types: z.array(z.string()).nullable(),
  enabled: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});
type StoredSink = z.infer<typeof StoredSink>;

// the secret itself is never selected; url and headers only to be reduced below
const SINK_COLUMNS = sql.fragment`
  id, name, kind, url, secret is not null as has_secret, headers, projects, environments, event_types, enabled, created_at, updated_at`;

export const Sink = StoredSink.omit({ url: true, headers: true })
  .extend({
    url_host: z.string().meta({ description: 'Scheme and host of the URL; the rest is never returned.' }),
    header_names: z.array(z.string()).meta({ description: 'Names of the custom headers; their values are never returned.' }),
  })
  .meta({ description: 'A notification sink; url, secret and header values are never returned.' });

function publicSink(row: StoredSink): z.infer<typeof Sink> {
  const { url, headers, ...rest } = row;
  return { ...rest, url_host: urlHost(url), header_names: Object.keys(headers).sort() };
}

const CreateSinkBody = z.strictObject({
  name: SinkFields.name,
  kind: SinkFields.kind,
  url: SinkFields.url,
  secret: SinkFields.secret.optional(),
  headers: SinkFields.headers.optional(),
  projects: SinkFields.projects.optional(),
  environments: SinkFields.environments.optional(),
  event_types: SinkFields.event_types.optional(),
  enabled: SinkFields.enabled.optional(),
});
const PatchSinkBody = CreateSinkBody.omit({ kind: true })
  .partial()
  .refine((body) => Object.keys(body).length > 0, { message: 'expected at least one field to change' });

/** What an audit row may say of a sink body: which secret fields were set, never their values. */
function auditable(body: Record<string, unknown>): Record<string, unknown> {
  const { url, secret, headers, ...rest } = body;
  return {
    ...rest,
    ...(typeof url === 'string' ? { url_host: urlHost(url) } : {}),
    ...(secret !== undefined ? { secret: secret === null ? 'removed' : 'set' } : {}),
    ...(headers !== undefined && headers !== null ? { header_names: Object.keys(headers as object).sort() } : {}),
  };
}

const SinkParams = z.object({ id: Uuid });

async function loadSink(db: CommonQueryMethods, id: string): Promise<StoredSink> {
  const row = await db.maybeOne(sql.type(StoredSink)`select ${SINK_COLUMNS} from notification_sinks where id = ${id}`);
  if (!row) throw notFound(`No notification sink with id ${id}; list them with GET /api/admin/sinks.`);
  return row;
}

const nameTaken = (name: string) =>
  new ApiError(409, 'sink_exists', `A notification sink named "${name}" already exists.`, {
    details: [{ field: 'name', message: 'expected a name not used by another sink' }],
  });
const webhookUnsigned = () =>
  new ApiError(400, 'invalid_request', 'A webhook sink needs a secret: receivers verify X-Keelson-Signature-256 with it.', {
    details: [{ field: 'secret', message: 'expected 16-256 visible ASCII characters for a webhook sink' }],
  });

// ---- events and deliveries -----------------------------------------------------------------

const Attempt = z.object({
  attempt: z.number().int(),
  started_at: z.string(),
  duration_ms: z.number().int(),
  status_code: z.number().int().nullable(),
  error: z.string().nullable(),
});
const EventDelivery = z.object({
  id: z.number().int(),
  sink: z.string(),
  kind: z.enum(SINK_KINDS),
  status: z.enum(['pending', 'delivered', 'dead']),
  attempts: z.number().int(),
  next_attempt_at: z.string(),
  last_error: z.string().nullable(),
  finished_at: z.string().nullable(),
  attempt_log: z.array(Attempt),
});
const DeploymentEvent = z
  .object({
    id: z.string().meta({ description: 'Stable event id (the CloudEvents id): receivers de-duplicate by it.' }),
    position: z.number().int(),
    type: z.string(),
    action_id: z.string(),
    seq: z.number().int(),
    occurred_at: z.string(),
    data: z.record(z.string(), z.unknown()),
    deliveries: z.array(EventDelivery),
  })
  .meta({ description: 'An outbox event with its deliveries.' });
const StoredEvent = DeploymentEvent.omit({ deliveries: true });
const StoredDelivery = EventDelivery.omit({ attempt_log: true }).extend({ event_id: z.string() });
const StoredAttempt = Attempt.extend({ delivery_id: z.number().int() });

const Delivery = z
  .object({
    id: z.number().int(),
    status: z.enum(['pending', 'delivered', 'dead']),
    attempts: z.number().int(),
    next_attempt_at: z.string(),
    last_error: z.string().nullable(),
    created_at: z.string(),
    finished_at: z.string().nullable(),
    sink: z.object({ id: z.string(), name: z.string(), kind: z.enum(SINK_KINDS) }),
    event: z.object({ id: z.string(), type: z.string(), project: z.string(), environment: z.string(), occurred_at: z.string() }),
  })
  .meta({ description: 'A delivery of one event to one sink.' });

const DeliveriesQuery = PageQuery.extend({
  status: z.enum(['pending', 'delivered', 'dead'], { error: 'expected pending, delivered or dead' }).optional().meta({ description: 'Only deliveries in this status.' }),
});

const redactNullable = (text: string | null) => (text === null ? null : redactSecrets(text));

export function notifyRoutes(): AnyRoute[] {
  return [
    jsonRoute({
      method: 'get',
      path: '/api/admin/sinks',
      operationId: 'listSinks',
      summary: 'List notification sinks (secrets never returned).',
      tags: TAGS,
      access: 'admin-global',
      responses: { 200: { description: 'Sinks by name.', schema: z.object({ items: z.array(Sink) }) } },
      handler: async ({ db }) => {
        const rows = await db.any(sql.type(StoredSink)`select ${SINK_COLUMNS} from notification_sinks order by name`);
        return { status: 200, body: { items: rows.map(publicSink) } };
      },
    }),
    jsonRoute({
      method: 'post',
      path: '/api/admin/sinks',
      operationId: 'createSink',
      summary: 'Add a notification sink (webhook, slack or registry).',
      description: 'See docs/notifications.md. url, secret and headers are write-only.',
      tags: TAGS,
      access: 'admin-global',
      body: CreateSinkBody,
      responses: {
        201: { description: 'Created.', schema: Sink, headers: { Location: 'URL of the new sink.' } },
        409: { description: 'The name is taken.' },
      },
      replayHeaders: (body): Record<string, string> => {
        const id = (body as { id?: string }).id;
        return id ? { Location: `/api/admin/sinks/${id}` } : {};
      },
      handler: async ({ db, body, audit }) => {
        if (body.kind === 'webhook' && !body.secret) throw webhookUnsigned();
        const row = await db.maybeOne(sql.type(StoredSink)`
          insert into notification_sinks (name, kind, url, secret, headers, projects, environments, event_types, enabled)
          values (${body.name}, ${body.kind}, ${body.url}, ${body.secret ?? null}, ${sql.jsonb(body.headers ?? {})},
                  ${body.projects ? sql.array(body.projects, 'text') : null}, ${body.environments ? sql.array(body.environments, 'text') : null},
                  ${body.event_types ? sql.array(body.event_types, 'text') : null}, ${body.enabled ?? true})
          on conflict (name) do nothing
          returning ${SINK_COLUMNS}`);
        if (!row) throw nameTaken(body.name);
        await audit('sink.create', `sink/${row.name}`, auditable(body));
        return { status: 201, body: publicSink(row), headers: { Location: `/api/admin/sinks/${row.id}` } };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/admin/sinks/:id',
      operationId: 'getSink',
      summary: 'One notification sink (secrets never returned).',
      tags: TAGS,
      access: 'admin-global',
      params: SinkParams,
      responses: { 200: { description: 'The sink.', schema: Sink }, 404: { description: 'No such sink.' } },
      handler: async ({ db, params }) => ({ status: 200, body: publicSink(await loadSink(db, params.id)) }),
    }),
    jsonRoute({
      method: 'patch',
      path: '/api/admin/sinks/:id',
      operationId: 'updateSink',
      summary: 'Change a notification sink; an omitted field is kept, `secret: null` removes the secret.',
      tags: TAGS,
      access: 'admin-global',
      params: SinkParams,
      body: PatchSinkBody,
      responses: {
        200: { description: 'The updated sink.', schema: Sink },
        404: { description: 'No such sink.' },
        409: { description: 'The new name is taken.' },
      },
      handler: async ({ db, params, body, audit }) => {
        const before = await loadSink(db, params.id);
        if (before.kind === 'webhook' && body.secret === null) throw webhookUnsigned();
        const set = (column: string, value: unknown) => sql.fragment`${sql.identifier([column])} = ${value as never}`;
        const changes = [
          body.name !== undefined ? set('name', body.name) : null,
          body.url !== undefined ? set('url', body.url) : null,
          body.secret !== undefined ? set('secret', body.secret) : null,
          body.headers !== undefined ? sql.fragment`headers = ${sql.jsonb(body.headers)}` : null,
          body.projects !== undefined ? sql.fragment`projects = ${body.projects ? sql.array(body.projects, 'text') : null}` : null,
          body.environments !== undefined ? sql.fragment`environments = ${body.environments ? sql.array(body.environments, 'text') : null}` : null,
          body.event_types !== undefined ? sql.fragment`event_types = ${body.event_types ? sql.array(body.event_types, 'text') : null}` : null,
          body.enabled !== undefined ? set('enabled', body.enabled) : null,
        ].filter((c) => c !== null);
        const row = await db
          .maybeOne(sql.type(StoredSink)`
            update notification_sinks set ${sql.join(changes, sql.fragment`, `)}, updated_at = now()
            where id = ${params.id} returning ${SINK_COLUMNS}`)
          .catch((error: unknown) => {
            if ((error as { name?: string }).name === 'UniqueIntegrityConstraintViolationError') throw nameTaken(body.name ?? before.name);
            throw error;
          });
        if (!row) throw notFound(`No notification sink with id ${params.id}.`);
        await audit('sink.update', `sink/${row.name}`, auditable(body));
        return { status: 200, body: publicSink(row) };
      },
    }),
    jsonRoute({
      method: 'delete',
      path: '/api/admin/sinks/:id',
      operationId: 'deleteSink',
      summary: 'Remove a notification sink and its pending deliveries.',
      tags: TAGS,
      access: 'admin-global',
      params: SinkParams,
      responses: { 204: { description: 'Deleted.' }, 404: { description: 'No such sink.' } },
      handler: async ({ db, params, audit }) => {
        const row = await loadSink(db, params.id);
        await db.query(sql.unsafe`delete from notification_sinks where id = ${params.id}`);
        await audit('sink.delete', `sink/${row.name}`);
        return { status: 204, body: null };
      },
    }),
    jsonRoute({
      method: 'get',
      path: '/api/admin/deliveries',
      operationId: 'listDeliveries',
      summary: 'Notification deliveries, newest first (e.g. ?status=dead: given up after the horizon, with the last error).',
      tags: TAGS,
      access: 'admin-global',
      query: DeliveriesQuery,
      responses: { 200: { description: 'A page of deliveries.', schema: page(Delivery) } },
      handler: async ({ db, query }) => {
        const limit = query.limit ?? 50;
        const rows = await db.any(sql.type(z.object({
          id: z.number(), status: z.enum(['pending', 'delivered', 'dead']), attempts: z.number(), next_attempt_at: z.string(),
          last_error: z.string().nullable(), created_at: z.string(), finished_at: z.string().nullable(),
          sink_id: z.string(), sink_name: z.string(), kind: z.enum(SINK_KINDS),
          event_id: z.string(), type: z.string(), project: z.string(), environment: z.string(), occurred_at: z.string(),
        }))`
          select d.id, d.status, d.attempts, d.next_attempt_at, d.last_error, d.created_at, d.finished_at,
                 s.id as sink_id, s.name as sink_name, s.kind, ev.id as event_id, ev.type, ev.project, ev.environment, ev.occurred_at
          from notification_deliveries d
          join notification_sinks s on s.id = d.sink_id join deployment_events ev on ev.id = d.event_id
          where (${query.status ?? null}::text is null or d.status = ${query.status ?? null})
            and (${query.before ?? null}::bigint is null or d.id < ${query.before ?? null})
          order by d.id desc limit ${limit + 1}`);
        const items = rows.slice(0, limit).map((r) => ({
          id: r.id, status: r.status, attempts: r.attempts, next_attempt_at: r.next_attempt_at, last_error: redactNullable(r.last_error),
          created_at: r.created_at, finished_at: r.finished_at,
          sink: { id: r.sink_id, name: r.sink_name, kind: r.kind },
          event: { id: r.event_id, type: r.type, project: r.project, environment: r.environment, occurred_at: r.occurred_at },
        }));
        return { status: 200, body: { items, next: rows.length > limit ? (items.at(-1)?.id ?? null) : null } };
      },
    }),
    jsonRoute({
      method: 'get',
      // not …/events: that path is the SSE stream of transitions
      path: '/api/projects/:project/deployments/:env/notifications',
      operationId: 'listDeploymentNotifications',
      summary: 'Outbox events of a deployment (action starts and ends, health changes), newest first, with their deliveries and attempts.',
      tags: ['deployments', ...TAGS],
      access: 'deploy:read',
      params: DeploymentParams,
      query: PageQuery,
      responses: {
        200: { description: 'A page of events (`before`/`next` are positions).', schema: page(DeploymentEvent) },
        404: { description: 'No such deployment (or outside the token\'s scope).' },
      },
      handler: async ({ db, principal, params, query }) => {
        const deployment = await loadDeployment(db, principal, params.project, params.env);
        const limit = query.limit ?? 50;
        const events = await db.any(sql.type(StoredEvent)`
          select id, position, type, action_id, seq, occurred_at, data from deployment_events
          where deployment_id = ${deployment.id} and (${query.before ?? null}::bigint is null or position < ${query.before ?? null})
          order by position desc limit ${limit + 1}`);
        const shown = events.slice(0, limit);
        const ids = shown.map((e) => e.id);
        const deliveries = ids.length === 0 ? [] : await db.any(sql.type(StoredDelivery)`
          select d.id, d.event_id, s.name as sink, s.kind, d.status, d.attempts, d.next_attempt_at, d.last_error, d.finished_at
          from notification_deliveries d join notification_sinks s on s.id = d.sink_id
          where d.event_id = any (${sql.array(ids, 'uuid')}) order by d.id`);
        const attempts = deliveries.length === 0 ? [] : await db.any(sql.type(StoredAttempt)`
          select delivery_id, attempt, started_at, duration_ms, status_code, error from notification_attempts
          where delivery_id = any (${sql.array(deliveries.map((d) => d.id), 'int8')}) order by delivery_id, attempt`);
        const items = shown.map((event) => {
          const error = event.data.error;
          return {
            ...event,
            // a SQL writer may have stored anything: redacted again on the way out
            data: typeof error === 'string' ? { ...event.data, error: redactSecrets(error) } : event.data,
            deliveries: deliveries
              .filter((d) => d.event_id === event.id)
              .map(({ event_id: _event, ...d }) => ({
                ...d,
                last_error: redactNullable(d.last_error),
                attempt_log: attempts.filter((a) => a.delivery_id === d.id).map(({ delivery_id: _id, ...a }) => ({ ...a, error: redactNullable(a.error) })),
              })),
          };
        });
        return { status: 200, body: { items, next: events.length > limit ? (shown.at(-1)?.position ?? null) : null } };
      },
    }),
  ];
}
