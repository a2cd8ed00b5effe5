-- Teardown (issue #13 item 6): desired_status = 'deleted' is how a pipeline removes a deployment.
-- It is a desired-state change like any other (a new generation, NOTIFY: the trigger of 0007
-- already covers desired_status, so it is extended by the constraint only). keelson then deletes
-- every object of the deployment from the cluster, records a final `teardown` history row and
-- deletes the row itself (with its lease, snapshot and transitions) in the same transaction.
--
-- A plain `delete from deployments` still works (an operator's escape hatch) but leaves every
-- object in the cluster: documented in the README's database contract.
alter table deployments drop constraint deployments_desired_status_valid;
alter table deployments add constraint deployments_desired_status_valid
  check (desired_status in ('active', 'stopped', 'rollback', 'deleted'));

alter table deployments drop constraint deployments_current_status_valid;
alter table deployments add constraint deployments_current_status_valid
  check (current_status in ('idle', 'syncing', 'applying', 'verifying', 'healthy',
                            'failed', 'rolling-back', 'stopped', 'tearing-down'));

alter table deployment_history drop constraint deployment_history_action_valid;
alter table deployment_history add constraint deployment_history_action_valid
  check (action in ('deploy', 'rollback', 'stop', 'resume', 'auto-rollback', 'teardown'));

-- History outlives its deployment: the final teardown row (and every release before it) stays
-- readable after the row is gone, named by project and environment.
alter table deployment_history drop constraint deployment_history_deployment_id_fkey;
alter table deployment_history add column project text, add column environment text;
update deployment_history h set project = d.project, environment = d.environment
  from deployments d where d.id = h.deployment_id;
create index deployment_history_project_idx on deployment_history (project, environment, id desc);

-- So do the outbox's events: teardown.succeeded is written in the transaction that deletes the
-- row, and must still be delivered. Retention (KEELSON_RETAIN_TRANSITIONS) removes old events.
alter table deployment_events drop constraint deployment_events_deployment_id_fkey;
