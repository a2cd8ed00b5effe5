import { sql } from 'slonik';
import type { Db } from '../../db/pool.ts';

/** A successful clone or fetch: the new HEAD, the time, and no error. */
export async function recordOpsRepoSynced(db: Pick<Db, 'query'>, repoId: string, sha: string): Promise<void> {
  await db.query(sql.unsafe`
    update ops_repos
    set last_synced_at = now(), last_sha = ${sha}, last_error = null, updated_at = now()
    where id = ${repoId}`);
}
