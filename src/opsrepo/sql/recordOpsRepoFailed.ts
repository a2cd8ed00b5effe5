import { sql } from 'slonik';
import type { Db } from '../../db/pool.ts';

/**
 * A failed sync keeps last_synced_at and last_sha (they describe the checkout still on disk) and
 * records why. `error` must already be redacted.
 */
export async function recordOpsRepoFailed(db: Pick<Db, 'query'>, repoId: string, error: string): Promise<void> {
  await db.query(sql.unsafe`
    update ops_repos set last_error = ${error}, updated_at = now() where id = ${repoId}`);
}
