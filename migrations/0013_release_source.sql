-- Where a release was rendered from. A release (0007) recorded its commit and values but not the
-- ops repo and manifest path it rendered them from, so a rollback rendered the release's commit
-- from the row's CURRENT ops_repo_id and manifest_path: after a pipeline moved the row to another
-- folder or repo, an "exact" rollback rendered other templates, or failed on a path the old
-- commit does not have. Filled by keelson on every action that renders (null on rows written
-- before this migration, on stops and teardowns, and on actions that failed before rendering).
alter table deployment_history
  -- the ops repo rendered from; null with a manifest_path: the built-in template. No foreign key:
  -- history outlives ops repos (deleting one is not refused because an old release named it; a
  -- rollback to that release then fails saying so)
  add column ops_repo_id   uuid,
  -- the manifest path rendered, resolved (the row's manifest_path, or the project name when that
  -- was null), so it is never null on a release that recorded its source: null means "before
  -- 0013", and such a release rolls back from the row's ops repo and path as before
  add column manifest_path text;
