// GET /api/capabilities: what this keelson offers and the limits it enforces, so clients and
// pipelines adapt instead of guessing from a version number. Every list is read from the
// registry the code itself uses (sinks, renderers, actions, event kinds, permissions), every
// limit from the configuration in force; nothing here is a second copy that could drift.
import pkg from '../../package.json' with { type: 'json' };
import { MACHINE_VERSION } from '../../machines/deployment.machine.ts';
import { ACTION_STATUSES } from '../actions/status.ts';
import { CLUSTER_KINDS, type ClusterKind } from '../config.ts';
import { DESIRED_STATUSES, HISTORY_ACTIONS } from '../db/rows.ts';
import { EVENT_TYPES } from '../notify/events.ts';
import { SINK_KINDS } from '../notify/sinks/sink.ts';
import { DEFAULT_RENDER_LIMITS, RENDERERS, type RenderLimits } from '../render/renderer.ts';
import { VALUES_MAX_BYTES, VALUES_MAX_DEPTH } from '../tenancy/inputRules.ts';
import type { StreamLimits } from './eventStreams.ts';
import { jsonRoute, type AnyRoute } from './route.ts';
import { Capabilities } from './schemas.ts';
import { PERMISSIONS } from './tokens.ts';

export interface CapabilityDeps {
  readonly renderLimits?: RenderLimits | undefined;
  readonly streamLimits: StreamLimits;
  readonly idempotencyTtlMs: number;
  readonly allowFileRepos: boolean;
  readonly cluster?: ClusterKind | undefined;
  /** The declared routes: a feature is listed only when the route that serves it is. */
  readonly routes: () => readonly AnyRoute[];
}

/** Features and the route that proves each is served. */
const FEATURE_ROUTES: ReadonlyArray<readonly [string, string]> = [
  ['action-tracking', 'get /api/projects/:project/deployments/:env/actions/:generation'],
  ['deployment-events-sse', 'get /api/projects/:project/deployments/:env/events'],
  ['fleet-events-sse', 'get /api/events'],
  ['rollback', 'post /api/projects/:project/deployments/:env/rollback'],
  ['teardown', 'delete /api/projects/:project/deployments/:env'],
  ['notifications', 'get /api/admin/sinks'],
  ['ops-repo-push-webhooks', 'post /api/hooks/ops-repos/:id'],
  ['project-policies', 'get /api/projects/:project/policy'],
  ['visualizer', 'get /api/machine'],
];

export function buildCapabilities(deps: CapabilityDeps) {
  const render = deps.renderLimits ?? DEFAULT_RENDER_LIMITS;
  const served = new Set(deps.routes().map((r) => `${r.method} ${r.path}`));
  return {
    version: pkg.version,
    machine_version: MACHINE_VERSION,
    targets: [{ name: 'kubernetes', apply: 'server-side-apply', clusters: [...CLUSTER_KINDS], cluster: deps.cluster ?? null }],
    renderers: RENDERERS.map((r) => ({ ...r })),
    sinks: [...SINK_KINDS],
    actions: [...HISTORY_ACTIONS],
    action_statuses: [...ACTION_STATUSES],
    desired_statuses: [...DESIRED_STATUSES],
    event_types: [...EVENT_TYPES],
    permissions: [...PERMISSIONS],
    limits: {
      render: { timeout_ms: render.timeoutMs, max_heap_bytes: render.maxHeapBytes, max_objects: render.maxObjects, max_bytes: render.maxBytes },
      sse: {
        per_token: deps.streamLimits.perToken,
        total: deps.streamLimits.total,
        max_buffer_bytes: deps.streamLimits.maxBufferBytes,
        heartbeat_ms: deps.streamLimits.heartbeatMs,
      },
      values_override: { max_depth: VALUES_MAX_DEPTH, max_bytes: VALUES_MAX_BYTES },
      idempotency_ttl_ms: deps.idempotencyTtlMs,
    },
    features: {
      ...Object.fromEntries(FEATURE_ROUTES.map(([feature, route]) => [feature, served.has(route)])),
      idempotency_keys: true,
      etag_if_match: true,
      file_repos: deps.allowFileRepos,
    },
  };
}

export function capabilityRoutes(deps: CapabilityDeps): AnyRoute[] {
  return [
    jsonRoute({
      method: 'get',
      path: '/api/capabilities',
      operationId: 'getCapabilities',
      summary: 'What this keelson offers: version, targets, renderers, sinks, actions, limits in force and features.',
      description: 'Any valid token may read it (whatever its permissions or project): it names no deployment and no secret.',
      tags: ['system'],
      access: 'authenticated',
      responses: { 200: { description: 'The capabilities.', schema: Capabilities } },
      handler: async () => ({ status: 200, body: buildCapabilities(deps) }),
    }),
  ];
}
