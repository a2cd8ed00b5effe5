import { sql } from 'slonik';
import type { Desired } from '../../machines/deployment.machine.ts';
import { defaultNamespace, DeploymentRow } from '../db/rows.ts';

/**
 * What a wake-up reads of its row: the desired state and the canary command, nothing keelson
 * writes itself. Half the columns of `select *`, and half the row validation, on the path from
 * a committed UPDATE to the actor's first journaled transition.
 */
export const DesiredRow = DeploymentRow.pick({
  id: true,
  project: true,
  environment: true,
  image_ref: true,
  desired_status: true,
  values_override: true,
  ops_repo_id: true,
  manifest_path: true,
  namespace: true,
  auto_rollback: true,
  rollback_to: true,
  canary_command: true,
  generation: true,
});
export type DesiredRow = ReturnType<typeof DesiredRow.parse>;

/** DesiredRow's columns, in the order of its schema. */
export const DESIRED_COLUMNS = sql.join(
  Object.keys(DesiredRow.shape).map((column) => sql.identifier([column])),
  sql.fragment`, `,
);

/** The machine's view of a row's desired state (the notification is only a hint: re-read). */
export function rowToDesired(row: DesiredRow): Desired {
  return {
    generation: row.generation,
    desiredStatus: row.desired_status,
    imageRef: row.image_ref,
    project: row.project,
    environment: row.environment,
    namespace: row.namespace ?? defaultNamespace(row.project, row.environment),
    opsRepoId: row.ops_repo_id,
    manifestPath: row.manifest_path,
    valuesOverride: row.values_override,
    autoRollback: row.auto_rollback,
    rollbackTo: row.rollback_to ?? null,
  };
}
