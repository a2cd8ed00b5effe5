import type { Desired } from '../../machines/deployment.machine.ts';
import { defaultNamespace, type DeploymentRow } from '../db/rows.ts';

/** The machine's view of a row's desired state (the notification is only a hint: re-read). */
export function rowToDesired(row: DeploymentRow): Desired {
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
