-- Releases (issue #13): each deploy records what it rendered, so a rollback can render exactly
-- that again — its commit and its values, not today's — and a pipeline can name the release to
-- go back to. A release is a deployment_history row: the columns below are filled by keelson on
-- every action it writes (null on rows written before this migration, and on stops).
alter table deployment_history
  -- sha256 of the merged values the templates saw (values files of the commit < values_override)
  add column values_hash     text,
  -- those merged values with secret-looking keys and every value that ended up in a rendered
  -- Secret replaced by "[redacted]": for reading, never rendered from
  add column values_redacted jsonb,
  -- the row's values_override the action rendered with (the same data as deployments.values_override),
  -- which a rollback to this release renders with again
  add column values_override jsonb,
  -- the objects the action applied ({apiVersion, kind, name, namespace}), when it got that far
  add column inventory       jsonb;

-- With desired_status = 'rollback': the deployment_history.id of the release to go back to
-- (null: the newest earlier healthy release that differs from the current one). Cleared by
-- keelson when the rollback succeeds.
alter table deployments add column rollback_to bigint
  constraint deployments_rollback_to_positive check (rollback_to is null or rollback_to > 0);

-- rollback_to is desired state: changing it is a new generation, as for the other columns.
create or replace function keelson_deployments_generation() returns trigger language plpgsql as $$
begin
  if tg_op = 'INSERT' then
    new.generation := 1;
    new.observed_generation := 0;
    return new;
  end if;
  if (new.project, new.environment, new.image_ref, new.desired_status, new.values_override,
      new.ops_repo_id, new.manifest_path, new.namespace, new.auto_rollback, new.rollback_to)
     is distinct from
     (old.project, old.environment, old.image_ref, old.desired_status, old.values_override,
      old.ops_repo_id, old.manifest_path, old.namespace, old.auto_rollback, old.rollback_to) then
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
