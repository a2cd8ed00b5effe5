// The pure parts of delivery: retry decisions, and what each kind of sink sends.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { afterFailure, parseHttpDate, parseRetryAfter, type RetryPolicy } from '../../src/notify/retry.ts';
import { EVENT_TYPES } from '../../src/notify/events.ts';
import { isEventTypeFilter, sinkUrlProblem, urlHost } from '../../src/notify/sinkRules.ts';
import { SINKS } from '../../src/notify/sinks/index.ts';
import { imageVersion, registryBody } from '../../src/notify/sinks/registry.ts';
import type { SinkSettings, StoredEvent } from '../../src/notify/sinks/sink.ts';
import { slackText } from '../../src/notify/sinks/slack.ts';

const policy: RetryPolicy = { baseMs: 1000, maxMs: 60_000, horizonMs: 3_600_000 };

describe('afterFailure', () => {
  it.each([
    { attempts: 1, age: 0, random: 0, expected: { dead: false, delayMs: 500 } },
    { attempts: 1, age: 0, random: 1, expected: { dead: false, delayMs: 1000 } },
    { attempts: 3, age: 0, random: 0, expected: { dead: false, delayMs: 2000 } },
    { attempts: 3, age: 0, random: 0.5, expected: { dead: false, delayMs: 3000 } },
    // capped at maxMs
    { attempts: 30, age: 0, random: 1, expected: { dead: false, delayMs: 60_000 } },
    // the last try is made at the horizon itself
    { attempts: 30, age: 3_590_000, random: 1, expected: { dead: false, delayMs: 10_000 } },
    // a failure at or after the horizon is final
    { attempts: 31, age: 3_600_000, random: 1, expected: { dead: true } },
    { attempts: 2, age: 4_000_000, random: 0, expected: { dead: true } },
  ])('attempt $attempts at age $age ms (random $random) → $expected', ({ attempts, age, random, expected }) => {
    expect(afterFailure(policy, attempts, age, () => random)).toEqual(expected);
  });

  // a receiver's Retry-After (ms, parsed) is a floor on the wait, capped at maxMs and the horizon
  it.each([
    { why: 'longer than the backoff: waits what it asks', attempts: 1, age: 0, random: 1, retryAfter: 2_000, expected: { dead: false, delayMs: 2_000 } },
    { why: 'shorter than the backoff: the backoff stands', attempts: 3, age: 0, random: 0, retryAfter: 1_000, expected: { dead: false, delayMs: 2_000 } },
    { why: 'zero (a date in the past): the backoff', attempts: 1, age: 0, random: 0, retryAfter: 0, expected: { dead: false, delayMs: 500 } },
    { why: 'a year: capped at maxMs', attempts: 1, age: 0, random: 0, retryAfter: 365 * 86_400_000, expected: { dead: false, delayMs: 60_000 } },
    { why: 'for ever: capped at maxMs', attempts: 1, age: 0, random: 0, retryAfter: Number.POSITIVE_INFINITY, expected: { dead: false, delayMs: 60_000 } },
    { why: 'past the horizon: the last try at the horizon', attempts: 2, age: 3_570_000, random: 0, retryAfter: 50_000, expected: { dead: false, delayMs: 30_000 } },
    { why: 'after the horizon: dead all the same', attempts: 2, age: 3_600_000, random: 0, retryAfter: 1_000, expected: { dead: true } },
    { why: 'negative (never parsed so, but not trusted): the backoff', attempts: 1, age: 0, random: 0, retryAfter: -5_000, expected: { dead: false, delayMs: 500 } },
  ])('Retry-After $retryAfter ms, $why', ({ attempts, age, random, retryAfter, expected }) => {
    expect(afterFailure(policy, attempts, age, () => random, retryAfter)).toEqual(expected);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  it.each([
    ['delta-seconds', '2', 2_000],
    ['zero', '0', 0],
    ['surrounding spaces', ' 120 ', 120_000],
    ['a year of seconds (capped later, by the policy)', '31536000', 31_536_000_000],
    ['absurdly many digits: bounded', '9'.repeat(400), 2 ** 31 * 1000],
    ['IMF-fixdate 90 s ahead', 'Sun, 01 Mar 2026 12:01:30 GMT', 90_000],
    ['RFC 850 date 60 s ahead', 'Sunday, 01-Mar-26 12:01:00 GMT', 60_000],
    ['asctime date 30 s ahead (GMT, whatever the local zone)', 'Sun Mar  1 12:00:30 2026', 30_000],
    ['a date in the past: now', 'Wed, 21 Oct 2015 07:28:00 GMT', 0],
    ['absent', null, undefined],
    ['empty', '', undefined],
    ['negative', '-5', undefined],
    ['a fraction', '1.5', undefined],
    ['garbage', 'soon', undefined],
    ['text with a number, which Date.parse would take', 'foo 5', undefined],
    ['a date in another zone', 'Sun, 01 Mar 2026 12:01:30 +0200', undefined],
    ['an ISO date', '2026-03-01T12:01:30Z', undefined],
    ['no such day', 'Sun, 31 Feb 2026 12:00:00 GMT', undefined],
    ['no such hour', 'Sun, 01 Mar 2026 25:00:00 GMT', undefined],
  ])('%s: %j → %j', (_why, value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  it('reads a two-digit RFC 850 year as the most recent past year ending so when 50 years ahead', () => {
    expect(new Date(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now)!).toISOString()).toBe('1994-11-06T08:49:37.000Z');
    expect(new Date(parseHttpDate('Thursday, 01-Jan-70 00:00:00 GMT', now)!).toISOString()).toBe('2070-01-01T00:00:00.000Z');
  });
});

const event = (type: string, data: Partial<StoredEvent['data']> = {}): StoredEvent => ({
  id: '0b8a8a52-7a4e-5c1c-9a55-6f0e2a1b3c4d',
  type,
  project: 'shop',
  environment: 'prod',
  occurredAt: '2026-01-01T00:00:06.000Z',
  data: {
    deployment_id: 'd', action: 'deploy', action_id: '2-2-deploy', automatic: false, outcome: 'succeeded', image_ref: 'reg.example:5000/shop:1.4.2',
    sha: '0123456789abcdef0123', generation: 2, triggered_by: 'desired-state', error: null, started_at: null, finished_at: null, duration_ms: 5500,
    project: 'shop', environment: 'prod', namespace: 'shop-prod', ...data,
  } as StoredEvent['data'],
});
const settings = (kind: SinkSettings['kind'], secret: string | null = null): SinkSettings => ({
  kind, url: 'https://hooks.example/x', secret, headers: { Authorization: 'Bearer t', 'Content-Type': 'text/evil' },
});

describe('sinks', () => {
  it('webhook: a structured CloudEvent, signed over the exact body; custom headers cannot replace keelson\'s', () => {
    const request = SINKS.webhook.build(event('deploy.succeeded'), settings('webhook', 'k'.repeat(16)), { publicUrl: 'https://keelson.example' })!;
    expect(JSON.parse(request.body)).toEqual({
      specversion: '1.0', id: '0b8a8a52-7a4e-5c1c-9a55-6f0e2a1b3c4d', source: 'https://keelson.example/api/projects/shop/deployments/prod',
      type: 'deploy.succeeded', subject: 'shop/prod', time: '2026-01-01T00:00:06.000Z', datacontenttype: 'application/json', data: event('deploy.succeeded').data,
    });
    expect(request.headers['x-keelson-signature-256']).toBe(`sha256=${createHmac('sha256', 'k'.repeat(16)).update(request.body).digest('hex')}`);
    expect(request.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
    expect(request.headers.Authorization).toBe('Bearer t');
    expect(Object.entries(request.headers).filter(([name]) => name.toLowerCase() === 'content-type').length).toBe(1);
  });

  it('slack: project, environment, image, commit, outcome, duration and a link; markup from rows escaped', () => {
    const text = slackText(event('deploy.failed', { outcome: 'failed', error: 'pod <crash> & burn' }), { publicUrl: 'https://keelson.example' });
    expect(text).toBe(
      ':x: *deploy failed*: shop/prod\nimage `reg.example:5000/shop:1.4.2` · commit `0123456789ab` · took 5.5 s\n> pod &lt;crash&gt; &amp; burn\n<https://keelson.example/ui/deployments/shop/prod|Open in keelson>',
    );
    expect(slackText(event('rollback.started', { automatic: true, duration_ms: null, sha: null }), { publicUrl: null })).toBe(
      ':arrow_forward: *auto-rollback started*: shop/prod\nimage `reg.example:5000/shop:1.4.2`',
    );
  });

  it('slack: a health change is one readable line, markup from rows escaped', () => {
    const health = { action: null, action_id: null, triggered_by: 'live-health', duration_ms: null } as const;
    const error = 'degraded: Deployment shop-prod/shop: pod shop-1: container web is waiting: <CrashLoopBackOff>';
    expect(slackText(event('health.degraded', { ...health, outcome: 'degraded', error }), { publicUrl: 'https://keelson.example' })).toBe(
      ':warning: *degraded*: shop/prod — degraded: Deployment shop-prod/shop: pod shop-1: container web is waiting: &lt;CrashLoopBackOff&gt;\n<https://keelson.example/ui/deployments/shop/prod|Open in keelson>',
    );
    expect(slackText(event('health.recovered', { ...health, outcome: 'recovered' }), { publicUrl: null })).toBe(
      ':white_check_mark: *recovered*: shop/prod (image `reg.example:5000/shop:1.4.2`)',
    );
    // the webhook sends it like any event; the registry is not told
    const webhook = SINKS.webhook.build(event('health.degraded', { ...health, outcome: 'degraded', error }), settings('webhook', 'k'.repeat(16)), { publicUrl: null })!;
    expect(JSON.parse(webhook.body)).toMatchObject({ type: 'health.degraded', data: { outcome: 'degraded', action: null, error } });
    expect(SINKS.registry.build(event('health.recovered', { ...health, outcome: 'recovered' }), settings('registry'), { publicUrl: null })).toBeNull();
  });

  it('sink filters accept every event type keelson writes and a kind with a wildcard, nothing else', () => {
    for (const type of EVENT_TYPES) expect(isEventTypeFilter(type)).toBe(true);
    expect(EVENT_TYPES).toEqual(expect.arrayContaining(['deploy.started', 'teardown.succeeded', 'health.degraded', 'health.recovered']));
    for (const ok of ['health.*', 'deploy.*', 'drift-repair.*']) expect(isEventTypeFilter(ok)).toBe(true);
    for (const bad of ['health.started', 'deploy.degraded', 'deploy.exploded', 'nope.*', '*', 'health', '.*']) expect(isEventTypeFilter(bad)).toBe(false);
  });

  it('registry: a succeeded deploy or rollback registers the version, a teardown deregisters; nothing else is sent', () => {
    expect(registryBody(event('deploy.succeeded'))).toEqual({
      name: 'shop', version: '1.4.2', environment: 'prod', endpoint: 'http://shop.shop-prod.svc.cluster.local', rollback: false,
    });
    expect(registryBody(event('rollback.succeeded'))).toMatchObject({ rollback: true });
    // a succeeded teardown deregisters
    expect(registryBody(event('teardown.succeeded'))).toEqual({ name: 'shop', environment: 'prod', deregister: true });
    expect(SINKS.registry.build(event('teardown.failed'), settings('registry'), { publicUrl: null })).toBeNull();
    expect(SINKS.registry.build(event('deploy.failed'), settings('registry'), { publicUrl: null })).toBeNull();
    expect(SINKS.registry.build(event('deploy.started'), settings('registry'), { publicUrl: null })).toBeNull();
    expect([imageVersion('shop'), imageVersion('reg:5000/shop'), imageVersion('shop@sha256:abc'), imageVersion('shop:2@sha256:abc')]).toEqual(['latest', 'latest', 'sha256:abc', '2']);
  });

  it.each([
    ['https://hooks.example/x', null],
    ['http://10.0.0.1:8080/hook', null],
    ['ftp://hooks.example/x', 'not http(s) with a host'],
    ['https://user:pw@hooks.example/', 'carries user:password@'],
    ['https:///nohost', 'not http(s) with a host'],
    ['https://hooks.example/a b', 'not 1-2048 visible ASCII characters'],
  ])('sink URL %s → %s', (url, problem) => {
    expect(sinkUrlProblem(url)).toBe(problem);
  });

  it('shows the scheme and host of a URL only', () => {
    expect(urlHost('https://hooks.slack.com/services/T000/B000/XXXXSECRET')).toBe('https://hooks.slack.com');
  });
});
