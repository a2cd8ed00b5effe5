-- The visualizer as a debugger (issue #17): each journaled transition carries the context the
-- actor had after it, so the page can step through a deployment's life and show what changed;
-- and the fleet view's queries (counts by state, failing/in-flight by age) stay index-backed
-- at 10,000 deployments.
--
-- Nullable: transitions journaled before this migration have none of it.
alter table deployment_transitions
  add column action_id  text,
  add column image_ref  text,
  add column attempt    integer,
  add column last_error text;

-- counts by state per project, and "failing or in flight, oldest first"
create index deployments_status_idx on deployments (current_status, status_changed_at);
create index deployments_project_status_idx on deployments (project, current_status);
