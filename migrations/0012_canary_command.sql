-- Canaries (issue #16): an operator's word on the canary in flight. `canary_command` is written by
-- a pipeline (SQL) or the API (POST .../canary/{pause,resume,promote,abort}) and consumed by
-- keelson: the actor is told, then keelson sets the column back to null. A command with no canary
-- in flight is consumed and changes nothing, so a stale one never reaches a later canary.
--   pause:   the step in flight finishes; the next step waits for resume
--   resume:  the next step starts (a pause step counts from the resume)
--   promote: all traffic to the new revision now, then the old one is drained and archived
--   abort:   all traffic back to the stable revision, the canary drained and archived; the action fails
-- A command is not desired state: changing it is not a new generation (the generation trigger of
-- 0007 does not list it), which would supersede the canary it is about. It wakes the actor with a
-- notification of its own.
alter table deployments add column canary_command text
  constraint deployments_canary_command_valid check (canary_command is null or canary_command in ('pause', 'resume', 'promote', 'abort'));

create trigger deployments_notify_canary_command
  after update on deployments
  for each row when (new.canary_command is not null and old.canary_command is distinct from new.canary_command)
  execute function keelson_deployments_notify();
