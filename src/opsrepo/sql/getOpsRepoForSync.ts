import { sql } from 'slonik';
import { z } from 'zod';
import type { Db } from '../../db/pool.ts';
import { OpsRepoRow } from '../../db/rows.ts';

export const OpsRepoForSync = OpsRepoRow.extend({
  // Computed by the database so the interval is measured on one clock, the one that wrote
  // last_synced_at, not on this host's clock.
  fresh: z.boolean(),
});
export type OpsRepoForSync = z.infer<typeof OpsRepoForSync>;

/** The ops repo row, and whether its last successful sync is younger than sync_interval_s. */
export async function getOpsRepoForSync(db: Pick<Db, 'maybeOne'>, repoId: string): Promise<OpsRepoForSync | null> {
  return await db.maybeOne(sql.type(OpsRepoForSync)`
    select id, name, repo_url, branch, path, sync_interval_s, last_synced_at, last_sha, last_error,
           created_at, updated_at,
           coalesce(last_synced_at > now() - make_interval(secs => sync_interval_s), false) as fresh
    from ops_repos
    where id = ${repoId}`);
}
