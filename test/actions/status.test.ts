// resolveAction: what a generation's action is, case by case (pure: no database).
import { describe, expect, it } from 'vitest';
import { expectedAction, resolveAction, type ActionInputs } from '../../src/actions/status.ts';
import type { HistoryRow } from '../../src/db/rows.ts';

const row = { generation: 3, observed_generation: 2, desired_status: 'active', current_status: 'healthy', image_ref: 'x:3', last_error: null } as const;
const phase = (name: string, error: string | null = null) => ({ name, started_at: 't0', finished_at: 't1', duration_ms: 1, detail: null, error });
const record = (over: Partial<HistoryRow>): HistoryRow => ({
  id: 1, deployment_id: '00000000-0000-4000-8000-000000000000', action_id: '3-1-deploy', action: 'deploy', status: 'succeeded',
  image_ref: 'x:3', sha: 'abc', generation: 3, phases: [phase('sync'), phase('render'), phase('apply'), phase('verify')], error: null,
  triggered_by: 'generation', created_at: 't', ...over,
});
const work = { actionId: '3-1-deploy', action: 'deploy' as const, generation: 3, imageRef: 'x:3', phases: [phase('sync')] };
const input = (over: Partial<ActionInputs>): ActionInputs => ({ generation: 3, row, history: [], snapshot: null, ...over });

describe('resolveAction', () => {
  it.each([
    ['a generation the row does not have', input({ generation: 4 })],
    ['generation 0', input({ generation: 0 })],
  ])('%s → null', (_, given) => {
    expect(resolveAction(given)).toBeNull();
  });

  it.each([
    ['not picked up yet: pending, predicted action', input({}), { status: 'pending', action: 'deploy', action_id: null, phases: [] }],
    ['a snapshot still on the previous generation: pending', input({ snapshot: { state: 'healthy', work: { ...work, generation: 2 } } }), { status: 'pending' }],
    [
      'in the snapshot: running, with its phases and state',
      input({ snapshot: { state: 'rendering', work } }),
      { status: 'running', action: 'deploy', action_id: '3-1-deploy', state: 'rendering', phases: [phase('sync')] },
    ],
    ['recorded: the history status and phases', input({ history: [record({})] }), { status: 'succeeded', action_id: '3-1-deploy', phases: record({}).phases, error: null }],
    [
      'failed, then auto-rolled back: the deploy failed, the rollback is attached',
      input({ history: [record({ status: 'failed', error: 'boom' }), record({ id: 2, action: 'auto-rollback', action_id: '3-2-auto-rollback', image_ref: 'x:2' })] }),
      { status: 'failed', action: 'deploy', error: 'boom', auto_rollback: { status: 'succeeded', image_ref: 'x:2', error: null } },
    ],
    [
      'superseded after its apply (recorded)',
      input({ row: { ...row, generation: 4 }, history: [record({ status: 'superseded', error: 'cut short' })] }),
      { status: 'superseded', superseded_by: 4, error: 'cut short' },
    ],
    [
      'a newer generation and no record: superseded before anything was applied',
      input({ row: { ...row, generation: 5, observed_generation: 5 } }),
      { status: 'superseded', superseded_by: 5, error: 'superseded by generation 5 before anything was applied' },
    ],
    ['at rest on it without a record: succeeded (nothing to do)', input({ row: { ...row, observed_generation: 3 } }), { status: 'succeeded', error: null }],
    [
      'at rest failed on it without a record: failed with the row error',
      input({ row: { ...row, observed_generation: 3, current_status: 'failed', last_error: 'no ops repo' } }),
      { status: 'failed', error: 'no ops repo' },
    ],
  ])('%s', (_, given, expected) => {
    expect(resolveAction(given)).toMatchObject({ generation: 3, ...expected });
  });
});

describe('expectedAction', () => {
  it.each([
    [{ desired_status: 'stopped', current_status: 'healthy' }, 'stop'],
    [{ desired_status: 'rollback', current_status: 'failed' }, 'rollback'],
    [{ desired_status: 'active', current_status: 'stopped' }, 'resume'],
    [{ desired_status: 'active', current_status: 'healthy' }, 'deploy'],
    [{ desired_status: 'active', current_status: 'idle' }, 'deploy'],
  ] as const)('%o → %s', (given, action) => {
    expect(expectedAction(given)).toBe(action);
  });
});
