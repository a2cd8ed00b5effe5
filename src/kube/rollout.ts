// Pure decisions of rollout verification: which kinds are verified, which pods belong to a
// workload's NEW revision, which pod states fail a rollout fast, and when the grace period is up.
//
// Why pods at all: a Deployment's own status shows nothing about an image that cannot be pulled
// until progressDeadlineSeconds (600 s by default) has passed; its pods show it at once.
import { describeWaitingContainers, get } from './health.ts';
import type { KubeObject } from './types.ts';

/** Kinds whose health verification waits for; everything else is Current once applied. */
export const VERIFIED_KINDS: ReadonlySet<string> = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'Pod']);

/** Kinds whose pods are watched for fail-fast states. */
export const POD_OWNER_KINDS: ReadonlySet<string> = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

/**
 * Waiting reasons that fail a rollout once they persist for the grace period. ErrImagePull may be
 * a registry hiccup on a real cluster; it turns into ImagePullBackOff when it repeats, and the
 * grace period requires the pod to stay in one of these states throughout.
 */
export const FAIL_FAST_REASONS: ReadonlySet<string> = new Set([
  'CrashLoopBackOff',
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
]);

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';

type Obj = Record<string, unknown>;


/** A single ErrImagePull may be a registry hiccup: alone it must last this many grace periods. */
export const ERR_IMAGE_PULL_GRACE_FACTOR = 3;

export interface PodProblem {
  /** `pod shop-7d9c-abcde: container web is waiting: ImagePullBackOff (Back-off pulling image "x")` */
  message: string;
  /** Every failing container is merely in ErrImagePull (not yet backing off). */
  mayBeTransient: boolean;
}

/** The pod's containers in a fail-fast state, or undefined when there are none. */
export function podProblem(pod: KubeObject): PodProblem | undefined {
  const waiting = describeWaitingContainers(pod, FAIL_FAST_REASONS);
  if (waiting.length === 0) return undefined;
  const others = describeWaitingContainers(pod, new Set([...FAIL_FAST_REASONS].filter((r) => r !== 'ErrImagePull')));
  return { message: `pod ${pod.metadata.name}: ${waiting.join('; ')}`, mayBeTransient: others.length === 0 };
}

/** A label selector (`matchLabels` and `matchExpressions`) as the API's query string. */
export function selectorToString(selector: unknown): string | undefined {
  const parts: string[] = [];
  const matchLabels = get(selector, 'matchLabels');
  if (matchLabels && typeof matchLabels === 'object') {
    for (const [key, value] of Object.entries(matchLabels as Obj)) parts.push(`${key}=${String(value)}`);
  }
  const expressions = get(selector, 'matchExpressions');
  if (Array.isArray(expressions)) {
    for (const expression of expressions) {
      const key = String(get(expression, 'key'));
      const values = (get(expression, 'values') as unknown[] | undefined)?.map(String) ?? [];
      switch (get(expression, 'operator')) {
        case 'In': parts.push(`${key} in (${values.join(',')})`); break;
        case 'NotIn': parts.push(`${key} notin (${values.join(',')})`); break;
        case 'Exists': parts.push(key); break;
        case 'DoesNotExist': parts.push(`!${key}`); break;
      }
    }
  }
  return parts.length > 0 ? parts.join(',') : undefined;
}

/** Whether `labels` satisfy a label selector (`matchLabels` and `matchExpressions`); an empty selector matches nothing. */
export function matchesSelector(selector: unknown, labels: Readonly<Record<string, string>> | undefined): boolean {
  const have = labels ?? {};
  const matchLabels = get(selector, 'matchLabels');
  const expressions = get(selector, 'matchExpressions');
  const pairs = matchLabels && typeof matchLabels === 'object' ? Object.entries(matchLabels as Obj) : [];
  const list = Array.isArray(expressions) ? expressions : [];
  if (pairs.length === 0 && list.length === 0) return false;
  if (!pairs.every(([key, value]) => have[key] === String(value))) return false;
  return list.every((expression) => {
    const key = String(get(expression, 'key'));
    const values = ((get(expression, 'values') as unknown[] | undefined) ?? []).map(String);
    switch (get(expression, 'operator')) {
      case 'In': return key in have && values.includes(have[key] as string);
      case 'NotIn': return !(key in have) || !values.includes(have[key] as string);
      case 'Exists': return key in have;
      case 'DoesNotExist': return !(key in have);
      default: return false;
    }
  });
}

function ownerNames(obj: KubeObject, kind: string): string[] {
  const owners = get(obj, 'metadata', 'ownerReferences');
  if (!Array.isArray(owners)) return [];
  return owners.filter((o) => get(o, 'kind') === kind).map((o) => String(get(o, 'name')));
}

function revisionOf(obj: KubeObject): number {
  const value = Number(obj.metadata.annotations?.[REVISION_ANNOTATION]);
  return Number.isFinite(value) ? value : -1;
}

/**
 * The name of a Deployment's newest ReplicaSet among `replicaSets`: the one whose revision
 * annotation matches the Deployment's, else the highest revision it owns. Undefined if unknown.
 */
export function newReplicaSetName(deployment: KubeObject, replicaSets: KubeObject[]): string | undefined {
  const owned = replicaSets.filter((rs) => ownerNames(rs, 'Deployment').includes(deployment.metadata.name));
  const candidates = owned.length > 0 ? owned : replicaSets;
  const wanted = deployment.metadata.annotations?.[REVISION_ANNOTATION];
  const exact = wanted === undefined ? undefined : candidates.find((rs) => rs.metadata.annotations?.[REVISION_ANNOTATION] === wanted);
  if (exact) return exact.metadata.name;
  const newest = [...candidates].sort((a, b) => revisionOf(b) - revisionOf(a))[0];
  return newest?.metadata.name;
}

/**
 * Does `pod` run the workload's newest template? Pods of the old revision may legitimately be
 * unhealthy while they are replaced, so only new-revision pods fail a rollout. When the evidence
 * is missing (no owner, no revision label) the pod counts as new: it matches the selector.
 */
export function isNewRevisionPod(workload: KubeObject, pod: KubeObject, replicaSets: KubeObject[] = []): boolean {
  const podLabels = pod.metadata.labels ?? {};
  switch (workload.kind) {
    case 'Deployment': {
      const owners = ownerNames(pod, 'ReplicaSet');
      const newest = newReplicaSetName(workload, replicaSets);
      if (owners.length === 0 || newest === undefined) return true;
      return owners.includes(newest);
    }
    case 'StatefulSet': {
      const updateRevision = get(workload, 'status', 'updateRevision');
      const podRevision = podLabels['controller-revision-hash'];
      if (typeof updateRevision !== 'string' || podRevision === undefined) return true;
      return podRevision === updateRevision;
    }
    case 'DaemonSet': {
      const generation = get(workload, 'metadata', 'generation');
      const podGeneration = podLabels['pod-template-generation'];
      if (typeof generation !== 'number' || podGeneration === undefined) return true;
      return podGeneration === String(generation);
    }
    default:
      return true;
  }
}

/**
 * Tracks for how long each pod has been in a fail-fast state, by wall-clock time in ms. A pod
 * that recovers (or disappears) starts from zero next time. The problem is due after `graceMs`,
 * or after ERR_IMAGE_PULL_GRACE_FACTOR times that while it is only an ErrImagePull.
 */
export class ProblemTracker {
  readonly #since = new Map<string, number>();

  /** Records the pod's current problem (or its absence); returns when it will be due, if any. */
  observe(key: string, problem: PodProblem | undefined, now: number, graceMs: number): number | undefined {
    if (problem === undefined) {
      this.#since.delete(key);
      return undefined;
    }
    const since = this.#since.get(key) ?? now;
    this.#since.set(key, since);
    return since + graceMs * (problem.mayBeTransient ? ERR_IMAGE_PULL_GRACE_FACTOR : 1);
  }

  /** Forgets pods that are gone (or no longer of the new revision). */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.#since.keys()) if (!keys.has(key)) this.#since.delete(key);
  }
}
