import { sql } from 'slonik';
import { z } from 'zod';
import { selectRollbackTarget, type TargetChoice } from '../../releases/selectTarget.ts';
import type { Db } from '../pool.ts';

export const RollbackTarget = z.object({
  history_id: z.number(),
  action: z.string(),
  status: z.string(),
  image_ref: z.string(),
  sha: z.string().nullable(),
  values_hash: z.string().nullable(),
  /** what the release rendered with (null on rows written before migration 0007) */
  values_override: z.record(z.string(), z.unknown()).nullable(),
  /** where it was rendered from (null on rows written before migration 0013; ops_repo_id also for the built-in template) */
  ops_repo_id: z.string().nullable(),
  manifest_path: z.string().nullable(),
});
export type RollbackTarget = z.infer<typeof RollbackTarget>;

/** How many recent rows the default choice looks through: a target further back is not "previous". */
const LOOKBACK = 500;

/**
 * The release a rollback goes back to (src/releases/selectTarget.ts decides): `release` is a
 * history id a caller named, or null for the default. The explicit row is read by id AND
 * deployment, so another deployment's id is "not a release of this deployment".
 */
export async function chooseRollbackTarget(
  db: Pick<Db, 'any'>,
  deploymentId: string,
  release: number | null = null,
  deployment?: string,
): Promise<TargetChoice<RollbackTarget & { id: number; imageRef: string; valuesHash: string | null }>> {
  const rows = await db.any(sql.type(RollbackTarget)`
    select id as history_id, action, status, image_ref, sha, values_hash, values_override, ops_repo_id::text, manifest_path
    from deployment_history
    where deployment_id = ${deploymentId}
      and (${release}::bigint is null or id = ${release}::bigint)
    order by id desc
    limit ${LOOKBACK}`);
  const candidates = rows.map((row) => ({ ...row, id: row.history_id, imageRef: row.image_ref, valuesHash: row.values_hash }));
  return selectRollbackTarget(candidates, release, deployment);
}
