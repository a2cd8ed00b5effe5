// GET /api/capabilities: any valid token reads what this keelson offers and the limits in force.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };
import { startHarness, type Harness } from './harness.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    renderLimits: { timeoutMs: 7_000, maxHeapBytes: 64 * 1024 * 1024, maxObjects: 250, maxBytes: 2 * 1024 * 1024 },
    streamLimits: { perToken: 3, total: 42 },
    idempotencyTtlMs: 3_600_000,
    mode: { cluster: 'sim', database: 'embedded' },
  });
});

afterAll(async () => {
  await h.close();
});

describe('GET /api/capabilities', () => {
  it('any token reads it, even one that may only promote in one project; none gets 401', async () => {
    const promoteOnly = await h.token(['deploy:promote'], 'shop');
    const response = await h.request('GET', '/api/capabilities', { token: promoteOnly });
    expect(response.status).toBe(200);
    expect((await h.request('GET', '/api/capabilities')).status).toBe(401);
    expect((await h.request('GET', '/api/capabilities', { token: 'kls_unknown' })).status).toBe(401);
  });

  it('lists targets, renderers, sinks, actions and the limits in force', async () => {
    const token = await h.token(['deploy:read']);
    const { body } = await h.request('GET', '/api/capabilities', { token });
    expect(body).toMatchObject({
      version: pkg.version,
      machine_version: expect.stringMatching(/^\d+$/),
      targets: [{ name: 'kubernetes', apply: 'server-side-apply', cluster: 'sim', clusters: expect.arrayContaining(['kubeconfig', 'in-cluster', 'sim']) }],
      sinks: expect.arrayContaining(['webhook', 'slack', 'registry', 'kubernetes-events']),
      actions: ['deploy', 'rollback', 'stop', 'resume', 'auto-rollback', 'teardown'],
      action_statuses: ['pending', 'running', 'succeeded', 'failed', 'superseded'],
      event_types: expect.arrayContaining(['deploy.started', 'rollback.failed', 'drift-repair.succeeded', 'stop.superseded', 'teardown.succeeded', 'health.degraded', 'health.recovered']),
      limits: {
        render: { timeout_ms: 7_000, max_heap_bytes: 64 * 1024 * 1024, max_objects: 250, max_bytes: 2 * 1024 * 1024 },
        sse: { per_token: 3, total: 42, max_buffer_bytes: 1024 * 1024, heartbeat_ms: 15_000 },
        values_override: { max_depth: 32, max_bytes: 256 * 1024 },
        idempotency_ttl_ms: 3_600_000,
      },
    });
    expect(body.renderers.map((r: { name: string }) => r.name)).toEqual(['builtin', 'nunjucks']);
    // every feature names a route this server serves
    expect(body.features).toMatchObject({
      'action-tracking': true, 'deployment-events-sse': true, 'fleet-events-sse': true, rollback: true, teardown: true, notifications: true,
      'ops-repo-push-webhooks': true, 'project-policies': true, visualizer: true, file_repos: false,
    });
  });
});
