// Configuration from the environment and flags: defaults, precedence, and the error a bad value
// gets (the variable, its flag and what is accepted).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
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
      logLevel: 'info',
      logFormat: 'json',
      tickIntervalMs: 10_000,
      maxConcurrentRollouts: 32,
      verifyTimeoutMs: 300_000,
      trustProxy: false,
      allowFileRepos: undefined,
      sseMaxPerToken: 10,
      sseMax: 1000,
      gitFetchTimeoutMs: 300_000,
      gitMaxRepoBytes: 1024 ** 3,
      retainTransitionsMs: 30 * 86_400_000,
      retainAuditMs: 365 * 86_400_000,
      idempotencyTtlMs: 86_400_000,
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
    [{ KEELSON_ALLOW_FILE_REPOS: 'false' }, { allowFileRepos: false }],
    [{ KEELSON_ALLOW_FILE_REPOS: 'true', KEELSON_SSE_MAX_PER_TOKEN: '3', KEELSON_SSE_MAX: '50' }, { allowFileRepos: true, sseMaxPerToken: 3, sseMax: 50 }],
    [{ KEELSON_GIT_FETCH_TIMEOUT: '90s', KEELSON_GIT_MAX_REPO_BYTES: '512MiB' }, { gitFetchTimeoutMs: 90_000, gitMaxRepoBytes: 512 * 1024 ** 2 }],
    [{ KEELSON_RETAIN_TRANSITIONS: '7d', KEELSON_RETAIN_AUDIT: '90d', KEELSON_IDEMPOTENCY_TTL: '1h' }, { retainTransitionsMs: 7 * 86_400_000, retainAuditMs: 90 * 86_400_000, idempotencyTtlMs: 3_600_000 }],
    [{ DATABASE_URL: 'postgres://u:p@db:5432/keelson' }, { databaseUrl: 'postgres://u:p@db:5432/keelson' }],
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
    [{ KEELSON_TRUST_PROXY: 'yes please' }, 'KEELSON_TRUST_PROXY / --trust-proxy: expected false, true, a number of proxy hops'],
    [{ KEELSON_ALLOW_FILE_REPOS: 'yes' }, 'KEELSON_ALLOW_FILE_REPOS / --allow-file-repos: expected true or false (got "yes")'],
    [{ KEELSON_GIT_MAX_REPO_BYTES: '1TB' }, 'KEELSON_GIT_MAX_REPO_BYTES / --git-max-repo-bytes: expected a size in bytes such as 1073741824, 512MiB or 1GiB'],
    [{ KEELSON_SSE_MAX: '0' }, 'KEELSON_SSE_MAX / --sse-max: expected an integer from 1 to 100000; got "0"'],
    [{ KEELSON_IDEMPOTENCY_TTL: '1s' }, 'KEELSON_IDEMPOTENCY_TTL / --idempotency-ttl: expected a duration'],
    [{ DATABASE_URL: 'mysql://root@db/x' }, 'DATABASE_URL / --database-url: expected a PostgreSQL URL such as postgresql://user:pass@host:5432/db'],
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
