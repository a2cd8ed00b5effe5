// The projection (snapshot → journal entry) is pure: table-driven, no database.
import { describe, expect, it } from 'vitest';
import type { Completed } from '../../machines/deployment.machine.ts';
import { changeKey, isAtRest, journaledFrom, journaledState, project, statePath, type ProjectedSnapshot, type StateValue } from '../../src/runtime/projection.ts';

const completed = (actionId: string): Completed => ({
  actionId,
  action: 'deploy',
  status: 'succeeded',
  imageRef: 'registry.example/shop:1',
  sha: null,
  generation: 2,
  phases: [],
  error: null,
  triggeredBy: 'keelson',
  writeBack: false,
  valuesHash: null,
  valuesRedacted: null,
  valuesOverride: null,
  inventory: null,
});

function snap(value: StateValue, context: Partial<ProjectedSnapshot['context']> = {}): ProjectedSnapshot {
  return { value, context: { observedGeneration: 1, deployed: null, lastError: null, work: null, desired: { generation: 2 }, completed: null, ...context } };
}

describe('statePath, journaledState, isAtRest', () => {
  it.each([
    ['idle', 'idle', 'idle', true],
    [{ syncing: { fetching: 'running' } }, 'syncing.fetching.running', 'syncing.fetching.running', false],
    [{ healthy: 'checking' }, 'healthy.checking', 'healthy', true],
    [{ stopped: 'scaling' }, 'stopped.scaling', 'stopped.scaling', false],
    [{ stopped: 'idle' }, 'stopped.idle', 'stopped.idle', true],
    ['failed', 'failed', 'failed', true],
    [{ failed: 'idle' }, 'failed.idle', 'failed', true],
    [{ failed: { degraded: 'checking' } }, 'failed.degraded.checking', 'failed.degraded', true],
  ] as const)('%j → %s (journaled %s, at rest %s)', (value, path, journaled, rest) => {
    expect(statePath(value)).toBe(path);
    expect(journaledState(path)).toBe(journaled);
    expect(isAtRest(path)).toBe(rest);
  });
});

describe('project', () => {
  const cases: Array<{
    name: string;
    before: ProjectedSnapshot | undefined;
    seq: number;
    next: ProjectedSnapshot;
    event: string;
    expected: null | { seq: number; state: string; status: string; transition: { from: string | null; to: string; event: string } | null; observedGeneration: number; completed: string | null; leavesRest: boolean; generation: number };
  }> = [
    {
      name: 'a first snapshot is a transition from nothing',
      before: undefined,
      seq: 0,
      next: snap('idle'),
      event: 'xstate.init',
      expected: { seq: 1, state: 'idle', status: 'idle', transition: { from: null, to: 'idle', event: 'xstate.init' }, observedGeneration: 1, completed: null, leavesRest: false, generation: 2 },
    },
    {
      name: 'leaving rest: observed_generation is not moved (0) and the wake-up latency ends',
      before: snap('idle'),
      seq: 1,
      next: snap({ syncing: { fetching: 'running' } }, { work: { generation: 3 } }),
      event: 'DESIRED_CHANGED',
      expected: { seq: 2, state: 'syncing.fetching.running', status: 'syncing', transition: { from: 'idle', to: 'syncing.fetching.running', event: 'DESIRED_CHANGED' }, observedGeneration: 0, completed: null, leavesRest: true, generation: 3 },
    },
    {
      name: 'healthy.idle → healthy.checking is no change',
      before: snap({ healthy: 'idle' }),
      seq: 6,
      next: snap({ healthy: 'checking' }),
      event: 'TICK',
      expected: null,
    },
    {
      name: 'a drift-check time alone is no change',
      before: snap({ healthy: 'idle' }, { driftCheckAt: 1 }),
      seq: 6,
      next: snap({ healthy: 'idle' }, { driftCheckAt: 2 }),
      event: 'TICK',
      expected: null,
    },
    {
      name: 'a context change in the same state is journaled without a transition',
      before: snap({ applying: 'retrying' }, { lastError: 'first' }),
      seq: 4,
      next: snap({ applying: 'retrying' }, { lastError: 'second' }),
      event: 'xstate.error.actor.apply',
      expected: { seq: 5, state: 'applying.retrying', status: 'applying', transition: null, observedGeneration: 0, completed: null, leavesRest: false, generation: 2 },
    },
    {
      name: 'coming to rest with a completed action records it once and moves observed_generation',
      before: snap({ verifying: 'running' }),
      seq: 5,
      next: snap({ healthy: 'idle' }, { observedGeneration: 2, completed: completed('2-1-deploy') }),
      event: 'xstate.done.actor.verify',
      expected: { seq: 6, state: 'healthy.idle', status: 'healthy', transition: { from: 'verifying.running', to: 'healthy', event: 'xstate.done.actor.verify' }, observedGeneration: 2, completed: '2-1-deploy', leavesRest: false, generation: 2 },
    },
    {
      name: 'a completed action already journaled (restored) is not recorded again',
      before: snap({ healthy: 'idle' }, { observedGeneration: 2, completed: completed('2-1-deploy') }),
      seq: 6,
      next: snap({ healthy: 'idle' }, { observedGeneration: 2, completed: completed('2-1-deploy'), lastError: 'drift noted' }),
      event: 'TICK',
      expected: { seq: 7, state: 'healthy.idle', status: 'healthy', transition: null, observedGeneration: 2, completed: null, leavesRest: false, generation: 2 },
    },
  ];

  it.each(cases)('$name', ({ before, seq, next, event, expected }) => {
    const journaled = journaledFrom(before, seq);
    const result = project(journaled, next, event);
    if (expected === null) {
      expect(result.entry).toBeNull();
      expect(result.journaled).toMatchObject({ seq: journaled.seq, key: journaled.key, state: journaled.state, work: journaled.work });
      expect(changeKey(next)).toBe(journaled.key);
      return;
    }
    expect(result.entry).toMatchObject({
      seq: expected.seq,
      state: expected.state,
      status: expected.status,
      transition: expected.transition,
      observedGeneration: expected.observedGeneration,
      leavesRest: expected.leavesRest,
      generation: expected.generation,
    });
    expect(result.entry?.completed?.actionId ?? null).toBe(expected.completed);
    expect(result.journaled.seq).toBe(expected.seq);
    expect(result.journaled.key).toBe(changeKey(next));
  });

  describe('the key without hashing (the drift check of every healthy actor, once a minute)', () => {
    const before = snap({ healthy: 'idle' }, { driftCheckAt: 1, deployed: { imageRef: 'shop:1' } as never, completed: completed('2-1-deploy') });

    it('a context whose fields are the same objects but for driftCheckAt is no change, and keeps the record as it is', () => {
      const journaled = journaledFrom(before, 6);
      const checking = project(journaled, { value: { healthy: 'checking' }, context: before.context }, 'TICK');
      expect(checking.entry).toBeNull();
      expect(checking.journaled).toBe(journaled);
      // what `scheduleDriftCheck` makes: a new context object sharing every other field
      const next = { value: { healthy: 'idle' }, context: { ...before.context, driftCheckAt: 60_001 } };
      const scheduled = project(checking.journaled, next, 'xstate.done.actor.checkDrift');
      expect(scheduled.entry).toBeNull();
      expect(scheduled.journaled).toBe(journaled);
      expect(changeKey(next)).toBe(journaled.key);
    });

    it('an equal field that is another object is hashed: no change, and the newer context is remembered', () => {
      const journaled = journaledFrom(before, 6);
      const restored = snap({ healthy: 'idle' }, { driftCheckAt: 1, deployed: { imageRef: 'shop:1' } as never, completed: completed('2-1-deploy') });
      const result = project(journaled, restored, 'TICK');
      expect(result.entry).toBeNull();
      expect(result.journaled.keyedContext).toBe(restored.context);
      // the next drift check of it is unhashed again
      expect(project(result.journaled, { value: { healthy: 'checking' }, context: restored.context }, 'TICK').journaled).toBe(result.journaled);
    });

    it.each([
      ['a changed field (same fields otherwise)', { ...before.context, lastError: 'drift noted' }, { healthy: 'idle' }],
      ['a field added', { ...before.context, extra: 1 }, { healthy: 'idle' }],
      ['the same fields in another state', before.context, { syncing: { fetching: 'running' } }],
    ] as const)('%s is journaled', (_name, context, value) => {
      const result = project(journaledFrom(before, 6), { value: value as StateValue, context: context as ProjectedSnapshot['context'] }, 'E');
      expect(result.entry?.seq).toBe(7);
      expect(result.journaled.keyedContext).toBe(context);
    });
  });

  it('numbers entries consecutively from the restored seq', () => {
    let journaled = journaledFrom(snap('idle'), 41);
    const states: StateValue[] = [{ syncing: { fetching: 'running' } }, { syncing: { rendering: 'running' } }, { applying: 'running' }];
    const seqs: number[] = [];
    for (const value of states) {
      const result = project(journaled, snap(value), 'E');
      seqs.push(result.entry?.seq ?? -1);
      journaled = result.journaled;
    }
    expect(seqs).toEqual([42, 43, 44]);
  });
});
