// Configuration from the environment and flags: defaults, precedence, and the error a bad value
// gets (the variable, its flag and what is accepted).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseByteSize } from '../src/bytes.ts';
import { loadConfig, parseDuration } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    expect(loadConfig({}, {}, false)).toEqual({
      databaseUrl: undefined,
      dataDir: path.resolve('./.keelson'),
      port: 8080,
      host: '127.0.0.1',
      kubeconfig: undefined,
      leaseTtlMs: 10_000,
      logLevel: 'info',
      logFormat: 'json',
      tickIntervalMs: 10_000,
      maxConcurrentRollouts: 32,
      verifyTimeoutMs: 300_000,
      degradedGraceMs: 120_000,
      kubeQps: 50,
      kubeBurst: 100,
      trustProxy: false,
      cluster: 'sim',
      database: 'embedded',
      shutdownTimeoutMs: 20_000,
      instanceId: undefined,
      allowFileRepos: undefined,
      sseMaxPerToken: 10,
      sseMax: 1000,
      gitFetchTimeoutMs: 300_000,
      gitMaxRepoBytes: 1024 ** 3,
      retainTransitionsMs: 30 * 86_400_000,
      retainAuditMs: 365 * 86_400_000,
      idempotencyTtlMs: 86_400_000,
      renderLimits: { timeoutMs: 10_000, maxHeapBytes: 128 * 1024 ** 2, maxObjects: 1_000, maxBytes: 10 * 1024 ** 2 },
      notifyHorizonMs: 86_400_000,
      notifyConcurrency: 8,
      notifyTimeoutMs: 10_000,
      publicUrl: undefined,
    });
    expect(loadConfig({}, {}, true).logFormat).toBe('pretty');
  });

  it('lets flags override the environment, and treats empty variables as unset', () => {
    const config = loadConfig({ PORT: '9000', KEELSON_TICK_INTERVAL: '2s', KUBECONFIG: '' }, { port: '9100', 'verify-timeout': '90s' }, false);
    expect(config).toMatchObject({ port: 9100, tickIntervalMs: 2000, verifyTimeoutMs: 90_000, kubeconfig: undefined });
  });

  it.each([
    [{ KEELSON_TRUST_PROXY: 'true' }, { trustProxy: true }],
    [{ KEELSON_TRUST_PROXY: '2' }, { trustProxy: 2 }],
    [{ KEELSON_TRUST_PROXY: 'loopback, 10.0.0.0/8' }, { trustProxy: 'loopback, 10.0.0.0/8' }],
    [{ KEELSON_MAX_CONCURRENT_ROLLOUTS: '1' }, { maxConcurrentRollouts: 1 }],
    [{ KEELSON_KUBE_QPS: '2.5', KEELSON_KUBE_BURST: '5' }, { kubeQps: 2.5, kubeBurst: 5 }],
    [{ KEELSON_ALLOW_FILE_REPOS: 'false' }, { allowFileRepos: false }],
    [{ KEELSON_ALLOW_FILE_REPOS: 'true', KEELSON_SSE_MAX_PER_TOKEN: '3', KEELSON_SSE_MAX: '50' }, { allowFileRepos: true, sseMaxPerToken: 3, sseMax: 50 }],
    [{ KEELSON_GIT_FETCH_TIMEOUT: '90s', KEELSON_GIT_MAX_REPO_BYTES: '512MiB' }, { gitFetchTimeoutMs: 90_000, gitMaxRepoBytes: 512 * 1024 ** 2 }],
    [{ KEELSON_RETAIN_TRANSITIONS: '7d', KEELSON_RETAIN_AUDIT: '90d', KEELSON_IDEMPOTENCY_TTL: '1h' }, { retainTransitionsMs: 7 * 86_400_000, retainAuditMs: 90 * 86_400_000, idempotencyTtlMs: 3_600_000 }],
    [{ DATABASE_URL: 'postgres://u:p@db:5432/keelson' }, { databaseUrl: 'postgres://u:p@db:5432/keelson' }],
    [
      { KEELSON_NOTIFY_HORIZON: '2h', KEELSON_NOTIFY_CONCURRENCY: '2', KEELSON_NOTIFY_TIMEOUT: '3s', KEELSON_PUBLIC_URL: 'https://keelson.example.com/' },
      { notifyHorizonMs: 7_200_000, notifyConcurrency: 2, notifyTimeoutMs: 3_000, publicUrl: 'https://keelson.example.com' },
    ],
    [{}, { namespaces: undefined }],
    [{ KEELSON_NAMESPACES: 'shop-prod' }, { namespaces: ['shop-prod'] }],
    [{ KEELSON_NAMESPACES: 'shop-staging, shop-prod,shop-staging' }, { namespaces: ['shop-staging', 'shop-prod'] }],
    [
      { KEELSON_RENDER_TIMEOUT: '30s', KEELSON_RENDER_MAX_HEAP: '256Mi', KEELSON_RENDER_MAX_OBJECTS: '50', KEELSON_RENDER_MAX_BYTES: '512KiB' },
      { renderLimits: { timeoutMs: 30_000, maxHeapBytes: 256 * 1024 ** 2, maxObjects: 50, maxBytes: 512 * 1024 } },
    ],
  ])('accepts %j', (env, expected) => {
    expect(loadConfig(env, {}, false)).toMatchObject(expected);
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT / --port: expected an integer from 0 to 65535; got "abc"'],
    [{ PORT: '70000' }, 'PORT / --port: expected an integer from 0 to 65535; got "70000"'],
    [{ KEELSON_TICK_INTERVAL: '10 minutes' }, 'KEELSON_TICK_INTERVAL / --tick-interval: expected a duration such as 500ms, 10s or 5m'],
    [{ KEELSON_TICK_INTERVAL: '10ms' }, 'between 50 ms and 3600 s; got "10ms"'],
    [{ KEELSON_LOG_LEVEL: 'verbose' }, 'KEELSON_LOG_LEVEL / --log-level: expected one of fatal, error, warn, info, debug, trace, silent (got "verbose")'],
    [{ KEELSON_LOG_FORMAT: 'xml' }, 'KEELSON_LOG_FORMAT / --log-format: expected json or pretty (got "xml")'],
    [{ KEELSON_MAX_CONCURRENT_ROLLOUTS: '0' }, 'KEELSON_MAX_CONCURRENT_ROLLOUTS / --max-concurrent-rollouts: expected an integer from 1 to 10000; got "0"'],
    [{ KEELSON_KUBE_QPS: '0' }, 'KEELSON_KUBE_QPS / --kube-qps: expected a number above 0 and at most 10000; got "0"'],
    [{ KEELSON_KUBE_BURST: '0.5' }, 'KEELSON_KUBE_BURST / --kube-burst: expected an integer from 1 to 100000; got "0.5"'],
    [{ KEELSON_TRUST_PROXY: 'yes please' }, 'KEELSON_TRUST_PROXY / --trust-proxy: expected false, true, a number of proxy hops'],
    [{ KEELSON_ALLOW_FILE_REPOS: 'yes' }, 'KEELSON_ALLOW_FILE_REPOS / --allow-file-repos: expected true or false (got "yes")'],
    [{ KEELSON_GIT_MAX_REPO_BYTES: '1TB' }, 'KEELSON_GIT_MAX_REPO_BYTES / --git-max-repo-bytes: expected a size such as 512KiB, 10MiB or 1GiB, between 1 MiB and 1024 GiB; got "1TB"'],
    [{ KEELSON_SSE_MAX: '0' }, 'KEELSON_SSE_MAX / --sse-max: expected an integer from 1 to 100000; got "0"'],
    [{ KEELSON_IDEMPOTENCY_TTL: '1s' }, 'KEELSON_IDEMPOTENCY_TTL / --idempotency-ttl: expected a duration'],
    [{ KEELSON_NOTIFY_HORIZON: '0s' }, 'KEELSON_NOTIFY_HORIZON / --notify-horizon: expected a duration'],
    [{ KEELSON_PUBLIC_URL: 'ftp://keelson' }, 'KEELSON_PUBLIC_URL / --public-url: expected an http(s) URL'],
    [{ DATABASE_URL: 'mysql://root@db/x' }, 'DATABASE_URL / --database-url: expected a PostgreSQL URL such as postgresql://user:pass@host:5432/db'],
    [{ KEELSON_NAMESPACES: 'shop-prod,Shop_Dev' }, 'KEELSON_NAMESPACES / --namespaces: expected a comma-separated list of namespace names (DNS labels: a-z, 0-9 and "-", at most 63, starting and ending with a letter or digit); "Shop_Dev" is not'],
    [{ KEELSON_NAMESPACES: 'a,,b' }, 'KEELSON_NAMESPACES / --namespaces: expected a comma-separated list of namespace names'],
    [{ KEELSON_NAMESPACES: `${'x'.repeat(64)}` }, `"${'x'.repeat(64)}" is not`],
    [{ KEELSON_CLUSTER: 'minikube' }, 'KEELSON_CLUSTER / --cluster: expected one of kubeconfig, in-cluster, sim (got "minikube")'],
    [{ KEELSON_SHUTDOWN_TIMEOUT: '0s' }, 'KEELSON_SHUTDOWN_TIMEOUT / --shutdown-timeout: expected a duration such as 500ms, 10s or 5m, between 1000 ms and 600 s; got "0s"'],
    [{ KEELSON_RENDER_TIMEOUT: '1h' }, 'KEELSON_RENDER_TIMEOUT / --render-timeout: expected a duration such as 500ms, 10s or 5m, between 100 ms and 600 s; got "1h"'],
    [{ KEELSON_RENDER_MAX_HEAP: '128MB' }, 'KEELSON_RENDER_MAX_HEAP / --render-max-heap: expected a size such as 512KiB, 10MiB or 1GiB, between 16 MiB and 16 GiB; got "128MB"'],
    [{ KEELSON_RENDER_MAX_OBJECTS: '0' }, 'KEELSON_RENDER_MAX_OBJECTS / --render-max-objects: expected an integer from 1 to 100000; got "0"'],
    [{ KEELSON_RENDER_MAX_BYTES: '2GiB' }, 'KEELSON_RENDER_MAX_BYTES / --render-max-bytes: expected a size such as 512KiB, 10MiB or 1GiB, between 64 KiB and 1 GiB; got "2GiB"'],
  ])('refuses %j naming the variable and what is accepted', (env, message) => {
    let error: unknown;
    try {
      loadConfig(env, {}, false);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(message);
  });

  it('reports every bad value at once, and never echoes a database URL (it may hold a password)', () => {
    let message = '';
    try {
      loadConfig({ PORT: 'x', DATABASE_URL: 'nope://secret-password@host' }, {}, false);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/PORT[\s\S]*DATABASE_URL|DATABASE_URL[\s\S]*PORT/);
    expect(message).not.toContain('secret-password');
  });
});

describe('cluster and database selection', () => {
  const url = 'postgresql://keelson:secret@db:5432/keelson';
  const pod = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

  it.each([
    ['nothing set: the zero-setup mode', {}, {}, 'sim', 'embedded'],
    ['KUBECONFIG set', { KUBECONFIG: '/k/config' }, {}, 'kubeconfig', 'embedded'],
    ['--kubeconfig flag', {}, { kubeconfig: '/k/config' }, 'kubeconfig', 'embedded'],
    ['DATABASE_URL set', { DATABASE_URL: url }, {}, 'sim', 'external'],
    ['in a pod with DATABASE_URL', { ...pod, DATABASE_URL: url }, {}, 'in-cluster', 'external'],
    ['in a pod with KUBECONFIG too: the file wins', { ...pod, DATABASE_URL: url, KUBECONFIG: '/k/config' }, {}, 'kubeconfig', 'external'],
    ['in a pod, simulator asked for by name', { ...pod, DATABASE_URL: url, KEELSON_CLUSTER: 'sim' }, {}, 'sim', 'external'],
    ['explicit kubeconfig', { KEELSON_CLUSTER: 'kubeconfig', KUBECONFIG: '/k/config' }, {}, 'kubeconfig', 'embedded'],
    ['explicit sim despite KUBECONFIG', { KEELSON_CLUSTER: 'sim', KUBECONFIG: '/k/config' }, {}, 'sim', 'embedded'],
    ['--cluster flag over the variable', { ...pod, DATABASE_URL: url, KEELSON_CLUSTER: 'sim' }, { cluster: 'in-cluster' }, 'in-cluster', 'external'],
  ])('%s → %s + %s', (_name, env, flags, cluster, database) => {
    expect(loadConfig(env, flags, false)).toMatchObject({ cluster, database });
  });

  it.each([
    [
      'inside a pod without DATABASE_URL',
      pod,
      'DATABASE_URL / --database-url: unset inside a Kubernetes pod (KUBERNETES_SERVICE_HOST is set). keelson does not start an embedded PostgreSQL in a pod: its data would be lost whenever the pod restarts.',
    ],
    ['inside a pod without DATABASE_URL, even with the simulator named', { ...pod, KEELSON_CLUSTER: 'sim' }, 'DATABASE_URL / --database-url: unset inside a Kubernetes pod'],
    ['in-cluster outside a pod', { KEELSON_CLUSTER: 'in-cluster' }, 'KEELSON_CLUSTER / --cluster: in-cluster works only inside a Kubernetes pod'],
    ['in-cluster without the service port', { KEELSON_CLUSTER: 'in-cluster', KUBERNETES_SERVICE_HOST: '10.96.0.1', DATABASE_URL: url }, 'KUBERNETES_SERVICE_PORT are set'],
    ['kubeconfig without a file', { KEELSON_CLUSTER: 'kubeconfig' }, 'KEELSON_CLUSTER / --cluster: kubeconfig needs KUBECONFIG / --kubeconfig naming the file'],
  ])('refuses %s, saying why and what to do', (_name, env, message) => {
    expect(() => loadConfig(env, {}, false)).toThrow(ConfigError);
    expect(() => loadConfig(env, {}, false)).toThrow(message);
  });
});

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['10s', 10_000],
    ['10', 10_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['', undefined],
    ['5 m', undefined],
    ['-1s', undefined],
    ['30d', 30 * 86_400_000],
    ['1w', undefined],
  ])('%j → %j', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
});

describe('parseByteSize', () => {
  it.each([
    ['1048576', 1_048_576],
    ['512B', 512],
    ['512KiB', 512 * 1024],
    ['10MiB', 10 * 1024 ** 2],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['128Mi', 128 * 1024 ** 2],
    ['64 Ki', 64 * 1024],
    ['10MB', undefined],
    ['10mib', undefined],
    ['-1MiB', undefined],
    ['', undefined],
  ])('%j → %j', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });
});
