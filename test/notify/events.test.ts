// eventsFor: a journal entry → its outbox events (pure, table-tested), and the projection's
// started/abandoned fields it is derived from.
import { describe, expect, it } from 'vitest';
import type { Completed } from '../../machines/deployment.machine.ts';
import { eventId, eventsFor, healthEventId, type EventSource } from '../../src/notify/events.ts';
import { journaledFrom, project, type ActionRef, type ProjectedSnapshot } from '../../src/runtime/projection.ts';

const D = '6f1c1f0e-9c55-4c1e-8f59-2d7c1a0b7e11';
const ref = (actionId: string, action: ActionRef['action'], triggeredBy = 'desired-state', imageRef = 'reg/shop:2'): ActionRef => ({
  actionId,
  action,
  generation: Number(actionId.split('-')[0]),
  imageRef,
  triggeredBy,
});
const done = (actionId: string, action: Completed['action'], status: Completed['status'], extra: Partial<Completed> = {}): Completed => ({
  actionId,
  action,
  status,
  imageRef: 'reg/shop:2',
  sha: 'abc',
  generation: Number(actionId.split('-')[0]),
  phases: [
    { name: 'sync', started_at: '2026-01-01T00:00:00.000Z', finished_at: '2026-01-01T00:00:01.000Z', duration_ms: 1000, detail: null, error: null },
    { name: 'verify', started_at: '2026-01-01T00:00:02.000Z', finished_at: '2026-01-01T00:00:05.500Z', duration_ms: 3500, detail: null, error: null },
  ],
  error: status === 'failed' ? 'verify failed: https://user:hunter2@git.example/x' : null,
  triggeredBy: 'desired-state',
  writeBack: false,
  valuesHash: null,
  valuesRedacted: null,
  valuesOverride: null,
  inventory: null,
  ...extra,
});

const cases: Array<{ name: string; entry: Omit<EventSource, 'deploymentId'>; types: string[] }> = [
  { name: 'no action change: nothing', entry: { completed: null }, types: [] },
  { name: 'a deploy starts', entry: { started: ref('1-1-deploy', 'deploy'), completed: null }, types: ['deploy.started'] },
  { name: 'a deploy succeeds', entry: { completed: done('1-1-deploy', 'deploy', 'succeeded') }, types: ['deploy.succeeded'] },
  { name: 'a deploy fails', entry: { completed: done('1-1-deploy', 'deploy', 'failed') }, types: ['deploy.failed'] },
  {
    name: 'a failed deploy starts an auto-rollback: the failure first',
    entry: { completed: done('2-2-deploy', 'deploy', 'failed'), started: ref('2-3-auto-rollback', 'auto-rollback', 'auto-rollback of reg/shop:2', '') },
    types: ['deploy.failed', 'rollback.started'],
  },
  { name: 'an auto-rollback succeeds', entry: { completed: done('2-3-auto-rollback', 'auto-rollback', 'succeeded') }, types: ['rollback.succeeded'] },
  {
    name: 'a deploy applied but cut short by a stop: superseded, then the stop',
    entry: { completed: done('3-4-deploy', 'deploy', 'superseded'), started: ref('4-5-stop', 'stop') },
    types: ['deploy.superseded', 'stop.started'],
  },
  {
    name: 'a deploy cut short before its apply (no record): superseded from the projection',
    entry: { abandoned: ref('3-4-deploy', 'deploy'), started: ref('4-5-deploy', 'deploy'), completed: null },
    types: ['deploy.superseded', 'deploy.started'],
  },
  { name: 'a stop succeeds', entry: { completed: done('5-6-stop', 'stop', 'succeeded') }, types: ['stop.succeeded'] },
  { name: 'a resume starts', entry: { started: ref('6-7-resume', 'resume'), completed: null }, types: ['resume.started'] },
  { name: 'a rollback fails', entry: { completed: done('7-8-rollback', 'rollback', 'failed') }, types: ['rollback.failed'] },
  { name: 'a drift repair starts', entry: { started: ref('7-9-deploy', 'deploy', 'drift: image changed'), completed: null }, types: ['drift-repair.started'] },
  {
    name: 'a drift repair succeeds',
    entry: { completed: done('7-9-deploy', 'deploy', 'succeeded', { triggeredBy: 'drift: image changed' }) },
    types: ['drift-repair.succeeded'],
  },
  // live health: derived from the journal's transition (journaled states, projection.ts)
  { name: 'a healthy release degrades in place', entry: { completed: null, seq: 7, transition: { from: 'healthy', to: 'failed.degraded' } }, types: ['health.degraded'] },
  { name: 'a degraded release recovers', entry: { completed: null, seq: 8, transition: { from: 'failed.degraded', to: 'healthy' } }, types: ['health.recovered'] },
  { name: 'degraded, then an auto-rollback: its start only', entry: { started: ref('2-9-auto-rollback', 'auto-rollback', 'auto-rollback of reg/shop:2: degraded for 120 s', ''), completed: null, seq: 9, transition: { from: 'failed.degraded', to: 'rolling-back' } }, types: ['rollback.started'] },
  { name: 'degraded, then a drift repair: its start only', entry: { started: ref('2-9-deploy', 'deploy', 'drift: image changed'), completed: null, seq: 9, transition: { from: 'failed.degraded', to: 'syncing.fetching.running' } }, types: ['drift-repair.started'] },
  { name: 'an action failing is not a degradation', entry: { completed: done('1-1-deploy', 'deploy', 'failed'), seq: 5, transition: { from: 'verifying.running', to: 'failed' } }, types: ['deploy.failed'] },
  { name: 'a drift repair succeeding is not a recovery', entry: { completed: done('7-9-deploy', 'deploy', 'succeeded', { triggeredBy: 'drift: image changed' }), seq: 12, transition: { from: 'verifying.running', to: 'healthy' } }, types: ['drift-repair.succeeded'] },
  { name: 'still degraded (another reason): no state change, no event', entry: { completed: null, seq: 9, transition: null }, types: [] },
  { name: 'a transition without its seq yields no health event', entry: { completed: null, transition: { from: 'healthy', to: 'failed.degraded' } }, types: [] },
];

describe('eventsFor', () => {
  it.each(cases)('$name', ({ entry, types }) => {
    const events = eventsFor({ deploymentId: D, ...entry });
    expect(events.map((e) => e.type)).toEqual(types);
    // ids are stable: the same entry again (a restore re-journals it) gives the same ids
    expect(eventsFor({ deploymentId: D, ...entry }).map((e) => e.id)).toEqual(events.map((e) => e.id));
    for (const event of events) expect(event.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('start and end of one action, and of two deployments, have distinct ids', () => {
    const ids = new Set([eventId(D, '1-1-deploy', 'start'), eventId(D, '1-1-deploy', 'end'), eventId('other', '1-1-deploy', 'start'), eventId(D, '2-2-deploy', 'start')]);
    expect(ids.size).toBe(4);
  });

  it('an end carries outcome, duration and a redacted error; automatic marks an auto-rollback', () => {
    const [failed, rollback] = eventsFor({
      deploymentId: D,
      completed: done('2-2-deploy', 'deploy', 'failed'),
      started: ref('2-3-auto-rollback', 'auto-rollback', 'auto-rollback of reg/shop:2', ''),
    });
    expect(failed?.data).toMatchObject({ outcome: 'failed', duration_ms: 5500, image_ref: 'reg/shop:2', sha: 'abc', automatic: false });
    expect(failed?.data.error).toBe('verify failed: https://user:***@git.example/x');
    expect(rollback?.data).toMatchObject({ outcome: 'started', automatic: true, image_ref: null, action: 'auto-rollback' });
  });
});

describe('health events', () => {
  const degraded: EventSource = {
    deploymentId: D,
    completed: null,
    seq: 7,
    generation: 3,
    transition: { from: 'healthy', to: 'failed.degraded' },
    lastError: 'degraded: Deployment shop-prod/shop: pod shop-1: container web is waiting: CrashLoopBackOff (image https://user:hunter2@reg.example/shop:3)',
    deployed: { imageRef: 'reg.example/shop:3', sha: 'abc' },
  };

  it('degraded carries what runs and the redacted sentence; no action; id from (deployment, seq)', () => {
    const [event] = eventsFor(degraded);
    expect(event).toEqual({
      id: healthEventId(D, 7),
      type: 'health.degraded',
      actionId: 'health-7',
      data: {
        deployment_id: D, action: null, action_id: null, automatic: false, outcome: 'degraded', image_ref: 'reg.example/shop:3', sha: 'abc',
        generation: 3, triggered_by: 'live-health',
        error: 'degraded: Deployment shop-prod/shop: pod shop-1: container web is waiting: CrashLoopBackOff (image https://user:***@reg.example/shop:3)',
        started_at: null, finished_at: null, duration_ms: null,
      },
    });
  });

  it('recovered has no error; each seq (and deployment) has its own id, never an action event\'s', () => {
    const [event] = eventsFor({ ...degraded, seq: 8, lastError: null, transition: { from: 'failed.degraded', to: 'healthy' } });
    expect(event?.data).toMatchObject({ outcome: 'recovered', error: null, image_ref: 'reg.example/shop:3' });
    const ids = new Set([healthEventId(D, 7), healthEventId(D, 8), healthEventId('other', 7), eventId(D, '7', 'start'), eventId(D, '7', 'end')]);
    expect(ids.size).toBe(5);
  });
});

describe('projection: started and abandoned', () => {
  const snap = (value: ProjectedSnapshot['value'], work: ProjectedSnapshot['context']['work'], completed: Completed | null = null): ProjectedSnapshot => ({
    value,
    context: { observedGeneration: 1, deployed: null, lastError: null, work, completed },
  });
  const w = (actionId: string, action: ActionRef['action']) => ({ generation: Number(actionId.split('-')[0]), actionId, action, imageRef: 'reg/shop:2', triggeredBy: 'desired-state' });

  it('reports a new action once, an action replaced without a record as abandoned, and nothing for a completed one', () => {
    let journaled = journaledFrom(snap('idle', null), 1);
    const first = project(journaled, snap({ syncing: { fetching: 'running' } }, w('2-1-deploy', 'deploy')), 'DESIRED_CHANGED');
    expect(first.entry).toMatchObject({ started: { actionId: '2-1-deploy', action: 'deploy' }, abandoned: null });
    journaled = first.journaled;
    const next = project(journaled, snap({ syncing: { rendering: 'running' } }, w('2-1-deploy', 'deploy')), 'done');
    expect(next.entry).toMatchObject({ started: null, abandoned: null });
    journaled = next.journaled;
    const replaced = project(journaled, snap({ syncing: { fetching: 'running' } }, w('3-2-deploy', 'deploy')), 'DESIRED_CHANGED');
    expect(replaced.entry).toMatchObject({ started: { actionId: '3-2-deploy' }, abandoned: { actionId: '2-1-deploy' } });
    journaled = replaced.journaled;
    const end = project(journaled, snap('healthy', null, done('3-2-deploy', 'deploy', 'succeeded')), 'done');
    expect(end.entry).toMatchObject({ started: null, abandoned: null, completed: { actionId: '3-2-deploy' } });
    // restored mid-action: the start is not reported again
    const restored = journaledFrom(snap({ applying: 'running' }, w('4-3-deploy', 'deploy')), 9);
    expect(project(restored, snap({ verifying: 'running' }, w('4-3-deploy', 'deploy')), 'done').entry?.started).toBeNull();
  });
});
