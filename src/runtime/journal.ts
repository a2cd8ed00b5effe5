// The journal: every state change of an actor is committed in ONE transaction — the snapshot,
// a transition row, the observed columns of `deployments`, and, when an action completed, its
// history row (keyed by action id, so re-journaling after a restore never duplicates it; a
// succeeded teardown deletes the row after recording it), and
// the outbox rows of the actions it started or ended (src/notify/outbox.ts).
// Fencing: the lease row is locked and checked inside the same transaction — this instance,
// this incarnation's epoch, not expired — so an actor that lost its lease, or was replaced by a
// newer actor of the same process (a newer epoch), can never commit. The snapshot only moves
// forward (conditional on seq) and a transition whose seq exists is an error, not a no-op.
import { sql, UniqueIntegrityConstraintViolationError, type DatabaseTransactionConnection, type FragmentSqlToken } from 'slonik';
import { z } from 'zod';
import type { Completed, Deployed } from '../../machines/deployment.machine.ts';
import type { CurrentStatus } from '../db/rows.ts';
import { prepared, type Db } from '../db/pool.ts';
import { TerminalError } from '../errors.ts';
import { eventsFor } from '../notify/events.ts';
import { singleEventRows, writeEvents } from '../notify/outbox.ts';
import type { ActionRef } from './projection.ts';
import type { StepContext } from './stepContext.ts';

export class LostOwnershipError extends TerminalError {
  constructor(deploymentId: string) {
    super(`this process no longer holds the lease of deployment ${deploymentId}`, { code: 'lease_lost' });
  }
}

/** The actor journals under an epoch that is no longer the lease's: a newer actor owns the deployment. */
export class StaleEpochError extends TerminalError {
  constructor(deploymentId: string, epoch: number, current: number) {
    super(`journal write of deployment ${deploymentId} under epoch ${epoch} refused: the lease is at epoch ${current}`, { code: 'stale_epoch' });
  }
}

/** The journal already holds this seq or a later one: the writer is behind, never the journal. */
export class JournalConflictError extends TerminalError {
  constructor(deploymentId: string, message: string) {
    super(`journal write of deployment ${deploymentId} refused: ${message}`, { code: 'journal_conflict' });
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
  /** the lease epoch the actor was started under (its fencing token) */
  readonly epoch: number;
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
  /** an action that began with this change: the outbox records its start (src/notify/events.ts) */
  readonly started?: ActionRef | null;
  /** the action in flight before, cut short without a record: the outbox records it superseded */
  readonly abandoned?: ActionRef | null;
}

export interface JournalResult {
  readonly historyWritten: boolean;
  /** set when a succeeded rollback wrote its image back as the desired state */
  readonly writtenBackGeneration: number | null;
}

/**
 * Fault isolation: an actor that threw (a guard, an action, serialising its snapshot) is gone;
 * its deployment is marked failed with the error as last_error, under the same fence as a
 * journal write, and stays so until its row changes. No snapshot or transition is written: the
 * last good snapshot stays what a later actor restores.
 */
export async function writeQuarantine(
  db: Db,
  failure: { deploymentId: string; instanceId: string; epoch: number; generation: number; message: string },
): Promise<void> {
  await db.transaction(async (tx) => {
    await checkLease(tx, failure.deploymentId, failure.instanceId, failure.epoch);
    await tx.query(sql.unsafe`
      update deployments set current_status = 'failed', last_error = ${failure.message},
        observed_generation = greatest(observed_generation, least(generation, ${failure.generation}))
      where id = ${failure.deploymentId}`);
  });
}

const Lease = z.object({ instance_id: z.string(), epoch: z.number(), live: z.boolean() });

export async function writeJournal(db: Db, entry: JournalEntry): Promise<JournalResult> {
  try {
    if (await writeAlone(db, entry)) return { historyWritten: false, writtenBackGeneration: null };
    return await db.transaction(async (tx) => await write(tx, entry));
  } catch (error) {
    if (error instanceof UniqueIntegrityConstraintViolationError) {
      throw new JournalConflictError(entry.deploymentId, `transition seq ${entry.seq} exists already`);
    }
    throw error;
  }
}

async function checkLease(tx: DatabaseTransactionConnection, deploymentId: string, instanceId: string, epoch: number): Promise<void> {
  const lease = await tx.maybeOne(sql.type(Lease)`
    select instance_id, epoch, expires_at > now() as live from deployment_leases
    where deployment_id = ${deploymentId}
    for update`);
  if (!lease || lease.instance_id !== instanceId || !lease.live) {
    const exists = await tx.exists(sql.unsafe`select 1 from deployments where id = ${deploymentId}`);
    throw exists ? new LostOwnershipError(deploymentId) : new DeploymentGoneError(deploymentId);
  }
  if (lease.epoch !== epoch) throw new StaleEpochError(deploymentId, epoch, lease.epoch);
}

// The fence and the snapshot in one statement (one round trip fewer on every wake-up): the
// lease row is locked first — the insert reads `lease` before it writes — and the snapshot is
// written only under this actor's live lease and epoch. Otherwise nothing is written, the
// caller throws, and the transaction rolls back, exactly as when the check ran on its own.
const FencedSnapshot = z.object({ instance_id: z.string().nullable(), epoch: z.number().nullable(), live: z.boolean().nullable(), moved: z.number().nullable() });

/** The fence's verdict (the lease as the write found it, the seq the snapshot moved to): throws unless the entry was written. */
async function checkFenced(entry: JournalEntry, fenced: z.infer<typeof FencedSnapshot>, present: () => Promise<boolean>): Promise<void> {
  if (fenced.instance_id !== entry.instanceId || fenced.live !== true) {
    throw (await present()) ? new LostOwnershipError(entry.deploymentId) : new DeploymentGoneError(entry.deploymentId);
  }
  if (fenced.epoch !== entry.epoch) throw new StaleEpochError(entry.deploymentId, entry.epoch, fenced.epoch ?? 0);
  if (fenced.moved === null) throw new JournalConflictError(entry.deploymentId, `the snapshot is at seq ${entry.seq} or later already`);
}

const FencedAlone = FencedSnapshot.extend({ present: z.boolean() });

/**
 * An entry without a completed action and with at most one outbox event — every entry of a
 * wake-up, and most others — is written by ONE statement, without BEGIN and COMMIT: a statement
 * is atomic by itself, so this is the same transaction as write()'s, committed (and durable,
 * as synchronous_commit has it) when the statement returns, in one round trip instead of four
 * (BEGIN, the fenced snapshot, the transition, COMMIT). Where write() rolls back a refused
 * write, here every row but the snapshot's is written only where `moved` has a row — the
 * snapshot that the fence let through and that moved forward — so a refused write writes
 * nothing; a transition whose seq exists fails the whole statement, as it fails write()'s
 * transaction. False: the entry needs write().
 */
async function writeAlone(db: Db, entry: JournalEntry): Promise<boolean> {
  if (entry.completed || eventsFor(entry).length > 1) return false;
  const written = sql.fragment`exists (select 1 from moved)`;
  const outbox = singleEventRows(entry, written);
  const transition = entry.transition
    ? sql.fragment`, transition as (
        insert into deployment_transitions (deployment_id, from_state, to_state, event, generation, seq,
                                            action_id, image_ref, attempt, last_error)
        select ${entry.deploymentId}, ${entry.transition.from}, ${entry.transition.to}, ${entry.transition.event},
               ${entry.generation}, ${entry.seq}, ${entry.step?.actionId ?? null}, ${entry.step?.imageRef ?? null},
               ${entry.step?.attempt ?? null}, ${entry.step?.lastError ?? null}
        from moved
        returning deployment_id, seq
      )`
    : sql.fragment``;
  // the transition's notification (delivered on commit: API processes stream it to SSE clients)
  const notify = entry.transition
    ? sql.fragment`,
           (select pg_notify('keelson_transitions', json_build_object('deployment_id', deployment_id::text, 'seq', seq)::text) from transition) as notified`
    : sql.fragment``;
  // prepared: planned once per connection, not at every write (its text depends on the parts above)
  const fenced = await db.one(prepared(FencedAlone, sql.fragment`
    with ${fencedSnapshotCtes(entry)}${transition},
    observed as (${observedColumns(entry, entry.observedGeneration, written)})${outbox ? sql.fragment`, ${outbox.ctes}` : sql.fragment``}
    select (select instance_id from lease), (select epoch from lease), (select live from lease), (select seq from moved) as moved,
           exists (select 1 from deployments where id = ${entry.deploymentId}) as present${notify}${outbox ? sql.fragment`, ${outbox.wake} as woke` : sql.fragment``}`));
  await checkFenced(entry, fenced, async () => fenced.present);
  return true;
}

/** The fence and the snapshot: `lease` (locked) and `moved` (the seq written, if the fence let it through and it moved forward). */
function fencedSnapshotCtes(entry: JournalEntry) {
  return sql.fragment`
      lease as (
        select instance_id, epoch, expires_at > now() as live from deployment_leases
        where deployment_id = ${entry.deploymentId}
        for update
      ), moved as (
        insert into deployment_snapshots (deployment_id, snapshot, state, machine_version, seq, epoch, updated_at)
        select ${entry.deploymentId}, ${sql.jsonb(entry.snapshot as never)}, ${entry.state}, ${entry.machineVersion}, ${entry.seq}, ${entry.epoch}, now()
        where exists (select 1 from lease where instance_id = ${entry.instanceId} and live and epoch = ${entry.epoch})
        on conflict (deployment_id) do update set
          snapshot = excluded.snapshot, state = excluded.state, machine_version = excluded.machine_version,
          seq = excluded.seq, epoch = excluded.epoch, updated_at = excluded.updated_at
        where deployment_snapshots.seq < excluded.seq
        returning seq
      )`;
}

async function write(tx: DatabaseTransactionConnection, entry: JournalEntry): Promise<JournalResult> {
  {
    const fenced = await tx.one(sql.type(FencedSnapshot)`
      with ${fencedSnapshotCtes(entry)}
      select (select instance_id from lease), (select epoch from lease), (select live from lease), (select seq from moved) as moved`);
    await checkFenced(entry, fenced, async () => await tx.exists(sql.unsafe`select 1 from deployments where id = ${entry.deploymentId}`));
    // Without a completed action nothing is written back, so the observed columns are known
    // now: they go with the transition row and its notification (delivered on commit: API
    // processes stream it to SSE clients), one statement. (Such an entry comes here only with
    // several outbox events; with one or none, writeAlone wrote it.)
    const observedNow = entry.completed ? null : observedColumns(entry, entry.observedGeneration);
    // and so does its one outbox event, if it has just one (the action it started)
    const outbox = observedNow && entry.transition ? singleEventRows(entry) : null;
    if (entry.transition) {
      await tx.query(sql.unsafe`
        with transition as (
          insert into deployment_transitions (deployment_id, from_state, to_state, event, generation, seq,
                                              action_id, image_ref, attempt, last_error)
          values (${entry.deploymentId}, ${entry.transition.from}, ${entry.transition.to}, ${entry.transition.event},
                  ${entry.generation}, ${entry.seq}, ${entry.step?.actionId ?? null}, ${entry.step?.imageRef ?? null},
                  ${entry.step?.attempt ?? null}, ${entry.step?.lastError ?? null})
          returning deployment_id, seq
        )${observedNow ? sql.fragment`, observed as (${observedNow})` : sql.fragment``}${outbox ? sql.fragment`, ${outbox.ctes}` : sql.fragment``}
        select pg_notify('keelson_transitions', json_build_object('deployment_id', deployment_id::text, 'seq', seq)::text)${outbox ? sql.fragment`, ${outbox.wake}` : sql.fragment``}
        from transition`);
    } else if (observedNow) {
      await tx.query(sql.unsafe`${observedNow}`);
    }
    const history = entry.completed ? await writeHistory(tx, entry.deploymentId, entry.completed) : false;
    // the outbox: in this transaction, after the fence, so a refused write leaves no event
    if (!outbox) await writeEvents(tx, entry);
    if (!entry.completed) return { historyWritten: false, writtenBackGeneration: null };
    const writtenBack = history ? await writeBack(tx, entry.deploymentId, entry.completed) : null;
    if (entry.completed.action === 'teardown' && entry.completed.status === 'succeeded') {
      // The teardown is recorded (history and events outlive the row: migration 0010): the row
      // goes, and with it its lease, snapshot and transitions. Its NOTIFY drops the actor.
      await tx.query(sql.unsafe`delete from deployments where id = ${entry.deploymentId}`);
      return { historyWritten: history, writtenBackGeneration: null };
    }
    await tx.query(sql.unsafe`${observedColumns(entry, Math.max(entry.observedGeneration, writtenBack ?? 0))}`);
    return { historyWritten: history, writtenBackGeneration: writtenBack };
  }
}

/** What keelson writes of the row: current_status and the other observed columns (only where `guard` holds). */
function observedColumns(entry: JournalEntry, observed: number, guard: FragmentSqlToken = sql.fragment`true`) {
  return sql.fragment`
    update deployments set
      current_status = ${entry.status},
      current_image_ref = ${entry.deployed?.imageRef ?? null},
      current_sha = ${entry.deployed?.sha ?? null},
      deployed_at = ${entry.deployed?.deployedAt ?? null},
      last_error = ${entry.lastError},
      observed_generation = greatest(observed_generation, ${observed})
    where id = ${entry.deploymentId} and ${guard}`;
}

// a Completed restored from a version-2 snapshot has none of the release fields
const jsonbOrNull = (value: unknown) => (value === undefined || value === null ? null : sql.jsonb(JSON.parse(JSON.stringify(value)) as never));

async function writeHistory(tx: DatabaseTransactionConnection, deploymentId: string, completed: Completed): Promise<boolean> {
  const row = await tx.maybeOne(sql.type(z.object({ id: z.number() }))`
    insert into deployment_history
      (deployment_id, project, environment, action_id, action, status, image_ref, sha, generation, phases, error, triggered_by,
       values_hash, values_redacted, values_override, inventory, ops_repo_id, manifest_path)
    select ${deploymentId}, d.project, d.environment, ${completed.actionId}, ${completed.action}, ${completed.status}, ${completed.imageRef},
            ${completed.sha}, ${completed.generation}, ${sql.jsonb(completed.phases as never)}, ${completed.error},
            ${completed.triggeredBy}, ${completed.valuesHash ?? null}, ${jsonbOrNull(completed.valuesRedacted)},
            ${jsonbOrNull(completed.valuesOverride)}, ${jsonbOrNull(completed.inventory)},
            ${completed.source?.opsRepoId ?? null}, ${completed.source?.manifestPath ?? null}
    from deployments d where d.id = ${deploymentId}
    on conflict (deployment_id, action_id) do nothing
    returning id`);
  return row !== null;
}

/**
 * A succeeded rollback makes the row tell the truth: its image becomes the desired image, the
 * values_override it rendered (its release's) the desired values, and the ops repo and manifest
 * path it rendered from (its release's, migration 0013) the row's — the next image change must
 * render what runs, not the folder the row had moved to; a path equal to the row's resolved one
 * keeps the row's spelling (releaseDesired, the same rule). desired_status goes back to active
 * and rollback_to is cleared — unless someone wrote a newer desired state meanwhile, which wins.
 * An ops repo deleted since the render (deployments.ops_repo_id would refuse it) is not written.
 */
async function writeBack(tx: DatabaseTransactionConnection, deploymentId: string, completed: Completed): Promise<number | null> {
  if (!completed.writeBack || completed.status !== 'succeeded') return null;
  const source = completed.source ?? null;
  const repo = source?.opsRepoId ?? null;
  const path = source?.manifestPath ?? null;
  const row = await tx.maybeOne(sql.type(z.object({ generation: z.number() }))`
    with release as (
      select ${path}::text as path, ${repo}::uuid as repo,
             ${path}::text is not null and (${repo}::uuid is null or exists (select 1 from ops_repos where id = ${repo}::uuid)) as applies)
    update deployments d set image_ref = ${completed.imageRef}, desired_status = 'active', rollback_to = null,
      values_override = coalesce(${jsonbOrNull(completed.valuesOverride)}, d.values_override),
      ops_repo_id = case when r.applies then r.repo else d.ops_repo_id end,
      manifest_path = case when r.applies and coalesce(d.manifest_path, d.project) <> r.path then r.path else d.manifest_path end
    from release r
    where d.id = ${deploymentId} and d.generation = ${completed.generation}
    returning d.generation`);
  return row?.generation ?? null;
}
