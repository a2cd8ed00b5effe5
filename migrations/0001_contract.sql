-- keelson database contract v1.
-- Pipelines write the desired-state columns of `deployments`; keelson writes everything else.
-- Constraint names are part of the contract: a refused row's error names the constraint.

create table ops_repos (
  id              uuid primary key default gen_random_uuid(),
  name            text not null
                  constraint ops_repos_name_format
                  check (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  repo_url        text not null
                  constraint ops_repos_repo_url_not_blank check (length(btrim(repo_url)) > 0),
  branch          text not null default 'main'
                  constraint ops_repos_branch_not_blank check (length(btrim(branch)) > 0),
  path            text not null default '',
  sync_interval_s integer not null default 60
                  constraint ops_repos_sync_interval_s_range check (sync_interval_s between 0 and 86400),
  last_synced_at  timestamptz,
  last_sha        text,
  last_error      text,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  constraint ops_repos_name_key unique (name)
);

create table deployments (
  id                  uuid primary key default gen_random_uuid(),
  project             text not null
                      constraint deployments_project_format
                      check (project ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  environment         text not null
                      constraint deployments_environment_format
                      check (environment ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  -- desired state: written by pipelines, people and the API
  image_ref           text not null
                      constraint deployments_image_ref_format
                      check (length(image_ref) between 1 and 1024 and image_ref !~ '\s'),
  desired_status      text not null default 'active'
                      constraint deployments_desired_status_valid
                      check (desired_status in ('active', 'stopped', 'rollback')),
  values_override     jsonb not null default '{}'::jsonb
                      constraint deployments_values_override_object
                      check (jsonb_typeof(values_override) = 'object'),
  ops_repo_id         uuid references ops_repos (id) on delete restrict,
  manifest_path       text,
  namespace           text
                      constraint deployments_namespace_format
                      check (namespace is null or namespace ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  auto_rollback       boolean not null default false,
  generation          bigint not null default 1,
  -- observed state: written by keelson only
  current_status      text not null default 'idle'
                      constraint deployments_current_status_valid
                      check (current_status in ('idle', 'syncing', 'applying', 'verifying', 'healthy',
                                                'failed', 'rolling-back', 'stopped')),
  current_image_ref   text,
  current_sha         text,
  deployed_at         timestamptz,
  last_error          text,
  observed_generation bigint not null default 0,
  status_changed_at   timestamptz not null default now(),
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  constraint deployments_project_environment_key unique (project, environment)
);

create index deployments_pending_idx on deployments (id) where generation > observed_generation;

-- generation is owned by this trigger: it starts at 1 and moves by exactly one whenever a
-- desired-state column changes, whatever a writer puts in it.
create function keelson_deployments_generation() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    new.generation := 1;
    new.observed_generation := 0;
    return new;
  end if;
  if (new.project, new.environment, new.image_ref, new.desired_status, new.values_override,
      new.ops_repo_id, new.manifest_path, new.namespace, new.auto_rollback)
     is distinct from
     (old.project, old.environment, old.image_ref, old.desired_status, old.values_override,
      old.ops_repo_id, old.manifest_path, old.namespace, old.auto_rollback) then
    new.generation := old.generation + 1;
  else
    new.generation := old.generation;
  end if;
  if new.current_status is distinct from old.current_status then
    new.status_changed_at := now();
  end if;
  new.updated_at := now();
  return new;
end $$;

create trigger deployments_generation
  before insert or update on deployments
  for each row execute function keelson_deployments_generation();

-- The notification is a hint carrying only the row id; the receiver re-reads the row.
create function keelson_deployments_notify() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    perform pg_notify('keelson_deployments', old.id::text);
    return old;
  end if;
  perform pg_notify('keelson_deployments', new.id::text);
  return new;
end $$;

create trigger deployments_notify_insert_delete
  after insert or delete on deployments
  for each row execute function keelson_deployments_notify();

-- Observed-column writes by keelson leave generation unchanged, so they notify nobody.
create trigger deployments_notify_update
  after update on deployments
  for each row when (old.generation is distinct from new.generation)
  execute function keelson_deployments_notify();

create table deployment_history (
  id            bigserial primary key,
  deployment_id uuid not null references deployments (id) on delete cascade,
  -- the machine names each action when it starts; a restored actor that re-records the same
  -- action hits this key instead of writing a second row
  action_id     text not null,
  action        text not null
                constraint deployment_history_action_valid
                check (action in ('deploy', 'rollback', 'stop', 'resume', 'auto-rollback')),
  status        text not null
                constraint deployment_history_status_valid check (status in ('succeeded', 'failed')),
  image_ref     text not null,
  sha           text,
  generation    bigint not null,
  phases        jsonb not null default '[]'::jsonb,
  error         text,
  triggered_by  text not null default 'keelson',
  created_at    timestamptz not null default now(),
  constraint deployment_history_action_key unique (deployment_id, action_id)
);

create index deployment_history_deployment_idx on deployment_history (deployment_id, id desc);

create table deployment_snapshots (
  deployment_id   uuid primary key references deployments (id) on delete cascade,
  snapshot        jsonb not null,
  state           text not null,
  machine_version text not null,
  seq             bigint not null,
  updated_at      timestamptz not null default now()
);

create table deployment_transitions (
  id            bigserial primary key,
  deployment_id uuid not null references deployments (id) on delete cascade,
  from_state    text,
  to_state      text not null,
  event         text not null,
  generation    bigint not null,
  seq           bigint not null,
  at            timestamptz not null default now(),
  constraint deployment_transitions_seq_key unique (deployment_id, seq)
);

-- Which runtime process hosts which deployment's actor. A lease that is not renewed expires and
-- another process takes the deployment over (docs/architecture.md, "Ownership").
create table keelson_instances (
  id           uuid primary key,
  hostname     text not null,
  pid          integer not null,
  started_at   timestamptz not null default now(),
  heartbeat_at timestamptz not null default now()
);

create table deployment_leases (
  deployment_id uuid primary key references deployments (id) on delete cascade,
  instance_id   uuid not null,
  expires_at    timestamptz not null
);

create index deployment_leases_instance_idx on deployment_leases (instance_id);

create table api_tokens (
  id           uuid primary key default gen_random_uuid(),
  name         text not null
               constraint api_tokens_name_format check (name ~ '^[A-Za-z0-9][-_.A-Za-z0-9]{0,62}$'),
  token_hash   text not null,
  permissions  text[] not null
               constraint api_tokens_permissions_valid
               check (cardinality(permissions) > 0
                      and permissions <@ array['deploy:read', 'deploy:promote', 'admin']::text[]),
  project      text
               constraint api_tokens_project_format
               check (project is null or project ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  created_at   timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at   timestamptz,
  constraint api_tokens_token_hash_key unique (token_hash)
);

create unique index api_tokens_active_name_key on api_tokens (name) where revoked_at is null;

create table audit_log (
  id       bigserial primary key,
  actor    text not null,
  action   text not null,
  target   text not null,
  payload  jsonb not null default '{}'::jsonb,
  ip       text,
  at       timestamptz not null default now()
);

create index audit_log_at_idx on audit_log (at desc);

create table idempotency_keys (
  key             text not null,
  token_id        uuid not null references api_tokens (id) on delete cascade,
  method          text not null,
  path            text not null,
  request_hash    text not null,
  response_status integer not null,
  response_body   jsonb not null,
  created_at      timestamptz not null default now(),
  primary key (token_id, key)
);
