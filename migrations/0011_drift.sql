-- Drift by server-side-apply dry-run (issue #13 item 4). The healthy actor dry-runs its current
-- release (its commit and values, not the branch head) against the live objects each drift
-- interval. `drift` says what it does with a drifted object:
--   repair (default): re-apply it; the repair is a `deploy` history row whose triggered_by names
--                     the objects and field paths that had drifted (events `drift-repair.*`);
--   detect:           change nothing; the finding is written to `drift_detected` (a sentence naming
--                     the objects and paths; null when the last check found none). last_error and
--                     current_status stay as they are: the deployment is still healthy.
-- `drift` is a policy, not desired state: changing it is not a new generation (the trigger of 0007
-- does not list it); the next check reads it from the row.
alter table deployments add column drift text not null default 'repair'
  constraint deployments_drift_valid check (drift in ('repair', 'detect'));
alter table deployments add column drift_detected text
  constraint deployments_drift_detected_length check (drift_detected is null or length(drift_detected) <= 4000);
