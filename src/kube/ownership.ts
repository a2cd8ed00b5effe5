// Who may apply over an existing object (issue #11, item 2), and the labels that record it.
// Pure: no I/O.
//
// keelson applies only over objects it owns for the same deployment. An object labelled
// `keelson.dev/deployment` for another deployment, or one keelson did not create (no
// `app.kubernetes.io/managed-by: keelson`), is someone else's: server-side apply with force would
// silently take it over. The manifest may ask to adopt such an object with the annotation
// `keelson.dev/adopt: "true"`, which counts only when the caller allows it (the project's policy).
import {
  ADOPT_ANNOTATION,
  DEPLOYMENT_LABEL,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  type KubeObject,
} from './types.ts';

export type Ownership =
  | { readonly verdict: 'create' }
  | { readonly verdict: 'owned' }
  | { readonly verdict: 'adopt'; readonly owner: string }
  | { readonly verdict: 'refused'; readonly owner: string };

/** Field managers recorded on an object, for naming who owns it (`kubectl-client-side-apply, helm`). */
export function fieldManagers(live: KubeObject): string[] {
  const entries = live.metadata.managedFields;
  if (!Array.isArray(entries)) return [];
  const names = entries.map((entry) => (entry as { manager?: unknown }).manager).filter((m): m is string => typeof m === 'string' && m !== '');
  return [...new Set(names)];
}

/** `keelson deployment 7f3c…`, or `field managers kubectl-edit, helm`: who owns `live` if not us. */
export function ownerOf(live: KubeObject): string {
  const labels = live.metadata.labels ?? {};
  const deployment = labels[DEPLOYMENT_LABEL];
  if (deployment) return `keelson deployment ${deployment}`;
  const managers = fieldManagers(live);
  return managers.length > 0 ? `field manager${managers.length === 1 ? '' : 's'} ${managers.join(', ')}` : 'no recorded field manager';
}

export function decideOwnership(desired: KubeObject, live: KubeObject | undefined, deploymentId: string, allowAdopt: boolean): Ownership {
  if (!live) return { verdict: 'create' };
  const labels = live.metadata.labels ?? {};
  const deployment = labels[DEPLOYMENT_LABEL];
  if (deployment === deploymentId) return { verdict: 'owned' };
  // keelson created it for no deployment in particular (a namespace it made to apply into).
  if (deployment === undefined && labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE) return { verdict: 'owned' };
  const owner = ownerOf(live);
  if (allowAdopt && desired.metadata.annotations?.[ADOPT_ANNOTATION] === 'true') return { verdict: 'adopt', owner };
  return { verdict: 'refused', owner };
}

/** One sentence per refused object, naming it and its owner. */
export function refusalMessage(refused: ReadonlyArray<{ what: string; owner: string }>, deploymentId: string): string {
  const list = refused.map(({ what, owner }) => `${what} belongs to ${owner}`).join('; ');
  return (
    `keelson applies only over objects it owns for deployment ${deploymentId}, and nothing was applied: ${list}. ` +
    `Rename the object in the manifest, remove it from its owner, or annotate it with ${ADOPT_ANNOTATION}: "true" where the project's policy allows adoption.`
  );
}

/** Kinds whose pod template keelson labels, and where that template is. */
const POD_TEMPLATES: Readonly<Record<string, readonly string[]>> = {
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

type Obj = Record<string, unknown>;

function at(obj: unknown, path: readonly string[]): Obj | undefined {
  let current: unknown = obj;
  for (const key of path) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    current = (current as Obj)[key];
  }
  return current !== null && typeof current === 'object' && !Array.isArray(current) ? (current as Obj) : undefined;
}

function addLabels(meta: Obj, labels: Record<string, string>): void {
  meta.labels = { ...((meta.labels as Record<string, string> | undefined) ?? {}), ...labels };
}

/**
 * A copy of `object` carrying keelson's labels on its own metadata and on its pod template, so
 * the ReplicaSets and Pods the controllers make from it carry them too: that is how the shared
 * cluster cache finds them with one label-selected watch per kind instead of a LIST per workload.
 * Selectors are never touched (they are immutable on Deployments).
 *
 * Hazards: labelling a pod template changes it, so the first apply by a keelson that labels
 * templates rolls each workload's pods once. A Job's pod template is immutable: it is labelled
 * only when the Job is created (`live` absent) or already carries the labels.
 */
export function stampLabels(object: KubeObject, deploymentId: string, live?: KubeObject): KubeObject {
  const copy = structuredClone(object);
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [DEPLOYMENT_LABEL]: deploymentId };
  addLabels(copy.metadata, labels);
  const templatePath = POD_TEMPLATES[copy.kind];
  if (!templatePath) return copy;
  if (copy.kind === 'Job' && live) {
    const liveLabels = (at(live, [...templatePath, 'metadata'])?.labels ?? {}) as Record<string, string>;
    if (liveLabels[DEPLOYMENT_LABEL] !== deploymentId) return copy;
  }
  const template = at(copy, templatePath);
  if (!template) return copy;
  template.metadata ??= {};
  addLabels(template.metadata as Obj, labels);
  if (copy.kind === 'CronJob') {
    const jobTemplate = at(copy, ['spec', 'jobTemplate']);
    if (jobTemplate) {
      jobTemplate.metadata ??= {};
      addLabels(jobTemplate.metadata as Obj, labels);
    }
  }
  return copy;
}
