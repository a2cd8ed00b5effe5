// Which release a rollback goes back to. Pure: the SQL reads the history, this decides.
//
// A release is a history row of an action that rendered something (every action but a stop).
// The *current* release is the newest one, whatever its outcome: it is what the deployment was
// last made to run (or tried to). The default target is the newest earlier release that went
// healthy (`succeeded`) AND differs from the current one in its image, its commit or its values:
// `z:1 ok, a:2 ok, a:2 failed after a config change` goes back to `a:2 ok` — the same image with
// the previous commit and values — not two versions back to `z:1`. Values are compared by hash
// where both rows have one (rows written before migration 0007 have none: image and commit decide).
// An explicit target (a history id) must be a release of this deployment that succeeded.

export interface ReleaseCandidate {
  readonly id: number;
  readonly action: string;
  readonly status: string;
  readonly imageRef: string;
  readonly sha: string | null;
  readonly valuesHash: string | null;
}

export type TargetChoice<R extends ReleaseCandidate> =
  | { readonly kind: 'target'; readonly release: R }
  | { readonly kind: 'none'; readonly reason: string }
  | { readonly kind: 'refused'; readonly status: 404 | 409; readonly reason: string };

const isRelease = (row: ReleaseCandidate): boolean => row.action !== 'stop';

/** Whether two releases render differently (image, commit or values). */
export function differs(a: ReleaseCandidate, b: ReleaseCandidate): boolean {
  if (a.imageRef !== b.imageRef || a.sha !== b.sha) return true;
  return a.valuesHash !== null && b.valuesHash !== null && a.valuesHash !== b.valuesHash;
}

/**
 * `history`: the deployment's rows, newest first (every action, stops included). `explicit`: the
 * history id a caller asked for, or null. `deployment` names it in sentences.
 */
export function selectRollbackTarget<R extends ReleaseCandidate>(history: readonly R[], explicit: number | null, deployment = 'this deployment'): TargetChoice<R> {
  if (explicit !== null) {
    const chosen = history.find((row) => row.id === explicit);
    if (!chosen || !isRelease(chosen)) {
      return { kind: 'refused', status: 404, reason: `History entry ${explicit} is not a release of ${deployment}; list its releases with GET …/history.` };
    }
    if (chosen.status !== 'succeeded') {
      return { kind: 'refused', status: 409, reason: `Release ${explicit} of ${deployment} ${chosen.status === 'failed' ? 'failed' : `ended ${chosen.status}`}; only a release that went healthy can be rolled back to.` };
    }
    return { kind: 'target', release: chosen };
  }
  const releases = history.filter(isRelease);
  const current = releases[0];
  if (!current) return { kind: 'none', reason: 'no previous healthy image to roll back to: deploy an image first, or set desired_status back to active' };
  const target = releases.find((row) => row.id < current.id && row.status === 'succeeded' && differs(row, current));
  if (!target) return { kind: 'none', reason: 'no previous healthy image to roll back to: deploy an image first, or set desired_status back to active' };
  return { kind: 'target', release: target };
}
