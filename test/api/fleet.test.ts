// The fleet reads (GET /api/fleet, /api/fleet/deployments) against real PostgreSQL: counts by
// state overall and per project, the attention list with age in state, filters and pages, a
// project-scoped token seeing only its project, typed query errors, and last_error redacted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.ts';

let h: Harness;
let admin: string;
let shopOnly: string;

// project, environment, current_status, minutes in that state
const ROWS: Array<[string, string, string, number]> = [
  ['shop', 'prod', 'healthy', 60],
  ['shop', 'prod-eu', 'failed', 30],
  ['shop', 'staging', 'verifying', 5],
  ['shop', 'dev', 'syncing', 1],
  ['blog', 'prod', 'healthy', 90],
  ['blog', 'staging', 'rolling-back', 10],
  ['blog', 'dev', 'stopped', 3],
];

beforeAll(async () => {
  h = await startHarness();
  admin = await h.token(['deploy:read']);
  shopOnly = await h.token(['deploy:read'], 'shop');
  for (const [project, env, state, minutes] of ROWS) {
    const id = await h.insertDeployment(project, env);
    // status_changed_at moves only with current_status (trigger): set it after
    await h.pg.query(`update deployments set current_status = $2, last_error = $3 where id = $1`, [id, state, state === 'failed' ? 'fetch https://bot:hunter2@git.example/ops.git failed' : null]);
    await h.pg.query(`update deployments set status_changed_at = now() - make_interval(mins => $2) where id = $1`, [id, minutes]);
  }
});

afterAll(async () => {
  expect(h.leaks(['hunter2'])).toEqual([]);
  await h.close();
});

describe('GET /api/fleet', () => {
  it('counts by state overall and per project, every state present', async () => {
    const r = await h.request('GET', '/api/fleet', { token: admin });
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(7);
    expect(r.body.by_state).toEqual({ idle: 0, syncing: 1, applying: 0, verifying: 1, healthy: 2, failed: 1, 'rolling-back': 1, stopped: 1, 'tearing-down': 0 });
    expect(r.body.projects.map((p: { project: string; total: number }) => [p.project, p.total])).toEqual([['blog', 3], ['shop', 4]]);
    expect(r.body.projects[1].by_state.failed).toBe(1);
  });

  it('lists failed and in-flight deployments, longest in their state first, with their age', async () => {
    const r = await h.request('GET', '/api/fleet', { token: admin });
    expect(r.body.attention.map((d: { project: string; environment: string }) => `${d.project}/${d.environment}`)).toEqual(['shop/prod-eu', 'blog/staging', 'shop/staging', 'shop/dev']);
    expect(r.body.attention_total).toBe(4);
    const failed = r.body.attention[0];
    expect(failed.in_state_ms).toBeGreaterThanOrEqual(30 * 60_000);
    expect(failed.in_state_ms).toBeLessThan(31 * 60_000);
    expect(failed.last_error).toBe('fetch https://bot:***@git.example/ops.git failed');
  });

  it('a project-scoped token sees only its project; naming another is a 404', async () => {
    const r = await h.request('GET', '/api/fleet', { token: shopOnly });
    expect(r.body.total).toBe(4);
    expect(r.body.projects.map((p: { project: string }) => p.project)).toEqual(['shop']);
    expect(r.body.attention.every((d: { project: string }) => d.project === 'shop')).toBe(true);
    const other = await h.request('GET', '/api/fleet?project=blog', { token: shopOnly });
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('not_found');
    const pageOther = await h.request('GET', '/api/fleet/deployments?project=blog', { token: shopOnly });
    expect(pageOther.status).toBe(404);
    const page = await h.request('GET', '/api/fleet/deployments', { token: shopOnly });
    expect(page.body.total).toBe(4);
  });
});

describe('GET /api/fleet/deployments', () => {
  it.each([
    ['', 7, ['blog/dev', 'blog/prod', 'blog/staging', 'shop/dev', 'shop/prod', 'shop/prod-eu', 'shop/staging']],
    ['?project=shop&environment=prod', 2, ['shop/prod', 'shop/prod-eu']],
    ['?state=failed', 1, ['shop/prod-eu']],
    ['?state=in-flight', 3, ['blog/staging', 'shop/dev', 'shop/staging']],
    ['?environment=prod&state=healthy', 2, ['blog/prod', 'shop/prod']],
    ['?limit=2&offset=2', 7, ['blog/staging', 'shop/dev']],
    ['?offset=100', 7, []],
  ])('%s → %i matching, this page', async (query, total, page) => {
    const r = await h.request('GET', `/api/fleet/deployments${query}`, { token: admin });
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(total);
    expect(r.body.items.map((d: { project: string; environment: string }) => `${d.project}/${d.environment}`)).toEqual(page);
  });

  it.each([
    ['?state=broken', 'state', /one of idle, .*in-flight/],
    ['?limit=0', 'limit', /1 to 500/],
    ['?limit=501', 'limit', /1 to 500/],
    ['?offset=-1', 'offset', /0 to 1000000/],
    ['?environment=Prod', 'environment', /start of an environment name/],
    ['?project=Shop', 'project', /DNS label/],
    ['?sort=age', 'sort', /./],
  ])('%s is a 400 naming %s', async (query, field, message) => {
    const r = await h.request('GET', `/api/fleet/deployments${query}`, { token: admin });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_request');
    const detail = r.body.error.details.find((d: { field: string }) => d.field === field || d.field === `query.${field}`) ?? r.body.error.details[0];
    expect(JSON.stringify(r.body.error)).toContain(field);
    expect(detail.message).toMatch(message);
  });

  it('is documented in /openapi.json', async () => {
    const r = await h.request('GET', '/openapi.json');
    expect(Object.keys(r.body.paths)).toEqual(expect.arrayContaining(['/api/fleet', '/api/fleet/deployments']));
    const params = r.body.paths['/api/fleet/deployments'].get.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(expect.arrayContaining(['project', 'environment', 'state', 'limit', 'offset']));
  });
});
