// eventsFor: a journal entry → its outbox events (pure, table-tested), and the projection's
// started/abandoned fields it is derived from.
import { describe, expect, it } from 'vitest';
import type { Completed } from '../../machines/deployment.machine.ts';
import { eventId, eventsFor, type EventSource } from '../../src/notify/events.ts';
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
