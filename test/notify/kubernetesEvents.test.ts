// The kubernetes-events sink's pure part: which Events an outbox event becomes.
import { describe, expect, it } from 'vitest';
import { kubeEventMessage, kubeEventsFor, KUBE_EVENT_REASONS, type Workload } from '../../src/notify/sinks/kubernetesEvents.ts';
import type { StoredEvent } from '../../src/notify/sinks/sink.ts';
import { EVENT_KINDS, EVENT_OUTCOMES } from '../../src/notify/events.ts';

const data = (over: Partial<StoredEvent['data']> = {}): StoredEvent['data'] => ({
  deployment_id: '0b6c1c3e-6a52-4d6b-9f55-0c1f3c6b2a10', action: 'deploy', action_id: '3-1-deploy', automatic: false, outcome: 'succeeded',
  image_ref: 'registry.example/web:3', sha: '0123456789abcdef0123', generation: 3, triggered_by: 'generation', error: null,
  started_at: '2026-01-01T00:00:00.000Z', finished_at: '2026-01-01T00:00:04.200Z', duration_ms: 4200,
  project: 'web', environment: 'prod', namespace: 'web-prod', ...over,
}) as StoredEvent['data'];
const event = (type: string, over: Partial<StoredEvent['data']> = {}): StoredEvent => ({
  id: '5f0c6a8e-1f2b-4c3d-9e8f-0a1b2c3d4e5f', type, project: 'web', environment: 'prod', occurredAt: '2026-01-01T00:00:04.321Z', data: data(over),
});
const web: Workload = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'web-prod', uid: 'uid-1' };
const db: Workload = { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', namespace: 'web-prod', uid: null };

describe('kubeEventsFor', () => {
  it('one Event per workload, on it, reported by keelson, with whole-second timestamps', () => {
    const events = kubeEventsFor(event('deploy.succeeded'), [web, db], 'instance-1');
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { namespace: 'web-prod', labels: { 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': data().deployment_id } },
      involvedObject: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'web-prod', uid: 'uid-1' },
      reason: 'DeploySucceeded',
      type: 'Normal',
      message: 'Deploy of registry.example/web:3 succeeded (generation 3, commit 0123456789ab) in 4.2 s.',
      source: { component: 'keelson' },
      reportingComponent: 'keelson',
      reportingInstance: 'instance-1',
      firstTimestamp: '2026-01-01T00:00:04Z',
      lastTimestamp: '2026-01-01T00:00:04Z',
      count: 1,
    });
    expect((events[1] as unknown as { involvedObject: object }).involvedObject).not.toHaveProperty('uid');
    // deterministic names (a retried delivery finds its Event), distinct per workload, DNS subdomains
    const names = events.map((e) => e.metadata.name);
    expect(kubeEventsFor(event('deploy.succeeded'), [web, db], 'other').map((e) => e.metadata.name)).toEqual(names);
    expect(new Set(names).size).toBe(2);
    for (const name of names) expect(name).toMatch(/^web\.[0-9a-f]{16}$/);
  });

  it.each([
    ['deploy.failed', { error: 'pod web-1: ImagePullBackOff' }, 'DeployFailed', 'Warning', 'Deploy of registry.example/web:3 failed (generation 3): pod web-1: ImagePullBackOff'],
    ['rollback.succeeded', { automatic: true, image_ref: 'registry.example/web:2' }, 'RolledBack', 'Normal', /^Automatic rollback of registry\.example\/web:2 succeeded/],
    ['stop.succeeded', { image_ref: null, sha: null, duration_ms: null }, 'Stopped', 'Normal', 'Stop (scale to zero) succeeded (generation 3).'],
    ['drift-repair.succeeded', {}, 'DriftRepaired', 'Normal', /^Drift repair of registry\.example\/web:3 succeeded/],
    ['deploy.started', { triggered_by: 'generation' }, 'DeployStarted', 'Normal', 'Deploy of registry.example/web:3 started (generation 3, triggered by generation).'],
    ['resume.superseded', { error: 'superseded by generation 4 (stop) before anything was applied' }, 'ResumeSuperseded', 'Normal', /was superseded \(generation 3\): superseded by generation 4/],
    // live health: not an action
    [
      'health.degraded',
      { action: null, action_id: null, outcome: 'degraded', triggered_by: 'live-health', duration_ms: null, error: 'degraded: Deployment web-prod/web: pod web-1: container web is waiting: CrashLoopBackOff' },
      'Degraded', 'Warning', 'Release registry.example/web:3 degraded (generation 3): degraded: Deployment web-prod/web: pod web-1: container web is waiting: CrashLoopBackOff',
    ],
    ['health.recovered', { action: null, action_id: null, outcome: 'recovered', triggered_by: 'live-health', duration_ms: null }, 'Recovered', 'Normal', 'Release registry.example/web:3 recovered (generation 3).'],
  ] as const)('%s → %s', (type, over, reason, kind, message) => {
    const [only] = kubeEventsFor(event(type, over), [web], 'i');
    expect(only).toMatchObject({ reason, type: kind });
    expect((only as unknown as { message: string }).message).toMatch(message);
  });

  it('redacts credentials and bounds the message; an unknown type or no workload gives no Event', () => {
    const message = kubeEventMessage('deploy', 'failed', data({ error: `git fetch https://bot:hunter2@git.example/ops.git failed ${'x'.repeat(2000)}` }));
    expect(message).not.toContain('hunter2');
    expect(message.length).toBeLessThanOrEqual(1024);
    expect(kubeEventsFor(event('deploy.exploded'), [web], 'i')).toEqual([]);
    expect(kubeEventsFor(event('health.exploded'), [web], 'i')).toEqual([]);
    expect(kubeEventsFor(event('health.degraded', { error: `https://bot:hunter2@reg.example ${'x'.repeat(2000)}` }), [web], 'i')[0]).toMatchObject({
      message: expect.not.stringContaining('hunter2'),
    });
    expect(kubeEventsFor(event('deploy.succeeded'), [], 'i')).toEqual([]);
  });

  it('has a reason for every kind and outcome, each a CamelCase word', () => {
    for (const kind of EVENT_KINDS) for (const outcome of EVENT_OUTCOMES) expect(KUBE_EVENT_REASONS[kind][outcome]).toMatch(/^[A-Z][A-Za-z]+$/);
  });
});
