// Row schemas shared by every reader of the contract tables (runtime, API, CLI).
import { z } from 'zod';

/** migration 0012: what deployments.canary_command may say (machines/deployment.machine.ts CanaryCommand) */
export const CANARY_COMMANDS = ['pause', 'resume', 'promote', 'abort'] as const;

/** migration 0011: the drift check's policy */
export const DRIFT_MODES = ['repair', 'detect'] as const;
export const DESIRED_STATUSES = ['active', 'stopped', 'rollback', 'deleted'] as const;
export const CURRENT_STATUSES = [
  'idle', 'syncing', 'applying', 'verifying', 'healthy', 'failed', 'rolling-back', 'stopped', 'tearing-down',
] as const;
export const HISTORY_ACTIONS = ['deploy', 'rollback', 'stop', 'resume', 'auto-rollback', 'teardown'] as const;

export type DesiredStatus = (typeof DESIRED_STATUSES)[number];
export type CurrentStatus = (typeof CURRENT_STATUSES)[number];
export type HistoryAction = (typeof HISTORY_ACTIONS)[number];

/** The DNS-label rule the database enforces for project, environment and namespace. */
export const NAME_PATTERN = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export const DeploymentRow = z.object({
  id: z.string().uuid(),
  project: z.string(),
  environment: z.string(),
  image_ref: z.string(),
  desired_status: z.enum(DESIRED_STATUSES),
  values_override: z.record(z.string(), z.unknown()),
  ops_repo_id: z.string().uuid().nullable(),
  manifest_path: z.string().nullable(),
  namespace: z.string().nullable(),
  auto_rollback: z.boolean(),
  /** migration 0007; optional for readers that list columns */
  rollback_to: z.number().int().nullable().optional(),
  /** migration 0011: what the drift check does with drifted objects; optional for readers that list columns */
  drift: z.enum(DRIFT_MODES).optional(),
  /** migration 0011: with drift 'detect', what the last check found drifted (null: nothing) */
  drift_detected: z.string().nullable().optional(),
  /** migration 0012: an operator's command for the canary in flight, consumed (nulled) by keelson */
  canary_command: z.enum(CANARY_COMMANDS).nullable().optional(),
  generation: z.number().int(),
  current_status: z.enum(CURRENT_STATUSES),
  current_image_ref: z.string().nullable(),
  current_sha: z.string().nullable(),
  deployed_at: z.string().nullable(),
  last_error: z.string().nullable(),
  observed_generation: z.number().int(),
  status_changed_at: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type DeploymentRow = z.infer<typeof DeploymentRow>;

export const HistoryPhase = z.object({
  name: z.string(),
  started_at: z.string(),
  finished_at: z.string().nullable(),
  duration_ms: z.number().nullable(),
  detail: z.string().nullable().optional(),
  error: z.string().nullable().optional(),
});
export type HistoryPhase = z.infer<typeof HistoryPhase>;

export const HistoryRow = z.object({
  id: z.number().int(),
  deployment_id: z.string().uuid(),
  action_id: z.string(),
  action: z.enum(HISTORY_ACTIONS),
  status: z.enum(['succeeded', 'failed', 'superseded']),
  image_ref: z.string(),
  sha: z.string().nullable(),
  generation: z.number().int(),
  phases: z.array(HistoryPhase),
  error: z.string().nullable(),
  triggered_by: z.string(),
  created_at: z.string(),
  /** the release (migration 0007): null on older rows; optional for readers that list columns */
  values_hash: z.string().nullable().optional(),
  values_redacted: z.unknown().optional(),
  values_override: z.record(z.string(), z.unknown()).nullable().optional(),
  inventory: z.array(z.object({ apiVersion: z.string(), kind: z.string(), name: z.string(), namespace: z.string().optional() })).nullable().optional(),
  /**
   * where the release was rendered from (migration 0013; null on older rows, stops, teardowns):
   * the ops repo (null with a manifest_path: the built-in template) and the manifest path, resolved
   */
  ops_repo_id: z.string().nullable().optional(),
  manifest_path: z.string().nullable().optional(),
});
export type HistoryRow = z.infer<typeof HistoryRow>;

export const TransitionRow = z.object({
  id: z.number().int(),
  deployment_id: z.string().uuid(),
  from_state: z.string().nullable(),
  to_state: z.string(),
  event: z.string(),
  generation: z.number().int(),
  seq: z.number().int(),
  at: z.string(),
  // migration 0004: the context after the step (src/runtime/stepContext.ts); null on rows
  // journaled before it, absent where a reader does not select them
  action_id: z.string().nullable().optional(),
  image_ref: z.string().nullable().optional(),
  attempt: z.number().int().nullable().optional(),
  last_error: z.string().nullable().optional(),
});
export type TransitionRow = z.infer<typeof TransitionRow>;

export const OpsRepoRow = z.object({
  id: z.string().uuid(),
  name: z.string(),
  repo_url: z.string(),
  branch: z.string(),
  path: z.string(),
  sync_interval_s: z.number().int(),
  last_synced_at: z.string().nullable(),
  last_sha: z.string().nullable(),
  last_error: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type OpsRepoRow = z.infer<typeof OpsRepoRow>;

/** The namespace a deployment's objects go to when the row names none. */
export function defaultNamespace(project: string, environment: string): string {
  const name = `${project}-${environment}`;
  return name.length <= 63 ? name : name.slice(0, 63).replace(/-+$/, '');
}
