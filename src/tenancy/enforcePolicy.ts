// The actor's side of project policies: after rendering, before anything is applied, every
// rendered object and the row's own placement are checked against the project's policy. One
// refusal fails the whole action (TerminalError `policy_violation`, retried only when the desired
// state or the policy changes), so nothing of a half-allowed set is applied.
import type { CommonQueryMethods } from 'slonik';
import { TerminalError } from '../errors.ts';
import { checkObjects, type CheckedObject } from './checkObjects.ts';
import { checkPlacement, type Policy } from './policy.ts';
import { getProjectPolicy } from './sql/getProjectPolicy.ts';

export interface RenderedDeployment {
  readonly project: string;
  /** The resolved namespace (the row's, or `<project>-<environment>`). */
  readonly namespace: string;
  /** The ops repo's name, null for the built-in template. */
  readonly opsRepo: string | null;
  readonly manifestPath: string | null;
  readonly objects: readonly CheckedObject[];
}

/** Every violation as one sentence each; empty when the policy allows it all. */
export function policyViolations(policy: Policy, rendered: RenderedDeployment): string[] {
  return [
    ...checkPlacement(policy, rendered).map((v) => v.message.replace(/\.$/, '')),
    ...checkObjects(rendered.objects, policy, { namespace: rendered.namespace }).map((v) => v.message),
  ];
}

/** Loads the project's policy and throws `policy_violation` naming every violation; returns the policy. */
export async function enforcePolicy(db: Pick<CommonQueryMethods, 'maybeOne'>, rendered: RenderedDeployment): Promise<Policy> {
  const policy = await getProjectPolicy(db, rendered.project);
  const violations = policyViolations(policy, rendered);
  if (violations.length > 0) {
    const shown = violations.slice(0, 5).join('. ');
    const more = violations.length > 5 ? `. And ${violations.length - 5} more` : '';
    throw new TerminalError(
      `The rendered manifests break project ${rendered.project}'s policy, so nothing was applied: ${shown}${more}. ` +
        'Change the manifests or the deployment, or ask an admin to change the policy (projects table or /api/admin/projects).',
      { code: 'policy_violation' },
    );
  }
  return policy;
}
