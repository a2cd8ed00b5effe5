// The `kubernetes-events` sink: each outbox event becomes a core/v1 Event on the workloads
// (Deployments, StatefulSets, DaemonSets) of its deployment, so `kubectl describe deployment`
// and `kubectl get events` show what keelson did. Not an HTTP sink: the dispatcher hands the
// event to this deliverer, which creates the Events with keelson's cluster credentials.
//
// Events come only from the outbox, which only the fenced journal writes: a process that lost
// its lease cannot invent one. The Event name is derived from (outbox event, workload), so a
// retried delivery (a dispatcher killed after the create) finds its Event there (`exists`).
import { createHash } from 'node:crypto';
import { sql, type CommonQueryMethods } from 'slonik';
import { redactSecrets } from '../../api/redact.ts';
import { errorMessage } from '../../errors.ts';
import { DEPLOYMENT_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, type KubeObject, type ObjectRef } from '../../kube/types.ts';
import { EVENT_KINDS, EVENT_OUTCOMES, HEALTH_EVENT_KIND, HEALTH_OUTCOMES, type EventKind, type EventOutcome, type HealthOutcome } from '../events.ts';
import type { StoredEvent } from './sink.ts';

/** `reason` of each event type: what `kubectl get events` shows in its REASON column. */
export const KUBE_EVENT_REASONS: Readonly<Record<EventKind, Readonly<Record<EventOutcome, string>>>> = {
  deploy: { started: 'DeployStarted', succeeded: 'DeploySucceeded', failed: 'DeployFailed', superseded: 'DeploySuperseded' },
  rollback: { started: 'RollbackStarted', succeeded: 'RolledBack', failed: 'RollbackFailed', superseded: 'RollbackSuperseded' },
  stop: { started: 'Stopping', succeeded: 'Stopped', failed: 'StopFailed', superseded: 'StopSuperseded' },
  resume: { started: 'Resuming', succeeded: 'Resumed', failed: 'ResumeFailed', superseded: 'ResumeSuperseded' },
  'drift-repair': { started: 'DriftDetected', succeeded: 'DriftRepaired', failed: 'DriftRepairFailed', superseded: 'DriftRepairSuperseded' },
  // a succeeded teardown deleted the workloads these would be recorded on: only its start (and
  // a failure that left them) can be seen in `kubectl describe`
  teardown: { started: 'TeardownStarted', succeeded: 'TornDown', failed: 'TeardownFailed', superseded: 'TeardownSuperseded' },
};

/** Live health (not an action): `reason` and `type` of health.degraded / health.recovered. */
export const KUBE_HEALTH_REASONS: Readonly<Record<HealthOutcome, { readonly reason: string; readonly type: 'Warning' | 'Normal' }>> = {
  degraded: { reason: 'Degraded', type: 'Warning' },
  recovered: { reason: 'Recovered', type: 'Normal' },
};

export const REPORTING_COMPONENT = 'keelson';
/** Kubernetes truncates longer messages in events.k8s.io; keep ours whole sentences below it. */
const MESSAGE_MAX = 1024;

export type Workload = ObjectRef & { readonly uid: string | null };

function parseType(type: string): { kind: EventKind; outcome: EventOutcome } | null {
  const dot = type.lastIndexOf('.');
  const kind = type.slice(0, dot) as EventKind;
  const outcome = type.slice(dot + 1) as EventOutcome;
  return EVENT_KINDS.includes(kind) && EVENT_OUTCOMES.includes(outcome) ? { kind, outcome } : null;
}

const NOUNS: Record<EventKind, string> = { deploy: 'Deploy', rollback: 'Rollback', stop: 'Stop', resume: 'Resume', 'drift-repair': 'Drift repair', teardown: 'Teardown' };

/** The Event's message: one sentence about the action, as a person reading `kubectl describe` wants it. */
export function kubeEventMessage(kind: EventKind, outcome: EventOutcome, data: StoredEvent['data']): string {
  const noun = kind === 'rollback' && data.automatic ? 'Automatic rollback' : NOUNS[kind];
  const subject = kind === 'stop' ? ' (scale to zero)' : data.image_ref ? ` of ${data.image_ref}` : '';
  const generation = `generation ${data.generation}`;
  let message: string;
  switch (outcome) {
    case 'started':
      message = `${noun}${subject} started (${generation}, triggered by ${data.triggered_by || 'keelson'}).`;
      break;
    case 'succeeded': {
      const commit = data.sha ? `, commit ${data.sha.slice(0, 12)}` : '';
      const took = data.duration_ms === null ? '' : ` in ${(data.duration_ms / 1000).toFixed(1)} s`;
      message = `${noun}${subject} succeeded (${generation}${commit})${took}.`;
      break;
    }
    case 'failed':
      message = `${noun}${subject} failed (${generation}): ${data.error ?? 'no error recorded'}`;
      break;
    case 'superseded':
      message = `${noun}${subject} was superseded (${generation}): ${data.error ?? 'a newer generation came first'}`;
      break;
  }
  // a SQL writer's image ref or a git error may carry credentials
  const safe = redactSecrets(message);
  return safe.length > MESSAGE_MAX ? `${safe.slice(0, MESSAGE_MAX - 1)}…` : safe;
}

/** The Event's message of a health change: what runs, and (degraded) the object, pod and reason. */
export function kubeHealthMessage(outcome: HealthOutcome, data: StoredEvent['data']): string {
  const subject = data.image_ref ? ` ${data.image_ref}` : '';
  const message =
    outcome === 'degraded'
      ? `Release${subject} degraded (generation ${data.generation}): ${data.error ?? 'unhealthy'}`
      : `Release${subject} recovered (generation ${data.generation}).`;
  const safe = redactSecrets(message);
  return safe.length > MESSAGE_MAX ? `${safe.slice(0, MESSAGE_MAX - 1)}…` : safe;
}

/** What an event type becomes in Kubernetes: reason, type, action and message (null: an unknown type). */
function describeEvent(event: StoredEvent): { reason: string; type: 'Warning' | 'Normal'; action: string; message: string } | null {
  const dot = event.type.lastIndexOf('.');
  const outcome = event.type.slice(dot + 1) as HealthOutcome;
  if (event.type.slice(0, dot) === HEALTH_EVENT_KIND && HEALTH_OUTCOMES.includes(outcome)) {
    return { ...KUBE_HEALTH_REASONS[outcome], action: 'Health', message: kubeHealthMessage(outcome, event.data) };
  }
  const parsed = parseType(event.type);
  if (!parsed) return null;
  return {
    reason: KUBE_EVENT_REASONS[parsed.kind][parsed.outcome],
    type: parsed.outcome === 'failed' ? 'Warning' : 'Normal',
    action: NOUNS[parsed.kind].replace(/ /g, ''),
    message: kubeEventMessage(parsed.kind, parsed.outcome, event.data),
  };
}

/** metav1.Time is whole seconds. */
const seconds = (iso: string) => iso.replace(/\.\d+Z$/, 'Z');

/** The Events one outbox event means: one per workload of its deployment (none for an unknown type). */
export function kubeEventsFor(event: StoredEvent, workloads: readonly Workload[], reportingInstance: string): KubeObject[] {
  const described = describeEvent(event);
  if (!described) return [];
  const { reason, type, action, message } = described;
  const at = seconds(event.occurredAt);
  return workloads.map((workload) => {
    const hash = createHash('sha1').update(`${event.id}\0${workload.apiVersion}\0${workload.kind}\0${workload.name}`).digest('hex').slice(0, 16);
    const namespace = workload.namespace ?? 'default';
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        // kubectl's own convention: <object>.<unique suffix>; DNS subdomain, at most 253
        name: `${workload.name.slice(0, 236)}.${hash}`,
        namespace,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [DEPLOYMENT_LABEL]: event.data.deployment_id },
        annotations: { 'keelson.dev/event-id': event.id },
      },
      involvedObject: {
        apiVersion: workload.apiVersion,
        kind: workload.kind,
        name: workload.name,
        namespace,
        ...(workload.uid ? { uid: workload.uid } : {}),
      },
      reason,
      message,
      type,
      action,
      source: { component: REPORTING_COMPONENT },
      reportingComponent: REPORTING_COMPONENT,
      reportingInstance: reportingInstance.slice(0, 128),
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    } as KubeObject;
  });
}

/** What the deliverer needs of the Kubernetes client (KubeClient offers both). */
export interface KubeEventTarget {
  workloads(deploymentId: string, options?: { signal?: AbortSignal }): Promise<Workload[]>;
  recordEvent(event: KubeObject, options?: { signal?: AbortSignal }): Promise<'created' | 'exists'>;
}

export interface DeliveryResult {
  readonly ok: boolean;
  readonly statusCode: number | null;
  readonly error: string | null;
  readonly durationMs: number;
}

/** A deliverer for the dispatcher: never throws; the error is a sentence for the delivery row. */
export type Deliverer = (event: StoredEvent, timeoutMs: number) => Promise<DeliveryResult>;

export function kubernetesEventsDeliverer(deps: { kube: KubeEventTarget; reportingInstance: string }): Deliverer {
  return async (event, timeoutMs) => {
    const started = performance.now();
    const took = () => Math.round(performance.now() - started);
    try {
      const signal = AbortSignal.timeout(timeoutMs);
      // a deployment whose workloads are gone (or not applied yet) has nothing to attach to
      const workloads = await deps.kube.workloads(event.data.deployment_id, { signal });
      for (const object of kubeEventsFor(event, workloads, deps.reportingInstance)) await deps.kube.recordEvent(object, { signal });
      return { ok: true, statusCode: null, error: null, durationMs: took() };
    } catch (error) {
      return { ok: false, statusCode: null, error: redactSecrets(errorMessage(error)), durationMs: took() };
    }
  };
}

/** The sink `keelson serve` keeps: every event, every project (an admin narrows or disables it). */
export const BUILTIN_KUBE_EVENTS_SINK = { name: 'kubernetes-events', kind: 'kubernetes-events', url: 'https://kubernetes.default.svc' } as const;

/**
 * Creates the built-in sink when no sink of its name exists (each start: a replica racing
 * another is a no-op). Disabling it sticks; deleting it brings it back at the next start.
 */
export async function ensureKubeEventsSink(db: CommonQueryMethods): Promise<boolean> {
  const { name, kind, url } = BUILTIN_KUBE_EVENTS_SINK;
  const created = await db.query(sql.unsafe`
    insert into notification_sinks (name, kind, url) values (${name}, ${kind}, ${url}) on conflict (name) do nothing`);
  return created.rowCount > 0;
}
