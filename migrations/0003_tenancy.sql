-- keelson database contract: tenancy (issue #11).
-- * `projects`: per-project policies (where deployments may go, what they may create).
-- * The API's input rules as CHECK constraints, so a SQL writer meets the same limits.
-- * Per-repository webhook secrets; indexes for the retention pruner.
--
-- Existing rows are never rejected by this migration: each tightened constraint is added
-- NOT VALID (new and updated rows are checked at once) and then validated only when no existing
-- row violates it. A constraint left unvalidated is reported with a WARNING and listed by
--   select conrelid::regclass, conname from pg_constraint where not convalidated;
-- Fix those rows, then `alter table … validate constraint …` (docs/security.md, "Upgrading").

-- ---- the rules, as functions (src/tenancy/inputRules.ts states the same in TypeScript) ------

-- Characters that print as nothing or as something else: C0/C1 controls, no-break and other
-- Unicode spaces, zero-width and bidirectional controls, soft hyphen, BOM. (PostgreSQL text
-- cannot hold NUL at all.)
create function keelson_printable(value text) returns boolean
language sql immutable strict parallel safe as $$
  select value !~ '[\x01-\x1f\x7f-\x9f\u00a0\u00ad\u061c\u115f\u1160\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufeff\ufff9-\ufffb]'
$$;

-- git check-ref-format for refs/heads/<name>, plus no leading '-' (an option to git).
create function keelson_branch_valid(name text) returns boolean
language sql immutable strict parallel safe as $$
  select length(name) between 1 and 255
     and name !~ '^-'
     and name not in ('@', 'HEAD')
     and name !~ '[\x01-\x20\x7f~^:?*[\\]'
     and position('..' in name) = 0
     and position('@{' in name) = 0
     and name !~ '^/|/$|//'
     and name !~ '\.$'
     and name !~ '(^|/)\.'
     and name !~ '\.lock(/|$)'
     and keelson_printable(name)
$$;

-- A path inside an ops repo: relative, no '..' or '.git' segment, no leading '-' or '/', no
-- backslash, printable. (PostgreSQL regular expressions repeat at most 255 times: lengths are
-- checked with length().)
create function keelson_repo_path_valid(path text) returns boolean
language sql immutable strict parallel safe as $$
  select length(path) between 1 and 1024
     and path !~ '^[/-]'
     and position('\' in path) = 0
     and not ('..' = any (string_to_array(path, '/')))
     and not ('.git' = any (string_to_array(lower(path), '/')))
     and keelson_printable(path)
$$;

-- The API's rule for repository URLs (src/opsrepo/repoUrl.ts): visible ASCII; no
-- '<transport>::' remote helper (ext:: runs commands); nothing that git would read as an option;
-- https/http/ssh/git/file URLs with a host, or scp-like [user@]host:path. Whether file:// may
-- be used is the operator's decision (KEELSON_ALLOW_FILE_REPOS), checked by keelson.
create function keelson_repo_url_valid(url text) returns boolean
language sql immutable strict parallel safe as $$
  select length(url) between 1 and 2048
     and url ~ '^[\x21-\x7e]+$'
     and url !~ '^-'
     and url !~ '^[A-Za-z][A-Za-z0-9+.-]*::'
     and (url ~* '^file://'
          or url ~* '^(https?|ssh|git)://([^-/?#@][^/?#]*@)?[^-/?#@:]'
          or (url !~ '://' and url ~ '^([^-@/:][^@/:]*@)?[^-@/:][^@/:]*:.'))
$$;

-- Whether objects and arrays nest more than 32 deep ({} is 1, {"a":{"b":1}} is 2): some
-- container at jsonpath level 32 or below (the root is level 0). jsonpath walks in C, and this
-- SQL function is inlined into the CHECK: it runs on every update of a row, keelson's status
-- writes included, so it must cost next to nothing.
create function keelson_jsonb_too_deep(value jsonb) returns boolean
language sql immutable strict parallel safe as $$
  select jsonb_path_exists(value, 'strict $.**{32 to last} ? (@.type() == "object" || @.type() == "array")')
$$;

-- Policy patterns: at most 100, no NULL entry; 'name' (namespaces, ops repo names), 'path'
-- (manifest paths) and 'kind' (group/Kind) syntaxes, each with the wildcards * and ?.
create function keelson_patterns_valid(patterns text[], syntax text) returns boolean
language sql immutable strict parallel safe as $$
  select cardinality(patterns) <= 100
     and array_position(patterns, null) is null
     and coalesce(bool_and(case syntax
           when 'name' then p ~ '^!?[-a-z0-9*?]{1,63}$'
           when 'path' then keelson_repo_path_valid(regexp_replace(p, '^!', ''))
           when 'kind' then p ~ '^(core|[-a-z0-9.*?]{1,253})/[A-Za-z0-9*?]{1,63}$'
         end), true)
  from unnest(patterns) as p
$$;

-- ---- projects ------------------------------------------------------------------------------

-- One row per project that needs a policy other than the default. A NULL column means the
-- default (src/tenancy/policy.ts): namespaces {<project>-*}, source_repos {*}, manifest_paths
-- {<project>, <project>/**}, every namespaced kind but rbac.authorization.k8s.io/*, no
-- cluster-scoped kind, no adoption. A deployment's project needs no row: pipelines keep
-- inserting deployments, and a project without a row gets the default policy.
create table projects (
  name                         text primary key
                               constraint projects_name_format
                               check (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  description                  text not null default ''
                               constraint projects_description_printable
                               check (length(description) <= 1000 and keelson_printable(replace(description, E'\n', ' '))),
  namespaces                   text[]
                               constraint projects_namespaces_patterns check (keelson_patterns_valid(namespaces, 'name')),
  source_repos                 text[]
                               constraint projects_source_repos_patterns check (keelson_patterns_valid(source_repos, 'name')),
  manifest_paths               text[]
                               constraint projects_manifest_paths_patterns check (keelson_patterns_valid(manifest_paths, 'path')),
  namespace_resource_whitelist text[]
                               constraint projects_namespace_resource_whitelist_patterns
                               check (keelson_patterns_valid(namespace_resource_whitelist, 'kind')),
  namespace_resource_blacklist text[]
                               constraint projects_namespace_resource_blacklist_patterns
                               check (keelson_patterns_valid(namespace_resource_blacklist, 'kind')),
  cluster_resource_whitelist   text[]
                               constraint projects_cluster_resource_whitelist_patterns
                               check (keelson_patterns_valid(cluster_resource_whitelist, 'kind')),
  allow_adoption               boolean not null default false,
  created_at                   timestamptz not null default now(),
  updated_at                   timestamptz not null default now()
);

-- Existing deployments keep working: a project whose rows already use a namespace or manifest
-- path outside the defaults gets a row admitting exactly those (plus the defaults). Review them:
--   select * from projects where description like 'Created by migration 0003%';
insert into projects (name, description, namespaces, manifest_paths)
select d.project,
       'Created by migration 0003 from the namespaces and manifest paths its deployments already used; review it.',
       array[d.project || '-*'] || coalesce(array_agg(distinct d.namespace) filter (
         where d.namespace is not null and d.namespace not like d.project || '-%'), '{}'),
       array[d.project, d.project || '/**'] || coalesce(array_agg(distinct d.manifest_path) filter (
         where d.manifest_path is not null and d.manifest_path <> d.project and d.manifest_path not like d.project || '/%'
           and keelson_repo_path_valid(d.manifest_path)), '{}')
from deployments d
group by d.project
having bool_or((d.namespace is not null and d.namespace not like d.project || '-%')
            or (d.manifest_path is not null and d.manifest_path <> d.project and d.manifest_path not like d.project || '/%'));

-- ---- webhook secrets -----------------------------------------------------------------------

-- The shared secret a git host signs push webhooks with (GitHub: HMAC-SHA256 of the body in
-- X-Hub-Signature-256; GitLab: the X-Gitlab-Token header). Stored in clear because the HMAC needs
-- it; never returned by the API and redacted from logs and audit rows.
alter table ops_repos add column webhook_secret text
  constraint ops_repos_webhook_secret_format check (webhook_secret is null or (length(webhook_secret) between 16 and 256 and webhook_secret ~ '^[\x21-\x7e]+$'));

-- ---- the API's input rules for SQL writers -------------------------------------------------

alter table deployments
  add constraint deployments_image_ref_printable check (image_ref ~ '^[\x21-\x7e]+$') not valid,
  add constraint deployments_manifest_path_confined check (manifest_path is null or keelson_repo_path_valid(manifest_path)) not valid,
  add constraint deployments_values_override_depth check (not keelson_jsonb_too_deep(values_override)) not valid,
  add constraint deployments_values_override_size check (octet_length(values_override::text) <= 262144) not valid;

alter table ops_repos
  add constraint ops_repos_repo_url_safe check (keelson_repo_url_valid(repo_url)) not valid,
  add constraint ops_repos_branch_ref_format check (keelson_branch_valid(branch)) not valid,
  add constraint ops_repos_path_confined check (path = '' or keelson_repo_path_valid(path)) not valid;

do $$
declare
  c record;
begin
  for c in
    select conrelid::regclass::text as tbl, conname
    from pg_constraint
    where not convalidated
      and conname in ('deployments_image_ref_printable', 'deployments_manifest_path_confined',
                      'deployments_values_override_depth', 'deployments_values_override_size',
                      'ops_repos_repo_url_safe', 'ops_repos_branch_ref_format', 'ops_repos_path_confined')
  loop
    begin
      execute format('alter table %I validate constraint %I', c.tbl, c.conname);
    exception when check_violation then
      raise warning 'keelson: constraint % of table % stays NOT VALID: existing rows violate it (new and updated rows are checked). Fix them, then run: alter table % validate constraint %',
        c.conname, c.tbl, c.tbl, c.conname;
    end;
  end loop;
end $$;

-- ---- retention (src/tenancy/retention.ts) --------------------------------------------------

create index deployment_transitions_at_idx on deployment_transitions (at);
create index idempotency_keys_created_at_idx on idempotency_keys (created_at);
