// What became of the action a generation asked for: pure, so every case (pending, running from
// the snapshot, done from history, cut short, settled without an action) is table-tested
// (test/actions/status.test.ts). The API serves it (GET …/actions/:generation) and `keelson wait`
// follows it; a row written by SQL is followed the same way, by its generation.
import type { Action } from '../../machines/deployment.machine.ts';
import type { CurrentStatus, DesiredStatus, HistoryPhase, HistoryRow } from '../db/rows.ts';

export const ACTION_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'superseded'] as const;
export type ActionStatus = (typeof ACTION_STATUSES)[number];
/** Statuses after which nothing about the action changes any more. */
export const FINAL_ACTION_STATUSES: ReadonlySet<ActionStatus> = new Set(['succeeded', 'failed', 'superseded']);

/** The row's columns the answer depends on. */
export interface ActionRowInput {
  readonly generation: number;
  readonly observed_generation: number;
  readonly desired_status: DesiredStatus;
  readonly current_status: CurrentStatus;
  readonly image_ref: string;
  readonly last_error: string | null;
}

/** The action in flight in the persisted snapshot (its context's `work`), if any. */
export interface WorkInput {
  readonly actionId: string;
  readonly action: Action;
  readonly generation: number;
  readonly imageRef: string;
  readonly phases: readonly HistoryPhase[];
}

export interface ActionInputs {
  readonly generation: number;
  readonly row: ActionRowInput;
  /** history rows of this generation, oldest first */
  readonly history: readonly HistoryRow[];
  /** the persisted snapshot: its state path and the work in flight */
  readonly snapshot: { readonly state: string; readonly work: WorkInput | null } | null;
}

export interface ActionView {
  readonly generation: number;
  readonly action: Action;
  /** null until the actor has started the action */
  readonly action_id: string | null;
  readonly status: ActionStatus;
  readonly image_ref: string | null;
  /** the actor's state while the action runs (syncing.fetching, verifying, …), else null */
  readonly state: string | null;
  readonly phases: readonly HistoryPhase[];
  readonly error: string | null;
  /** a failed deploy that auto_rollback undid: the rollback's own outcome */
  readonly auto_rollback: { readonly status: 'succeeded' | 'failed' | 'superseded'; readonly image_ref: string; readonly error: string | null } | null;
  /** the newest generation of the row when this one was superseded */
  readonly superseded_by: number | null;
}

/**
 * The action a row's desired state starts, as the machine chooses it (actionFor in
 * machines/deployment.machine.ts), predicted from the row before the actor has picked it up.
 */
export function expectedAction(row: Pick<ActionRowInput, 'desired_status' | 'current_status'>): Action {
  if (row.desired_status === 'deleted') return 'teardown';
  if (row.desired_status === 'stopped') return 'stop';
  if (row.desired_status === 'rollback') return 'rollback';
  return row.current_status === 'stopped' ? 'resume' : 'deploy';
}

/** null: the row has no such generation (yet). */
export function resolveAction(input: ActionInputs): ActionView | null {
  const { generation, row, history, snapshot } = input;
  if (generation < 1 || generation > row.generation) return null;
  const base = { generation, state: null, auto_rollback: null, superseded_by: null } as const;

  // done: the first record of the generation that is not the auto-rollback it may have caused
  const record = history.find((h) => h.action !== 'auto-rollback') ?? history[0];
  if (record) {
    const rollback = record.action === 'auto-rollback' ? undefined : history.find((h) => h.action === 'auto-rollback');
    return {
      ...base,
      action: record.action,
      action_id: record.action_id,
      status: record.status,
      image_ref: record.image_ref || null,
      phases: record.phases,
      error: record.error,
      auto_rollback: rollback ? { status: rollback.status, image_ref: rollback.image_ref, error: rollback.error } : null,
      superseded_by: record.status === 'superseded' && row.generation > generation ? row.generation : null,
    };
  }

  const work = snapshot?.work;
  if (work && work.generation === generation) {
    return {
      ...base,
      action: work.action,
      action_id: work.actionId,
      status: 'running',
      image_ref: work.imageRef || null,
      state: snapshot.state,
      phases: work.phases,
      error: null,
    };
  }

  const predicted = { ...base, action: expectedAction(row), action_id: null, image_ref: null, phases: [] };
  if (row.generation > generation) {
    // a newer desired state arrived before this one was acted on (or cut it short before its
    // apply, which the machine does not record): the newer generation is what to follow
    return {
      ...predicted,
      status: 'superseded',
      error: `superseded by generation ${row.generation} before anything was applied`,
      superseded_by: row.generation,
    };
  }
  if (row.observed_generation >= generation) {
    // at rest on this generation without a record: the change needed no action (auto_rollback
    // toggled), or the actor ended failed before it could start one
    const failed = row.current_status === 'failed';
    return { ...predicted, image_ref: row.image_ref, status: failed ? 'failed' : 'succeeded', error: failed ? row.last_error : null };
  }
  return { ...predicted, image_ref: row.image_ref, status: 'pending', error: null };
}
