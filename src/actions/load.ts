// Reads what resolveAction (status.ts) needs for one generation, in one repeatable-read
// transaction: the journal writes snapshot, history and observed columns together, and reading
// them at different moments could show an action that just finished as neither running nor done.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { CURRENT_STATUSES, DESIRED_STATUSES, HISTORY_ACTIONS, HistoryPhase, HistoryRow, type DeploymentRow } from '../db/rows.ts';
import { resolveAction, type ActionView, type WorkInput } from './status.ts';

/** The snapshot's work, as stored (a SQL writer may have stored anything: unusable means none). */
const StoredWork = z.object({
  actionId: z.string(),
  action: z.enum(HISTORY_ACTIONS),
  generation: z.number().int(),
  imageRef: z.string().catch(''),
  phases: z.array(HistoryPhase).catch([]),
});

const SnapshotWork = z.object({ state: z.string(), work: z.unknown() });

const ActionRow = z.object({
  generation: z.number(),
  observed_generation: z.number(),
  desired_status: z.enum(DESIRED_STATUSES),
  current_status: z.enum(CURRENT_STATUSES),
  image_ref: z.string(),
  last_error: z.string().nullable(),
});

export function workOf(stored: unknown): WorkInput | null {
  const parsed = StoredWork.safeParse(stored);
  return parsed.success ? parsed.data : null;
}

/**
 * The action of `generation`, read in one repeatable-read transaction. `db` must not be inside a
 * transaction already (GET routes get the pool); inside one, use readAction.
 */
export async function loadAction(db: CommonQueryMethods, deployment: Pick<DeploymentRow, 'id'>, generation: number): Promise<ActionView | null> {
  return db.transaction(async (tx) => {
    await tx.query(sql.unsafe`set transaction isolation level repeatable read`);
    return readAction(tx, deployment, generation);
  });
}

/** The same reads on a connection the caller already holds (a mutation's own transaction). */
export async function readAction(db: CommonQueryMethods, deployment: Pick<DeploymentRow, 'id'>, generation: number): Promise<ActionView | null> {
  const row = await db.maybeOne(sql.type(ActionRow)`
    select generation, observed_generation, desired_status, current_status, image_ref, last_error from deployments where id = ${deployment.id}`);
  if (!row) return null;
  const history = await db.any(sql.type(HistoryRow)`
    select id, deployment_id, action_id, action, status, image_ref, sha, generation, phases, error, triggered_by, created_at
    from deployment_history where deployment_id = ${deployment.id} and generation = ${generation} order by id`);
  const snapshot = await db.maybeOne(sql.type(SnapshotWork)`
    select state, snapshot -> 'context' -> 'work' as work from deployment_snapshots where deployment_id = ${deployment.id}`);
  return resolveAction({
    generation,
    row,
    history,
    snapshot: snapshot ? { state: snapshot.state, work: workOf(snapshot.work) } : null,
  });
}
