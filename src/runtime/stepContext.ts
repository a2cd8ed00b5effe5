// What a journaled transition records of the actor's context (issue #17, the visualizer's time
// travel): the action in flight, the image it is making true, its retry attempt and the last
// error — enough to show "what changed" at each step without storing whole snapshots per step.
// Pure: the journal writes what this returns into deployment_transitions.
import type { DeploymentContext } from '../../machines/deployment.machine.ts';
import { redactSecrets } from '../api/redact.ts';

export interface StepContext {
  readonly actionId: string | null;
  readonly imageRef: string | null;
  readonly attempt: number | null;
  /** redacted: credentials in URLs and API tokens never reach the table */
  readonly lastError: string | null;
}

/** Longest last_error kept per step: the full text stays in `deployments.last_error` and history. */
export const STEP_ERROR_MAX = 2000;

type StepInput = Pick<DeploymentContext, 'work' | 'deployed' | 'desired' | 'lastError' | 'completed'>;

export function stepContext(context: StepInput): StepContext {
  const { work, completed } = context;
  // The step that ends an action (into healthy, failed, stopped) has no work any more: it
  // belongs to the action just completed, so it links to that history row and shows the image
  // that action was about. A rollback learns its image only once the target is found: until
  // then show what runs.
  const imageRef = work?.imageRef || (work ? null : completed?.imageRef || null) || context.deployed?.imageRef || context.desired?.imageRef || null;
  const error = context.lastError === null ? null : redactSecrets(context.lastError);
  return {
    actionId: work?.actionId ?? completed?.actionId ?? null,
    imageRef,
    attempt: work ? work.attempt : null,
    lastError: error !== null && error.length > STEP_ERROR_MAX ? `${error.slice(0, STEP_ERROR_MAX - 1)}…` : error,
  };
}
