// The journal: every state change of an actor is committed in ONE transaction — the snapshot,
// a transition row, the observed columns of `deployments`, and, when an action completed, its
// history row (keyed by action id, so re-journaling after a restore never duplicates it).
// The lease is checked inside the same transaction: a process that lost a deployment cannot
// write for it any more (fencing).
import { sql, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';
import type { Completed, Deployed } from '../../machines/deployment.machine.ts';
import type { CurrentStatus } from '../db/rows.ts';
import type { Db } from '../db/pool.ts';
import { TerminalError } from '../errors.ts';
import type { StepContext } from './stepContext.ts';

export class LostOwnershipError extends TerminalError {
  constructor(deploymentId: string) {
    super(`this process no longer holds the lease of deployment ${deploymentId}`, { code: 'lease_lost' });
  }
}

export class DeploymentGoneError extends TerminalError {
  constructor(deploymentId: string) {
    super(`deployment ${deploymentId} was deleted`, { code: 'deployment_deleted' });
  }
}

export interface JournalEntry {
  readonly deploymentId: string;
  readonly instanceId: string;
  readonly seq: number;
  readonly snapshot: unknown;
  readonly machineVersion: string;
  /** dotted state path, e.g. `syncing.fetching.running` */
  readonly state: string;
  readonly status: CurrentStatus;
  readonly transition: { readonly from: string | null; readonly to: string; readonly event: string } | null;
  readonly generation: number;
  readonly observedGeneration: number;
  readonly completed: Completed | null;
  readonly deployed: Deployed | null;
  readonly lastError: string | null;
  /** what the transition row records of the context (stepContext.ts); null columns when absent */
  readonly step?: StepContext | undefined;
}

export interface JournalResult {
  readonly historyWritten: boolean;
  /** set when a succeeded rollback wrote its image back as the desired state */
  readonly writtenBackGeneration: number | null;
}

export async function writeJournal(db: Db, entry: JournalEntry): Promise<JournalResult> {
  return await db.transaction(async (tx) => {
    const owned = await tx.maybeOne(sql.type(z.object({ ok: z.number() }))`
      select 1 as ok from deployment_leases
      where deployment_id = ${entry.deploymentId} and instance_id = ${entry.instanceId} and expires_at > now()
      for update`);
    if (!owned) {
      const exists = await tx.exists(sql.unsafe`select 1 from deployments where id = ${entry.deploymentId}`);
      throw exists ? new LostOwnershipError(entry.deploymentId) : new DeploymentGoneError(entry.deploymentId);
    }
    await tx.query(sql.unsafe`
      insert into deployment_snapshots (deployment_id, snapshot, state, machine_version, seq, updated_at)
      values (${entry.deploymentId}, ${sql.jsonb(entry.snapshot as never)}, ${entry.state}, ${entry.machineVersion}, ${entry.seq}, now())
      on conflict (deployment_id) do update set
        snapshot = excluded.snapshot, state = excluded.state, machine_version = excluded.machine_version,
        seq = excluded.seq, updated_at = excluded.updated_at`);
    if (entry.transition) {
      await tx.query(sql.unsafe`
        insert into deployment_transitions (deployment_id, from_state, to_state, event, generation, seq,
                                            action_id, image_ref, attempt, last_error)
        values (${entry.deploymentId}, ${entry.transition.from}, ${entry.transition.to}, ${entry.transition.event},
                ${entry.generation}, ${entry.seq}, ${entry.step?.actionId ?? null}, ${entry.step?.imageRef ?? null},
                ${entry.step?.attempt ?? null}, ${entry.step?.lastError ?? null})
        on conflict (deployment_id, seq) do nothing`);
      // delivered on commit: API processes stream it to SSE clients
      await tx.query(sql.unsafe`
        select pg_notify('keelson_transitions', json_build_object('deployment_id', ${entry.deploymentId}::text, 'seq', ${entry.seq}::bigint)::text)`);
    }
    const history = entry.completed ? await writeHistory(tx, entry.deploymentId, entry.completed) : false;
    const writtenBack = entry.completed && history ? await writeBack(tx, entry.deploymentId, entry.completed) : null;
    const observed = Math.max(entry.observedGeneration, writtenBack ?? 0);
    await tx.query(sql.unsafe`
      update deployments set
        current_status = ${entry.status},
        current_image_ref = ${entry.deployed?.imageRef ?? null},
        current_sha = ${entry.deployed?.sha ?? null},
        deployed_at = ${entry.deployed?.deployedAt ?? null},
        last_error = ${entry.lastError},
        observed_generation = greatest(observed_generation, ${observed})
      where id = ${entry.deploymentId}`);
    return { historyWritten: history, writtenBackGeneration: writtenBack };
  });
}

async function writeHistory(tx: DatabaseTransactionConnection, deploymentId: string, completed: Completed): Promise<boolean> {
  const row = await tx.maybeOne(sql.type(z.object({ id: z.number() }))`
    insert into deployment_history
      (deployment_id, action_id, action, status, image_ref, sha, generation, phases, error, triggered_by)
    values (${deploymentId}, ${completed.actionId}, ${completed.action}, ${completed.status}, ${completed.imageRef},
            ${completed.sha}, ${completed.generation}, ${sql.jsonb(completed.phases as never)}, ${completed.error},
            ${completed.triggeredBy})
    on conflict (deployment_id, action_id) do nothing
    returning id`);
  return row !== null;
}

/**
 * A succeeded rollback makes the row tell the truth: its image becomes the desired image and
 * desired_status goes back to active — unless someone wrote a newer desired state meanwhile,
 * which wins.
 */
async function writeBack(tx: DatabaseTransactionConnection, deploymentId: string, completed: Completed): Promise<number | null> {
  if (!completed.writeBack || completed.status !== 'succeeded') return null;
  const row = await tx.maybeOne(sql.type(z.object({ generation: z.number() }))`
    update deployments set image_ref = ${completed.imageRef}, desired_status = 'active'
    where id = ${deploymentId} and generation = ${completed.generation}
    returning generation`);
  return row?.generation ?? null;
}
