-- Notifications (issue #15): an outbox written by the journal, sinks configured by admins, and
-- the deliveries a dispatcher works off (src/notify/, docs/notifications.md).
--
-- * `deployment_events`: one row per action start and end, inserted in the SAME transaction as
--   the journal write that caused it (so a fenced write leaves none, and a committed transition
--   always has its events). The id is derived from (deployment, action, start|end): re-journaling
--   after a restore never duplicates an event, and receivers de-duplicate by it.
-- * `notification_sinks`: where events go (webhook, slack, registry), filtered per project,
--   environment and event type. url, secret and headers are secrets: the API never returns them.
-- * `notification_deliveries`: one per (event, sink), fanned out with the event; claimed by any
--   replica's dispatcher with FOR UPDATE SKIP LOCKED; `notification_attempts` records each try.

create table notification_sinks (
  id           uuid primary key default gen_random_uuid(),
  name         text not null unique
               constraint notification_sinks_name_format
               check (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  kind         text not null
               constraint notification_sinks_kind_valid check (kind in ('webhook', 'slack', 'registry')),
  -- http(s) only, with a host, no user:password@ (credentials go in headers), visible ASCII
  -- (src/notify/sinkRules.ts states the same)
  url          text not null
               constraint notification_sinks_url_valid
               check (length(url) between 1 and 2048 and url ~* '^https?://[^/?#@:]' and url !~ '^[A-Za-z]+://[^/?#]*@'
                      and url ~ '^[\x21-\x7e]+$'),
  -- the HMAC key of webhook signatures (required for kind webhook: an unsigned webhook is refused)
  secret       text
               constraint notification_sinks_secret_format
               check (secret is null or (length(secret) between 16 and 256 and secret ~ '^[\x21-\x7e]+$')),
  -- extra request headers, e.g. {"Authorization": "Bearer …"}: an object of strings
  headers      jsonb not null default '{}'::jsonb
               constraint notification_sinks_headers_object
               check (jsonb_typeof(headers) = 'object' and octet_length(headers::text) <= 16384),
  -- filters: NULL means every project / environment / event type. event_types entries are exact
  -- types (deploy.failed) or a kind with a wildcard (rollback.*).
  projects     text[],
  environments text[],
  event_types  text[]
               constraint notification_sinks_event_types_format
               check (event_types is null or array_to_string(event_types, ',') ~ '^([a-z-]+\.([a-z]+|\*))(,[a-z-]+\.([a-z]+|\*))*$'),
  enabled      boolean not null default true,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint notification_sinks_webhook_signed check (kind <> 'webhook' or secret is not null)
);

create table deployment_events (
  id            uuid primary key,
  -- global insertion order; per deployment it is the journal's order
  position      bigserial not null unique,
  deployment_id uuid not null references deployments (id) on delete cascade,
  project       text not null,
  environment   text not null,
  -- <kind>.<phase>: deploy.started, deploy.succeeded, rollback.failed, stop.superseded, …
  type          text not null,
  action_id     text not null,
  -- the journal seq whose transaction wrote it
  seq           bigint not null,
  data          jsonb not null,
  occurred_at   timestamptz not null default now()
);

create index deployment_events_deployment_idx on deployment_events (deployment_id, position);
-- retention: events older than KEELSON_RETAIN_TRANSITIONS whose deliveries are all finished
create index deployment_events_occurred_at_idx on deployment_events (occurred_at);

create table notification_deliveries (
  id              bigserial primary key,
  event_id        uuid not null references deployment_events (id) on delete cascade,
  sink_id         uuid not null references notification_sinks (id) on delete cascade,
  -- copied from the event: deliveries of one deployment to one sink go out in position order
  deployment_id   uuid not null,
  event_position  bigint not null,
  status          text not null default 'pending'
                  constraint notification_deliveries_status_valid check (status in ('pending', 'delivered', 'dead')),
  attempts        integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  -- an attempt in flight: its claim token and until when no other dispatcher may take it
  claim_token     uuid,
  claimed_until   timestamptz,
  last_error      text,
  created_at      timestamptz not null default now(),
  finished_at     timestamptz,
  unique (event_id, sink_id)
);

create index notification_deliveries_due_idx on notification_deliveries (next_attempt_at) where status = 'pending';
create index notification_deliveries_order_idx on notification_deliveries (sink_id, deployment_id, event_position) where status = 'pending';
create index notification_deliveries_dead_idx on notification_deliveries (finished_at desc) where status = 'dead';

create table notification_attempts (
  id            bigserial primary key,
  delivery_id   bigint not null references notification_deliveries (id) on delete cascade,
  attempt       integer not null,
  started_at    timestamptz not null,
  duration_ms   integer not null,
  status_code   integer,
  error         text,
  instance_id   text
);

-- one row per attempt number: a claim that expired and was taken again is a new attempt
create unique index notification_attempts_delivery_idx on notification_attempts (delivery_id, attempt);
