-- An action cut short by a newer generation after its apply (a stop or a new image arriving
-- while it verified) is recorded as `superseded`: its image was applied and is what runs, but it
-- neither succeeded (it was never verified) nor failed (nothing went wrong). Numbered 0008 so
-- that migrations being written beside it keep their numbers; the migrator applies any missing
-- file in order.
alter table deployment_history drop constraint deployment_history_status_valid;
alter table deployment_history add constraint deployment_history_status_valid
  check (status in ('succeeded', 'failed', 'superseded'));
