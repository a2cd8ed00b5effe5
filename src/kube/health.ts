// Health assessment after kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status): pure functions
// from an object, as the API server returns it, to a closed set of statuses with a message that
// is a whole sentence with counts. No I/O; the current time is a parameter (Pod scheduling).
//
// Hazards: at 0 replicas the API server omits status integers, so every missing integer is 0;
// a status that predates the latest spec (observedGeneration behind generation) says nothing
// about that spec, so it is InProgress whatever it claims.
import type { Health, HealthStatus, KubeObject } from './types.ts';

/** Worse statuses sort higher; used to aggregate the health of many objects. */
export const healthSeverity: Readonly<Record<HealthStatus, number>> = {
  Current: 0,
  NotFound: 1,
  Unknown: 2,
  InProgress: 3,
  Terminating: 4,
  Failed: 5,
};

export interface AssessOptions {
  /** For rules that depend on elapsed time (a Pod unschedulable for more than 15 s). */
  now?: Date;
}

/** How long a Pod may stay unschedulable before kstatus calls it Failed. */
const UNSCHEDULABLE_GRACE_MS = 15_000;

type Obj = Record<string, unknown>;

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastUpdateTime?: string;
}

function asObj(value: unknown): Obj {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Obj) : {};
}

/** The value at `path`, or undefined when any step is missing. */
export function get(obj: unknown, ...path: string[]): unknown {
  let current: unknown = obj;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Obj)[key];
  }
  return current;
}

/** A missing (or non-numeric) integer is `fallback`: the API server omits zeros. */
function int(obj: unknown, path: string[], fallback = 0): number {
  const value = get(obj, ...path);
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
  return fallback;
}

function str(obj: unknown, ...path: string[]): string | undefined {
  const value = get(obj, ...path);
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  return undefined;
}

function conditions(obj: KubeObject): Condition[] {
  const list = get(obj, 'status', 'conditions');
  if (!Array.isArray(list)) return [];
  return list.map(asObj).filter((c) => typeof c.type === 'string').map((c) => ({
    type: String(c.type),
    status: String(c.status ?? 'Unknown'),
    reason: str(c, 'reason'),
    message: str(c, 'message'),
    lastTransitionTime: str(c, 'lastTransitionTime'),
    lastUpdateTime: str(c, 'lastUpdateTime'),
  }));
}

function condition(obj: KubeObject, type: string): Condition | undefined {
  return conditions(obj).find((c) => c.type === type);
}

function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

function health(status: HealthStatus, message: string): Health {
  return { status, message };
}

/** Ends a message as a sentence, quoting a server-provided detail after a colon. */
function withDetail(sentence: string, detail: string | undefined): string {
  if (!detail) return `${sentence}.`;
  const trimmed = detail.trim();
  return `${sentence}: ${trimmed}${/[.!?)]$/.test(trimmed) ? '' : '.'}`;
}

export function assessHealth(obj: KubeObject | undefined, options: AssessOptions = {}): Health {
  if (!obj) return health('NotFound', 'The object does not exist.');
  if (typeof obj.kind !== 'string' || !obj.metadata) {
    return health('Unknown', 'The object has no kind or metadata, so its health cannot be assessed.');
  }
  if (get(obj, 'metadata', 'deletionTimestamp') !== undefined && get(obj, 'metadata', 'deletionTimestamp') !== null) {
    return health('Terminating', `${obj.kind} ${obj.metadata.name} is being deleted.`);
  }
  const generation = get(obj, 'metadata', 'generation');
  const observed = get(obj, 'status', 'observedGeneration');
  if (typeof generation === 'number' && typeof observed === 'number' && observed !== generation) {
    return health(
      'InProgress',
      `Waiting for the controller to observe the latest spec: generation ${generation}, observed generation ${observed}.`,
    );
  }
  const rule = RULES[obj.kind];
  if (rule) return rule(obj, options);
  return genericHealth(obj);
}

const RULES: Record<string, (obj: KubeObject, options: AssessOptions) => Health> = {
  Deployment: deploymentHealth,
  StatefulSet: statefulSetHealth,
  DaemonSet: daemonSetHealth,
  ReplicaSet: replicaSetHealth,
  Pod: podHealth,
  Job: jobHealth,
  PersistentVolumeClaim: pvcHealth,
  Service: serviceHealth,
  Namespace: namespaceHealth,
  CustomResourceDefinition: crdHealth,
  ConfigMap: alwaysCurrent,
  Secret: alwaysCurrent,
  ServiceAccount: alwaysCurrent,
  PodDisruptionBudget: alwaysCurrent,
  Ingress: alwaysCurrent,
  HorizontalPodAutoscaler: alwaysCurrent,
  CronJob: alwaysCurrent,
  Role: alwaysCurrent,
  ClusterRole: alwaysCurrent,
  RoleBinding: alwaysCurrent,
  ClusterRoleBinding: alwaysCurrent,
};

function alwaysCurrent(obj: KubeObject): Health {
  return health('Current', `${obj.kind} ${obj.metadata.name} exists.`);
}

function deploymentHealth(obj: KubeObject): Health {
  const progressing = condition(obj, 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return health('Failed', withDetail('Deployment exceeded its progress deadline', progressing.message));
  }
  const spec = int(obj, ['spec', 'replicas'], 1);
  const replicas = int(obj, ['status', 'replicas']);
  const updated = int(obj, ['status', 'updatedReplicas']);
  const ready = int(obj, ['status', 'readyReplicas']);
  const available = int(obj, ['status', 'availableReplicas']);
  const waiting = 'Waiting for rollout to finish';
  if (updated < spec) {
    return health('InProgress', `${waiting}: ${updated} of ${plural(spec, 'new replica')} have been updated.`);
  }
  if (replicas > updated) {
    return health('InProgress', `${waiting}: ${plural(replicas - updated, 'old replica')} pending termination.`);
  }
  if (available < updated) {
    return health('InProgress', `${waiting}: ${available} of ${plural(updated, 'updated replica')} are available.`);
  }
  if (ready < spec) {
    return health('InProgress', `${waiting}: ${ready} of ${plural(spec, 'replica')} are ready.`);
  }
  if (replicas < spec) {
    return health('InProgress', `${waiting}: ${replicas} of ${plural(spec, 'replica')} exist.`);
  }
  if (!(progressing?.status === 'True' && progressing.reason === 'NewReplicaSetAvailable')) {
    return health('InProgress', `${waiting}: the new ReplicaSet is not yet reported available.`);
  }
  if (condition(obj, 'Available')?.status !== 'True') {
    return health('InProgress', `${waiting}: the Deployment does not have minimum availability.`);
  }
  return health('Current', `Deployment is available: ${plural(spec, 'replica')} updated and available.`);
}

function statefulSetHealth(obj: KubeObject): Health {
  const waiting = 'Waiting for rollout to finish';
  if (str(obj, 'spec', 'updateStrategy', 'type') === 'OnDelete') {
    return health('Current', 'StatefulSet uses the OnDelete update strategy, so its rollout is not tracked.');
  }
  const spec = int(obj, ['spec', 'replicas'], 1);
  const replicas = int(obj, ['status', 'replicas']);
  const ready = int(obj, ['status', 'readyReplicas']);
  const current = int(obj, ['status', 'currentReplicas']);
  const updated = int(obj, ['status', 'updatedReplicas']);
  if (replicas < spec) return health('InProgress', `${waiting}: ${replicas} of ${plural(spec, 'replica')} exist.`);
  if (ready < spec) return health('InProgress', `${waiting}: ${ready} of ${plural(spec, 'replica')} are ready.`);
  if (replicas > spec) {
    return health('InProgress', `${waiting}: ${plural(replicas - spec, 'extra replica')} pending termination.`);
  }
  const partition = get(obj, 'spec', 'updateStrategy', 'rollingUpdate', 'partition');
  if (typeof partition === 'number') {
    const expected = Math.max(0, spec - partition);
    if (updated < expected) {
      return health('InProgress', `${waiting}: ${updated} of ${plural(expected, 'replica')} above the partition have been updated.`);
    }
    return health('Current', `StatefulSet partitioned rollout is complete: ${plural(updated, 'replica')} updated.`);
  }
  if (current < spec) {
    return health('InProgress', `${waiting}: ${current} of ${plural(spec, 'replica')} run the current revision.`);
  }
  const currentRevision = str(obj, 'status', 'currentRevision');
  const updateRevision = str(obj, 'status', 'updateRevision');
  if (currentRevision !== updateRevision) {
    return health(
      'InProgress',
      `${waiting}: revision ${updateRevision ?? '(none)'} is not yet current (current revision ${currentRevision ?? '(none)'}).`,
    );
  }
  return health('Current', `StatefulSet is ready: ${plural(spec, 'replica')} at revision ${updateRevision ?? '(none)'}.`);
}

function daemonSetHealth(obj: KubeObject): Health {
  const waiting = 'Waiting for rollout to finish';
  if (typeof get(obj, 'status', 'desiredNumberScheduled') !== 'number') {
    return health('InProgress', `${waiting}: the DaemonSet controller has not reported the desired number of pods yet.`);
  }
  const desired = int(obj, ['status', 'desiredNumberScheduled']);
  const current = int(obj, ['status', 'currentNumberScheduled']);
  const updated = int(obj, ['status', 'updatedNumberScheduled']);
  const available = int(obj, ['status', 'numberAvailable']);
  const ready = int(obj, ['status', 'numberReady']);
  const nodes = plural(desired, 'scheduled pod');
  if (current < desired) return health('InProgress', `${waiting}: ${current} of ${nodes} exist.`);
  if (updated < desired) return health('InProgress', `${waiting}: ${updated} of ${nodes} have been updated.`);
  if (available < desired) return health('InProgress', `${waiting}: ${available} of ${nodes} are available.`);
  if (ready < desired) return health('InProgress', `${waiting}: ${ready} of ${nodes} are ready.`);
  return health('Current', `DaemonSet is available: ${nodes} updated and available.`);
}

function replicaSetHealth(obj: KubeObject): Health {
  const failure = condition(obj, 'ReplicaFailure');
  if (failure?.status === 'True') {
    return health('InProgress', withDetail('ReplicaSet cannot create its pods', failure.message));
  }
  const spec = int(obj, ['spec', 'replicas'], 1);
  const replicas = int(obj, ['status', 'replicas']);
  const ready = int(obj, ['status', 'readyReplicas']);
  const available = int(obj, ['status', 'availableReplicas']);
  const waiting = 'Waiting for replicas';
  if (available < spec) return health('InProgress', `${waiting}: ${available} of ${plural(spec, 'replica')} are available.`);
  if (ready < spec) return health('InProgress', `${waiting}: ${ready} of ${plural(spec, 'replica')} are ready.`);
  if (replicas > spec) {
    return health('InProgress', `${waiting}: ${plural(replicas - spec, 'extra replica')} pending termination.`);
  }
  return health('Current', `ReplicaSet is available: ${plural(spec, 'replica')}.`);
}

/** `container web is waiting: ImagePullBackOff (Back-off pulling image "shop:x")`, or undefined. */
export function describeWaitingContainers(pod: KubeObject, reasons?: ReadonlySet<string>): string[] {
  const statuses = [
    ...(Array.isArray(get(pod, 'status', 'initContainerStatuses')) ? (get(pod, 'status', 'initContainerStatuses') as unknown[]) : []),
    ...(Array.isArray(get(pod, 'status', 'containerStatuses')) ? (get(pod, 'status', 'containerStatuses') as unknown[]) : []),
  ];
  const found: string[] = [];
  for (const status of statuses) {
    const reason = str(status, 'state', 'waiting', 'reason');
    if (!reason || (reasons && !reasons.has(reason))) continue;
    const detail = str(status, 'state', 'waiting', 'message');
    found.push(`container ${str(status, 'name') ?? '(unnamed)'} is waiting: ${reason}${detail ? ` (${detail})` : ''}`);
  }
  return found;
}

function podHealth(obj: KubeObject, options: AssessOptions): Health {
  const phase = str(obj, 'status', 'phase');
  if (phase === 'Succeeded') return health('Current', 'Pod has completed successfully.');
  if (phase === 'Failed') {
    return health('Failed', withDetail('Pod has completed, but not successfully', str(obj, 'status', 'message') ?? str(obj, 'status', 'reason')));
  }
  if (condition(obj, 'Ready')?.status === 'True') return health('Current', 'Pod is running and ready.');
  const crashing = describeWaitingContainers(obj, new Set(['CrashLoopBackOff']));
  if (crashing.length > 0) return health('Failed', `Pod is crash-looping: ${crashing.join('; ')}.`);
  const scheduled = condition(obj, 'PodScheduled');
  if (phase === 'Pending' && scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    const since = scheduled.lastTransitionTime ? Date.parse(scheduled.lastTransitionTime) : Number.NaN;
    const now = (options.now ?? new Date()).getTime();
    if (Number.isFinite(since) && now - since > UNSCHEDULABLE_GRACE_MS) {
      return health('Failed', withDetail('Pod cannot be scheduled', scheduled.message));
    }
    return health('InProgress', withDetail('Pod is waiting to be scheduled', scheduled.message));
  }
  const waiting = describeWaitingContainers(obj);
  if (waiting.length > 0) return health('InProgress', `Pod is not ready: ${waiting.join('; ')}.`);
  return health('InProgress', `Pod is ${phase ?? 'Pending'} but not ready yet.`);
}

function jobHealth(obj: KubeObject): Health {
  const succeeded = int(obj, ['status', 'succeeded']);
  const failed = int(obj, ['status', 'failed']);
  const active = int(obj, ['status', 'active']);
  const parallelism = int(obj, ['spec', 'parallelism'], 1);
  const completions = int(obj, ['spec', 'completions'], parallelism);
  for (const c of conditions(obj)) {
    if (c.status !== 'True') continue;
    if (c.type === 'Complete') {
      return health('Current', `Job has completed: ${succeeded} of ${plural(completions, 'completion')} succeeded.`);
    }
    if (c.type === 'Failed') {
      return health('Failed', withDetail(`Job has failed with ${plural(failed, 'failed pod')}`, c.message));
    }
  }
  if (str(obj, 'status', 'startTime') === undefined) return health('InProgress', 'Job has not started yet.');
  return health(
    'InProgress',
    `Job is running: ${succeeded} of ${plural(completions, 'completion')} succeeded, ${active} active, ${failed} failed.`,
  );
}

function pvcHealth(obj: KubeObject): Health {
  const phase = str(obj, 'status', 'phase') ?? 'Pending';
  if (phase === 'Bound') return health('Current', 'PersistentVolumeClaim is bound.');
  if (phase === 'Lost') return health('Failed', 'PersistentVolumeClaim has lost its volume.');
  return health('InProgress', `PersistentVolumeClaim is ${phase}, not yet bound.`);
}

function serviceHealth(obj: KubeObject): Health {
  if (str(obj, 'spec', 'type') === 'LoadBalancer') {
    const ingress = get(obj, 'status', 'loadBalancer', 'ingress');
    if (!Array.isArray(ingress) || ingress.length === 0) {
      return health('InProgress', 'Service of type LoadBalancer is waiting for an external address.');
    }
  }
  return health('Current', `Service ${obj.metadata.name} exists.`);
}

function namespaceHealth(obj: KubeObject): Health {
  if (str(obj, 'status', 'phase') === 'Terminating') return health('Terminating', `Namespace ${obj.metadata.name} is being deleted.`);
  return health('Current', `Namespace ${obj.metadata.name} is active.`);
}

function crdHealth(obj: KubeObject): Health {
  const names = condition(obj, 'NamesAccepted');
  if (names?.status === 'False') return health('Failed', withDetail('CustomResourceDefinition names were not accepted', names.message));
  if (condition(obj, 'Established')?.status === 'True') return health('Current', 'CustomResourceDefinition is established.');
  return health('InProgress', 'CustomResourceDefinition is not established yet.');
}

/** Unknown kinds: kstatus's standard conditions, else Current (the object exists). */
function genericHealth(obj: KubeObject): Health {
  const stalled = condition(obj, 'Stalled');
  if (stalled?.status === 'True') return health('Failed', withDetail(`${obj.kind} is stalled`, stalled.message));
  const reconciling = condition(obj, 'Reconciling');
  if (reconciling?.status === 'True') return health('InProgress', withDetail(`${obj.kind} is reconciling`, reconciling.message));
  const ready = condition(obj, 'Ready');
  if (ready?.status === 'False') return health('InProgress', withDetail(`${obj.kind} is not ready`, ready.message));
  return health('Current', `${obj.kind} ${obj.metadata.name} exists.`);
}
