// Projection: what an actor's new snapshot means for the journal. Pure — no I/O, no clock — so
// every rule (which changes are journaled, what counts as a transition, when observed_generation
// moves, when a completed action is recorded) is unit-tested on its own (test/runtime/projection.test.ts).
import { createHash } from 'node:crypto';
import { topLevelState, type Action, type Completed, type Deployed, type DeploymentSnapshot } from '../../machines/deployment.machine.ts';
import type { CurrentStatus } from '../db/rows.ts';

/**
 * At rest: no action in flight. `stopped.scaling` is not (the stop is under way), although its
 * top-level state, which current_status mirrors, is `stopped`.
 */
export function isAtRest(path: string): boolean {
  return path === 'idle' || path === 'failed' || path.startsWith('failed.') || path === 'deleted' || path === 'stopped.idle' || path === 'healthy' || path.startsWith('healthy.');
}

export function statePath(value: StateValue | unknown): string {
  if (typeof value === 'string') return value;
  const [key, child] = Object.entries(value as Record<string, unknown>)[0] ?? ['idle', undefined];
  return child === undefined ? key : `${key}.${statePath(child)}`;
}

/**
 * Healthy deployments move between `healthy.idle` and `healthy.checking` (drift checks) all
 * the time; those moves are not journaled: restoring into `healthy.idle` re-runs a due check.
 */
export function journaledState(path: string): string {
  if (path.startsWith('healthy')) return 'healthy';
  // an action's failure journals as before machine version 4 made `failed` compound;
  // `failed.degraded` (a healthy release degraded in place) is a state of its own
  if (path.startsWith('failed.degraded')) return 'failed.degraded';
  return path === 'failed.idle' ? 'failed' : path;
}

/** The action in flight, as the outbox names it (src/notify/events.ts). */
export interface ActionRef {
  readonly actionId: string;
  readonly action: Action;
  readonly generation: number;
  /** empty for a rollback until its target is found */
  readonly imageRef: string;
  readonly triggeredBy: string;
}

/** What a snapshot's context must offer for the projection (a subset of the machine's context). */
export interface ProjectedContext {
  readonly work?: { readonly generation: number; readonly actionId?: string; readonly action?: Action; readonly imageRef?: string; readonly triggeredBy?: string } | null;
  readonly desired?: { readonly generation: number } | null;
  readonly observedGeneration: number;
  readonly completed?: Completed | null;
  readonly deployed: Deployed | null;
  readonly lastError: string | null;
  readonly driftCheckAt?: number | null;
}

/** A state value as xstate gives it: `'idle'`, `{ syncing: { fetching: 'running' } }`, … */
export type StateValue = string | { readonly [key: string]: StateValue };

export interface ProjectedSnapshot {
  readonly value: StateValue;
  readonly context: ProjectedContext;
}

/** A digest, not the JSON itself: 10,000 hosted actors would otherwise keep 10,000 copies. */
export function changeKey(snapshot: ProjectedSnapshot): string {
  const json = JSON.stringify({ s: journaledState(statePath(snapshot.value)), c: { ...snapshot.context, driftCheckAt: null } });
  return createHash('sha1').update(json).digest('base64');
}

/**
 * Whether two contexts have the same changeKey without hashing either: the same fields in the
 * same order, each the same value or the same object (a context is immutable: `assign` makes a
 * new object and keeps the fields it does not change), ignoring `driftCheckAt`. False when
 * unsure, which only costs the hash.
 */
function sameKeyedContext(a: ProjectedContext, b: ProjectedContext | null): boolean {
  if (b === null) return false;
  if (a === b) return true;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  for (let i = 0; i < keysA.length; i++) {
    const key = keysA[i] as keyof ProjectedContext;
    if (key !== keysB[i]) return false;
    if (key !== 'driftCheckAt' && a[key] !== b[key]) return false;
  }
  return true;
}

/** What the journal already holds for one actor (what the next entry is compared with). */
export interface Journaled {
  readonly seq: number;
  readonly key: string;
  readonly state: string | null;
  readonly completedId: string | null;
  /** the action in flight at the last entry (its start was journaled with it) */
  readonly work: ActionRef | null;
  /**
   * The last context `key` was found to hold for. A drift check (healthy.idle → checking →
   * idle, once a minute for every healthy actor) changes nothing of the context but
   * driftCheckAt; comparing fields with this one spares hashing the whole context twice per
   * check, the largest cost of an idle host. It shares its fields with the actor's current
   * context, so keeping it costs no memory to speak of.
   */
  readonly keyedContext: ProjectedContext | null;
}

function actionRef(work: ProjectedContext['work']): ActionRef | null {
  if (!work?.actionId || !work.action) return null;
  return { actionId: work.actionId, action: work.action, generation: work.generation, imageRef: work.imageRef ?? '', triggeredBy: work.triggeredBy ?? '' };
}

export function journaledFrom(snapshot: ProjectedSnapshot | undefined, seq: number): Journaled {
  if (!snapshot) return { seq, key: '', state: null, completedId: null, work: null, keyedContext: null };
  return {
    seq,
    key: changeKey(snapshot),
    state: journaledState(statePath(snapshot.value)),
    completedId: snapshot.context.completed?.actionId ?? null,
    work: actionRef(snapshot.context.work),
    keyedContext: snapshot.context,
  };
}

/** The part of a journal entry the projection decides (the runtime adds identity, epoch and the persisted snapshot). */
export interface Projection {
  readonly seq: number;
  readonly state: string;
  readonly status: CurrentStatus;
  readonly transition: { readonly from: string | null; readonly to: string; readonly event: string } | null;
  readonly generation: number;
  readonly observedGeneration: number;
  readonly completed: Completed | null;
  readonly deployed: Deployed | null;
  readonly lastError: string | null;
  /** an action that began with this change (its `*.started` event) */
  readonly started: ActionRef | null;
  /** the action in flight before, gone with this change without a record (cut short before its apply) */
  readonly abandoned: ActionRef | null;
  /** the actor left rest with this change (a wake-up's latency ends here) */
  readonly leavesRest: boolean;
  readonly atRest: boolean;
}

/**
 * Projects a new snapshot against what is journaled. `entry` is null when nothing worth
 * journaling changed (a TICK, a drift check); `journaled` is what the journal holds afterwards.
 */
export function project(journaled: Journaled, snapshot: ProjectedSnapshot, eventType: string): { entry: Projection | null; journaled: Journaled; atRest: boolean } {
  const path = statePath(snapshot.value);
  const atRest = isAtRest(path);
  const state = journaledState(path);
  // the same journaled state and the same context fields: the same key, unhashed
  if (state === journaled.state && sameKeyedContext(snapshot.context, journaled.keyedContext)) return { entry: null, journaled, atRest };
  const key = changeKey(snapshot);
  if (key === journaled.key) return { entry: null, journaled: { ...journaled, keyedContext: snapshot.context }, atRest };
  const transition = state !== journaled.state ? { from: journaled.state, to: state, event: eventType } : null;
  const { context } = snapshot;
  const completed = context.completed && context.completed.actionId !== journaled.completedId ? context.completed : null;
  const seq = journaled.seq + 1;
  const work = actionRef(context.work);
  const started = work && work.actionId !== journaled.work?.actionId ? work : null;
  const previous = journaled.work;
  const abandoned =
    previous && previous.actionId !== work?.actionId && context.completed?.actionId !== previous.actionId ? previous : null;
  const entry: Projection = {
    seq,
    state: path,
    status: topLevelState(snapshot.value as DeploymentSnapshot['value']) as CurrentStatus,
    transition,
    generation: context.work?.generation ?? context.desired?.generation ?? context.observedGeneration,
    // observed_generation = generation tells pipelines the newest desired state is fully acted
    // on (succeeded or failed): it moves only when the actor comes to rest
    observedGeneration: atRest ? context.observedGeneration : 0,
    completed,
    deployed: context.deployed,
    lastError: context.lastError,
    started,
    abandoned,
    leavesRest: transition !== null && isAtRest(transition.from ?? 'idle') && !atRest,
    atRest,
  };
  return { entry, journaled: { seq, key, state, completedId: completed?.actionId ?? journaled.completedId, work, keyedContext: context }, atRest };
}
