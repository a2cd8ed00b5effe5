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
      logLevel: 'info',
      logFormat: 'json',
      tickIntervalMs: 10_000,
      maxConcurrentRollouts: 32,
      verifyTimeoutMs: 300_000,
      trustProxy: false,
      renderLimits: { timeoutMs: 10_000, maxHeapBytes: 128 * 1024 ** 2, maxObjects: 1_000, maxBytes: 10 * 1024 ** 2 },
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
    [{ DATABASE_URL: 'postgres://u:p@db:5432/keelson' }, { databaseUrl: 'postgres://u:p@db:5432/keelson' }],
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
    [{ KEELSON_TRUST_PROXY: 'yes please' }, 'KEELSON_TRUST_PROXY / --trust-proxy: expected false, true, a number of proxy hops'],
    [{ DATABASE_URL: 'mysql://root@db/x' }, 'DATABASE_URL / --database-url: expected a PostgreSQL URL such as postgresql://user:pass@host:5432/db'],
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
    ['1d', undefined],
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
