import { sql } from 'slonik';
import { z } from 'zod';
import type { Db } from '../pool.ts';

export const RollbackTarget = z.object({ image_ref: z.string(), sha: z.string().nullable(), history_id: z.number() });
export type RollbackTarget = z.infer<typeof RollbackTarget>;

/**
 * The image to roll back to: the newest succeeded action whose image differs from the image of
 * the newest action of any outcome (the one being rolled away from). A failed deploy of B after
 * a healthy A gives A; healthy A then healthy B gives A; a single healthy deploy gives none.
 */
export async function findRollbackTarget(db: Pick<Db, 'maybeOne'>, deploymentId: string): Promise<RollbackTarget | null> {
  return await db.maybeOne(sql.type(RollbackTarget)`
    with latest as (
      select image_ref from deployment_history
      where deployment_id = ${deploymentId} and action <> 'stop'
      order by id desc limit 1
    )
    select h.image_ref, h.sha, h.id as history_id
    from deployment_history h, latest
    where h.deployment_id = ${deploymentId}
      and h.status = 'succeeded'
      and h.action <> 'stop'
      and h.image_ref <> latest.image_ref
    order by h.id desc
    limit 1`);
}
