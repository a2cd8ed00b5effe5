// One Prometheus registry per process, passed to every part that reports figures.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'keelson_process_' });
  const registers = [registry];
  return {
    registry,
    info: new Gauge({
      name: 'keelson_info',
      help: 'Always 1. Labels: keelson version, the cluster it deploys to (kubeconfig, in-cluster, sim), its database (external, embedded) and PostgreSQL major version.',
      labelNames: ['version', 'cluster', 'database', 'postgres'],
      registers,
    }),
    deploymentsByState: new Gauge({
      name: 'keelson_deployments',
      help: 'Deployments hosted by this process, by current state.',
      labelNames: ['state'],
      registers,
    }),
    transitions: new Counter({
      name: 'keelson_transitions_total',
      help: 'State transitions journaled, by source and target state.',
      labelNames: ['from', 'to'],
      registers,
    }),
    rolloutDuration: new Histogram({
      name: 'keelson_rollout_duration_seconds',
      help: 'Duration of completed actions (deploy, rollback, stop, …), by action and outcome.',
      labelNames: ['action', 'status'],
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
    driftChecks: new Counter({
      name: 'keelson_drift_checks_total',
      help: 'Drift checks of healthy deployments, by outcome: in_sync, drifted (repaired), detected (drift: detect), ops_repo_moved, not_comparable (a rollback not written back yet).',
      labelNames: ['outcome'],
      registers,
    }),
    notifyAttempts: new Counter({
      name: 'keelson_notify_attempts_total',
      help: 'Notification delivery attempts, by sink kind and what became of the delivery (delivered, retrying, dead).',
      labelNames: ['kind', 'outcome'],
      registers,
    }),
    wakeupLatency: new Histogram({
      name: 'keelson_wakeup_latency_seconds',
      help: 'From a NOTIFY received to the woken actor leaving its resting state.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    gitSyncs: new Counter({
      name: 'keelson_git_syncs_total',
      help: 'Ops repo syncs, by repo and outcome (fetched, skipped, failed).',
      labelNames: ['repo', 'outcome'],
      registers,
    }),
    gitSyncDuration: new Histogram({
      name: 'keelson_git_sync_duration_seconds',
      help: 'Duration of ops repo clones and fetches.',
      labelNames: ['repo'],
      registers,
    }),
    kubeRequests: new Counter({
      name: 'keelson_kube_requests_total',
      help: 'Kubernetes API requests, by verb, kind and outcome (ok, throttled, transient, terminal, aborted).',
      labelNames: ['verb', 'kind', 'outcome'],
      registers,
    }),
    kubeRequestDuration: new Histogram({
      name: 'keelson_kube_request_duration_seconds',
      help: 'Kubernetes API request durations, by verb.',
      labelNames: ['verb'],
      registers,
    }),
    kubeRateLimitWait: new Histogram({
      name: 'keelson_kube_rate_limit_wait_seconds',
      help: 'Time Kubernetes API requests waited for the client-side rate limiter, by verb (only requests that waited).',
      labelNames: ['verb'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
      registers,
    }),
    kubeCacheObjects: new Gauge({
      name: 'keelson_kube_cache_objects',
      help: 'Objects held by the shared cluster cache, by kind.',
      labelNames: ['kind'],
      registers,
    }),
    kubeWatchRestarts: new Counter({
      name: 'keelson_kube_watch_restarts_total',
      help: 'Watch connections of the cluster cache opened again, by kind and reason (closed, expired, failed).',
      labelNames: ['kind', 'reason'],
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
