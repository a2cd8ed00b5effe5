// What a journal entry means for the outbox. Pure — no I/O, no clock — and table-tested
// (test/notify/events.test.ts). Every action start and end becomes one event:
//   <kind>.started | <kind>.succeeded | <kind>.failed | <kind>.superseded
// kind: deploy, rollback (auto-rollback too, with data.automatic), stop, resume, drift-repair (a
// deploy the drift check started), teardown. The id is derived from (deployment, action id, start|end),
// so a re-journaled entry (after a restore) yields the same ids and the insert is a no-op.
// Live health is not an action: a healthy release degrading in place (entering `failed.degraded`)
// is `health.degraded`, recovering from it to `healthy` is `health.recovered`. Their id is derived
// from (deployment, journal seq): a seq is journaled once per deployment, so it cannot repeat.
import { createHash } from 'node:crypto';
import type { Action, Completed } from '../../machines/deployment.machine.ts';
import { redactSecrets } from '../api/redact.ts';
import type { ActionRef } from '../runtime/projection.ts';

export const EVENT_KINDS = ['deploy', 'rollback', 'stop', 'resume', 'drift-repair', 'teardown'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];
export const EVENT_OUTCOMES = ['started', 'succeeded', 'failed', 'superseded'] as const;
export type EventOutcome = (typeof EVENT_OUTCOMES)[number];
/** The action events: every kind with every outcome. */
export const ACTION_EVENT_TYPES: readonly string[] = EVENT_KINDS.flatMap((kind) => EVENT_OUTCOMES.map((outcome) => `${kind}.${outcome}`));
export const HEALTH_EVENT_KIND = 'health';
export const HEALTH_OUTCOMES = ['degraded', 'recovered'] as const;
export type HealthOutcome = (typeof HEALTH_OUTCOMES)[number];
export const HEALTH_EVENT_TYPES: readonly string[] = HEALTH_OUTCOMES.map((outcome) => `${HEALTH_EVENT_KIND}.${outcome}`);
/** Every event type the outbox writes (capabilities, sink filter validation). */
export const EVENT_TYPES: readonly string[] = [...ACTION_EVENT_TYPES, ...HEALTH_EVENT_TYPES];
/** What a sink filter may name as `<kind>.*`. */
export const EVENT_TYPE_KINDS: readonly string[] = [...EVENT_KINDS, HEALTH_EVENT_KIND];
/** The `action_id` column of a health event (not an action): `health-<journal seq>`. */
export const healthActionId = (seq: number) => `health-${seq}`;
/** The journal state of a healthy release degraded in place (src/runtime/projection.ts journaledState). */
const DEGRADED_STATE = 'failed.degraded';

/** The `data` of an action event (and of the CloudEvent a webhook receives); project and environment are added from the row. */
export interface ActionEventData {
  readonly deployment_id: string;
  readonly action: Action;
  readonly action_id: string;
  /** an auto-rollback (started by a failed verification, not by the desired state) */
  readonly automatic: boolean;
  readonly outcome: EventOutcome;
  /** null for a rollback whose target is not known yet */
  readonly image_ref: string | null;
  readonly sha: string | null;
  readonly generation: number;
  readonly triggered_by: string;
  readonly error: string | null;
  /** the action's first phase start and last phase end (ends only) */
  readonly started_at: string | null;
  readonly finished_at: string | null;
  readonly duration_ms: number | null;
}

/**
 * The `data` of a health event: the same fields, so a sink reads either alike. No action:
 * `action` and `action_id` are null, `triggered_by` is `live-health`; image_ref and sha are the
 * release that runs; error the degraded sentence (null on recovery); no timings.
 */
export interface HealthEventData {
  readonly deployment_id: string;
  readonly action: null;
  readonly action_id: null;
  readonly automatic: false;
  readonly outcome: HealthOutcome;
  readonly image_ref: string | null;
  readonly sha: string | null;
  readonly generation: number;
  readonly triggered_by: 'live-health';
  readonly error: string | null;
  readonly started_at: null;
  readonly finished_at: null;
  readonly duration_ms: null;
}

export type EventData = ActionEventData | HealthEventData;

export interface OutboxEvent {
  readonly id: string;
  readonly type: string;
  readonly actionId: string;
  readonly data: EventData;
}

type ActionOutboxEvent = OutboxEvent & { readonly data: ActionEventData };

export interface EventSource {
  readonly deploymentId: string;
  readonly started?: ActionRef | null | undefined;
  readonly abandoned?: ActionRef | null | undefined;
  readonly completed: Completed | null;
  /** the journal's state change, its seq, and what it records: health events are derived from them */
  readonly transition?: { readonly from: string | null; readonly to: string } | null | undefined;
  readonly seq?: number | undefined;
  readonly generation?: number | undefined;
  readonly lastError?: string | null | undefined;
  readonly deployed?: { readonly imageRef: string; readonly sha: string | null } | null | undefined;
}

export function kindOf(action: Action, triggeredBy: string): EventKind {
  if (action === 'auto-rollback') return 'rollback';
  if (action === 'deploy' && triggeredBy.startsWith('drift')) return 'drift-repair';
  return action;
}

/** A name-based (version 5 layout) UUID: the same name always gives the same id. */
export function eventId(deploymentId: string, actionId: string, edge: 'start' | 'end'): string {
  const hash = createHash('sha1').update(`keelson-event\0${deploymentId}\0${actionId}\0${edge}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** A health event's id: name-based on (deployment, journal seq), apart from action ids by its prefix. */
export function healthEventId(deploymentId: string, seq: number): string {
  return eventId(deploymentId, healthActionId(seq), 'start');
}

/** health.degraded entering `failed.degraded` from outside it; health.recovered leaving it for `healthy`. */
export function healthOutcome(transition: EventSource['transition']): HealthOutcome | null {
  if (!transition) return null;
  if (transition.to === DEGRADED_STATE && transition.from !== DEGRADED_STATE) return 'degraded';
  if (transition.from === DEGRADED_STATE && transition.to === 'healthy') return 'recovered';
  return null;
}

function healthEvent(entry: EventSource): OutboxEvent | null {
  const outcome = healthOutcome(entry.transition);
  if (outcome === null || entry.seq === undefined) return null;
  return {
    id: healthEventId(entry.deploymentId, entry.seq),
    type: `${HEALTH_EVENT_KIND}.${outcome}`,
    actionId: healthActionId(entry.seq),
    data: {
      deployment_id: entry.deploymentId,
      action: null,
      action_id: null,
      automatic: false,
      outcome,
      image_ref: entry.deployed?.imageRef || null,
      sha: entry.deployed?.sha ?? null,
      generation: entry.generation ?? 0,
      triggered_by: 'live-health',
      // the sentence names a pod and a reason; an image a SQL writer set may carry credentials
      error: outcome === 'degraded' && entry.lastError ? redactSecrets(entry.lastError) : null,
      started_at: null,
      finished_at: null,
      duration_ms: null,
    },
  };
}

function startEvent(deploymentId: string, work: ActionRef): ActionOutboxEvent {
  return {
    id: eventId(deploymentId, work.actionId, 'start'),
    type: `${kindOf(work.action, work.triggeredBy)}.started`,
    actionId: work.actionId,
    data: {
      deployment_id: deploymentId,
      action: work.action,
      action_id: work.actionId,
      automatic: work.action === 'auto-rollback',
      outcome: 'started',
      image_ref: work.imageRef || null,
      sha: null,
      generation: work.generation,
      triggered_by: work.triggeredBy,
      error: null,
      started_at: null,
      finished_at: null,
      duration_ms: null,
    },
  };
}

function endEvent(deploymentId: string, completed: Completed): OutboxEvent {
  const first = completed.phases[0]?.started_at ?? null;
  const last = completed.phases.at(-1)?.finished_at ?? null;
  const duration = first && last ? Math.max(0, Date.parse(last) - Date.parse(first)) : null;
  return {
    id: eventId(deploymentId, completed.actionId, 'end'),
    type: `${kindOf(completed.action, completed.triggeredBy)}.${completed.status}`,
    actionId: completed.actionId,
    data: {
      deployment_id: deploymentId,
      action: completed.action,
      action_id: completed.actionId,
      automatic: completed.action === 'auto-rollback',
      outcome: completed.status,
      image_ref: completed.imageRef || null,
      sha: completed.sha,
      generation: completed.generation,
      triggered_by: completed.triggeredBy,
      // a SQL writer's image or a git error may carry credentials
      error: completed.error === null ? null : redactSecrets(completed.error),
      started_at: first,
      finished_at: last,
      duration_ms: duration === null || Number.isNaN(duration) ? null : duration,
    },
  };
}

/** An action cut short before its apply: the machine records nothing, the outbox says superseded. */
function abandonedEvent(deploymentId: string, work: ActionRef, by: ActionRef | null | undefined): OutboxEvent {
  const start = startEvent(deploymentId, work);
  return {
    id: eventId(deploymentId, work.actionId, 'end'),
    type: `${kindOf(work.action, work.triggeredBy)}.superseded`,
    actionId: work.actionId,
    data: {
      ...start.data,
      outcome: 'superseded',
      error: by ? `superseded by generation ${by.generation} (${by.action}) before anything was applied` : 'superseded before anything was applied',
    },
  };
}

/**
 * The events of one journal entry, in the order they happened: ends of earlier actions first
 * (a cut-short or failed action, then what replaced it), then the start, then (never in
 * practice, but ordered if it were) the end of the action that started with this very entry.
 * A health change comes alone (no action starts or ends with it) and is listed last.
 */
export function eventsFor(entry: EventSource): OutboxEvent[] {
  const { deploymentId, started, abandoned, completed } = entry;
  const events: OutboxEvent[] = [];
  if (abandoned) events.push(abandonedEvent(deploymentId, abandoned, started));
  const endsStarted = completed !== null && started != null && completed.actionId === started.actionId;
  if (completed && !endsStarted) events.push(endEvent(deploymentId, completed));
  if (started) events.push(startEvent(deploymentId, started));
  if (completed && endsStarted) events.push(endEvent(deploymentId, completed));
  const health = healthEvent(entry);
  if (health) events.push(health);
  return events;
}
