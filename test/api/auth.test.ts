// The permission matrix: every route × {deploy:read, deploy:promote, admin} × {a global token, a
// token of the project the request targets, a token of another project}, plus no, malformed,
// unknown and revoked tokens; the body fields that choose where a deployment goes (namespace,
// ops_repo, ops_repo_id, manifest_path, values_override) against the project policy; and the push
// webhook, which no token opens. Refused requests change nothing.
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeToken } from '../../src/api/tokens.ts';
import { openSse, startHarness, type Harness } from './harness.ts';

let h: Harness;
const tokens: Record<string, string> = {};
const repos: Record<string, string> = {};
const WEBHOOK_SECRET = 'matrix-webhook-secret-0123456789';
let counter = 0;

type Perm = 'read' | 'promote' | 'admin';
type Scope = 'global' | 'own' | 'other';
type Access = Perm | 'admin-global' | 'public' | 'webhook' | 'authenticated';

beforeAll(async () => {
  h = await startHarness({ opsRepos: { fetch: async () => ({ sha: 'b'.repeat(40), fetched: true }) } });
  for (const perm of ['read', 'promote', 'admin'] as const) {
    const permissions = perm === 'read' ? ['deploy:read' as const] : perm === 'promote' ? ['deploy:promote' as const] : ['admin' as const];
    tokens[`${perm}:global`] = await h.token(permissions, null, `${perm}-global`);
    // requests target project shop: a shop token is "own", a blog token is "other"
    tokens[`${perm}:own`] = await h.token(permissions, 'shop', `${perm}-shop`);
    tokens[`${perm}:other`] = await h.token(permissions, 'blog', `${perm}-blog`);
  }
  tokens.revoked = await h.token(['admin'], null, 'gone');
  await revokeToken(h.t.db, 'gone');
  // policies: each project its own ops repo
  await h.pg.query("insert into projects (name, source_repos) values ('shop', '{shop-ops}'), ('blog', '{blog-ops}')");
  for (const name of ['shop-ops', 'blog-ops']) {
    repos[name] = (await h.pg.query(`insert into ops_repos (name, repo_url, webhook_secret) values ($1, 'https://git.example/x.git', $2) returning id`, [name, WEBHOOK_SECRET])).rows[0].id;
  }
  const shop = await h.insertDeployment('shop', 'staging', { ops_repo_id: repos['shop-ops'] });
  await h.insertDeployment('blog', 'prod', { ops_repo_id: repos['blog-ops'] });
  for (const n of [1, 2]) {
    await h.pg.query(`insert into deployment_history (deployment_id, action_id, action, status, image_ref, generation) values ($1, $2, 'deploy', 'succeeded', $3, 1)`, [shop, `a${n}`, `x:${n}`]);
  }
});

afterAll(async () => {
  const secrets = Object.values(tokens).filter((t) => t.startsWith('kls_'));
  expect(h.leaks([...secrets, WEBHOOK_SECRET])).toEqual([]);
  await h.close();
});

interface Case {
  readonly name: string;
  readonly access: Access;
  /** Whether the path names a project (then a token of another project gets 404). */
  readonly scoped: boolean;
  readonly sse?: boolean;
  readonly ok: number;
  /** Method, path and body; called once per request, so creations can be unique. */
  readonly request: () => Promise<[string, string, unknown?]> | [string, string, unknown?];
}

const D = '/api/projects/shop/deployments';
const cases: Case[] = [
  { name: 'GET /api/deployments', access: 'read', scoped: false, ok: 200, request: () => ['GET', '/api/deployments'] },
  { name: 'GET deployments of a project', access: 'read', scoped: true, ok: 200, request: () => ['GET', D] },
  { name: 'POST a deployment', access: 'promote', scoped: true, ok: 202, request: () => ['POST', D, { environment: `m${++counter}`, image_ref: 'x:1' }] },
  { name: 'GET a deployment', access: 'read', scoped: true, ok: 200, request: () => ['GET', `${D}/staging`] },
  { name: 'PATCH a deployment', access: 'promote', scoped: true, ok: 202, request: () => ['PATCH', `${D}/staging`, { auto_rollback: true }] },
  { name: 'PATCH values_override', access: 'promote', scoped: true, ok: 202, request: () => ['PATCH', `${D}/staging`, { values_override: { replicas: 2 } }] },
  { name: 'POST rollback', access: 'promote', scoped: true, ok: 202, request: () => ['POST', `${D}/staging/rollback`] },
  {
    name: 'DELETE a deployment (teardown)',
    access: 'promote',
    scoped: true,
    ok: 202,
    request: async () => ['DELETE', `${D}/${(await h.pg.query(`insert into deployments (project, environment, image_ref) values ('shop', $1, 'x:1') returning environment`, [`del${++counter}`])).rows[0].environment}`],
  },
  { name: 'GET history', access: 'read', scoped: true, ok: 200, request: () => ['GET', `${D}/staging/history`] },
  { name: 'GET an action', access: 'read', scoped: true, ok: 200, request: () => ['GET', `${D}/staging/actions/1`] },
  { name: 'GET transitions', access: 'read', scoped: true, ok: 200, request: () => ['GET', `${D}/staging/transitions`] },
  { name: 'GET snapshot', access: 'read', scoped: true, ok: 200, request: () => ['GET', `${D}/staging/snapshot`] },
  { name: 'GET events (SSE)', access: 'read', scoped: true, sse: true, ok: 200, request: () => ['GET', `${D}/staging/events`] },
  { name: 'GET /api/events (SSE)', access: 'read', scoped: false, sse: true, ok: 200, request: () => ['GET', '/api/events'] },
  { name: 'GET /api/machine', access: 'read', scoped: false, ok: 200, request: () => ['GET', '/api/machine'] },
  { name: 'GET /api/capabilities', access: 'authenticated', scoped: false, ok: 200, request: () => ['GET', '/api/capabilities'] },
  { name: 'GET /api/fleet', access: 'read', scoped: false, ok: 200, request: () => ['GET', '/api/fleet'] },
  { name: 'GET /api/fleet of a project', access: 'read', scoped: true, ok: 200, request: () => ['GET', '/api/fleet?project=shop'] },
  { name: 'GET /api/fleet/deployments', access: 'read', scoped: false, ok: 200, request: () => ['GET', '/api/fleet/deployments?state=idle'] },
  { name: 'GET /api/fleet/deployments of a project', access: 'read', scoped: true, ok: 200, request: () => ['GET', '/api/fleet/deployments?project=shop'] },
  { name: 'GET the project policy', access: 'read', scoped: true, ok: 200, request: () => ['GET', '/api/projects/shop/policy'] },
  { name: 'GET ops repos', access: 'admin-global', scoped: false, ok: 200, request: () => ['GET', '/api/admin/ops-repos'] },
  { name: 'POST an ops repo', access: 'admin-global', scoped: false, ok: 201, request: () => ['POST', '/api/admin/ops-repos', { name: `r${++counter}`, repo_url: 'https://git.example/r.git' }] },
  { name: 'GET an ops repo', access: 'admin-global', scoped: false, ok: 200, request: () => ['GET', `/api/admin/ops-repos/${repos['shop-ops']}`] },
  { name: 'PATCH an ops repo', access: 'admin-global', scoped: false, ok: 200, request: () => ['PATCH', `/api/admin/ops-repos/${repos['shop-ops']}`, { sync_interval_s: 30 }] },
  {
    name: 'DELETE an ops repo',
    access: 'admin-global',
    scoped: false,
    ok: 204,
    request: async () => ['DELETE', `/api/admin/ops-repos/${(await h.pg.query(`insert into ops_repos (name, repo_url) values ($1, 'https://git.example/d.git') returning id`, [`d${++counter}`])).rows[0].id}`],
  },
  { name: 'POST an ops repo sync', access: 'admin-global', scoped: false, ok: 200, request: () => ['POST', `/api/admin/ops-repos/${repos['shop-ops']}/sync`] },
  { name: 'GET projects', access: 'admin-global', scoped: false, ok: 200, request: () => ['GET', '/api/admin/projects'] },
  { name: 'POST a project', access: 'admin-global', scoped: false, ok: 201, request: () => ['POST', '/api/admin/projects', { name: `p${++counter}` }] },
  { name: 'GET a project', access: 'admin-global', scoped: false, ok: 200, request: () => ['GET', '/api/admin/projects/shop'] },
  { name: 'PATCH a project', access: 'admin-global', scoped: false, ok: 200, request: () => ['PATCH', '/api/admin/projects/shop', { description: 'the shop' }] },
  {
    name: 'DELETE a project',
    access: 'admin-global',
    scoped: false,
    ok: 204,
    request: async () => {
      const name = `x${++counter}`;
      await h.pg.query('insert into projects (name) values ($1)', [name]);
      return ['DELETE', `/api/admin/projects/${name}`];
    },
  },
  { name: 'POST the push webhook', access: 'webhook', scoped: false, ok: 202, request: () => ['POST', `/api/hooks/ops-repos/${repos['shop-ops']}`, { ref: 'refs/heads/main' }] },
  ...['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs', '/docs/keelson-initializer.js'].map(
    (path): Case => ({ name: `GET ${path}`, access: 'public', scoped: false, ok: 200, request: () => ['GET', path] }),
  ),
];

function expected(c: Case, perm: Perm, scope: Scope): number {
  if (c.access === 'public') return c.ok;
  // no token opens the webhook: it needs the repository's signature
  if (c.access === 'webhook') return 401;
  if (c.access === 'admin-global') return perm === 'admin' && scope === 'global' ? c.ok : 403;
  if (c.access === 'authenticated') return c.ok;
  if (perm !== 'admin' && perm !== c.access) return 403;
  return c.scoped && scope === 'other' ? 404 : c.ok;
}

async function send(c: Case, token: string | undefined, headers: Record<string, string> = {}) {
  const [method, path, body] = await c.request();
  if (c.sse && token) {
    const stream = await openSse(h.baseUrl, path, token, headers);
    stream.close();
    return { status: stream.status, body: stream.status >= 400 ? JSON.parse(stream.raw()) : undefined };
  }
  return await h.request(method, path, { token, body, headers });
}

const CODES: Record<number, string> = { 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found' };

describe('permission matrix', () => {
  const grid = cases.flatMap((c) =>
    (['read', 'promote', 'admin'] as const).flatMap((perm) => (['global', 'own', 'other'] as const).map((scope) => [c.name, perm, scope, expected(c, perm, scope)] as const)),
  );

  it.each(grid)('%s with a %s token (%s) → %i', async (name, perm, scope, status) => {
    const c = cases.find((x) => x.name === name) as Case;
    const response = await send(c, tokens[`${perm}:${scope}`]);
    expect(response.status).toBe(status);
    if (status >= 400) {
      expect(response.body.error.code).toBe(c.access === 'webhook' ? 'webhook_unauthenticated' : CODES[status]);
      expect(response.body.error.message).toMatch(/\.$/);
    }
    if (status === 404) expect(JSON.stringify(response.body)).not.toContain('staging');
  });

  it.each(cases.filter((c) => c.access !== 'public' && c.access !== 'webhook').flatMap((c) => ['none', 'garbage', 'unknown', 'revoked'].map((who) => [c.name, who] as const)))(
    '%s without a valid token (%s) → 401',
    async (name, who) => {
      const c = cases.find((x) => x.name === name) as Case;
      const token = { none: undefined, garbage: 'not-a-token', unknown: `kls_${'A'.repeat(43)}`, revoked: tokens.revoked }[who];
      const response = await send(c, token);
      expect(response.status).toBe(401);
      expect(response.body.error.code).toBe('unauthenticated');
    },
  );

  it('the webhook opens with the repository signature and nothing else', async () => {
    const c = cases.find((x) => x.access === 'webhook') as Case;
    const [, path, body] = await c.request();
    const raw = JSON.stringify(body);
    const signature = `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(raw).digest('hex')}`;
    const signed = await h.request('POST', path, { body: raw, headers: { 'x-hub-signature-256': signature, 'x-github-event': 'push' } });
    expect(signed.status).toBe(c.ok);
    // a valid admin token does not stand in for the signature
    const withToken = await h.request('POST', path, { token: tokens['admin:global'], body: raw });
    expect(withToken.status).toBe(401);
    // the signature of one repository does not open another's webhook... unless they share the secret: they do not here
    await h.pg.query("update ops_repos set webhook_secret = 'another-secret-for-blog-0123' where name = 'blog-ops'");
    const crossed = await h.request('POST', `/api/hooks/ops-repos/${repos['blog-ops']}`, { body: raw, headers: { 'x-hub-signature-256': signature } });
    expect(crossed.status).toBe(401);
  });
});

describe('where a deployment goes: the body fields against the project policy', () => {
  const create = (token: string, body: Record<string, unknown>) =>
    h.request('POST', D, { token, body: { environment: `f${++counter}`, image_ref: 'x:1', ...body } });

  it.each([
    ["another project's namespace", { namespace: 'blog-prod' }, 'namespace', 'namespaces'],
    ['kube-system', { namespace: 'kube-system' }, 'namespace', 'namespaces'],
    ['the bare project name as namespace', { namespace: 'shop' }, 'namespace', 'namespaces'],
    ["another project's ops repo by name", { ops_repo: 'blog-ops' }, 'ops_repo', 'source_repos'],
    ["another project's ops repo by id", { ops_repo_id: 'blog-ops' }, 'ops_repo_id', 'source_repos'],
    ["another project's manifest path", { ops_repo: 'shop-ops', manifest_path: 'blog' }, 'manifest_path', 'manifest_paths'],
    ['a look-alike manifest path', { ops_repo: 'shop-ops', manifest_path: 'shopping/web' }, 'manifest_path', 'manifest_paths'],
  ])('%s is refused with 403 policy_violation naming the field and the rule, for every token that may create', async (_label, fields, field, rule) => {
    const body = { ...fields, ...('ops_repo_id' in fields ? { ops_repo_id: repos[fields.ops_repo_id as string] } : {}) };
    for (const token of [tokens['promote:own'], tokens['promote:global'], tokens['admin:global'], tokens['admin:own']]) {
      const before = Number((await h.pg.query('select count(*) from deployments').then((r) => r.rows[0].count)));
      const response = await create(token as string, body);
      expect(response.status).toBe(403);
      expect(response.body.error.code).toBe('policy_violation');
      expect(response.body.error.details).toEqual([{ field, message: `refused by the project policy (${rule})` }]);
      expect(response.body.error.message).toMatch(/shop/);
      expect(Number((await h.pg.query('select count(*) from deployments').then((r) => r.rows[0].count)))).toBe(before);
    }
  });

  it('what the policy allows is created', async () => {
    const response = await create(tokens['promote:own'] as string, { namespace: 'shop-qa', ops_repo: 'shop-ops', manifest_path: 'shop/web' });
    expect(response.status).toBe(202);
    expect(response.body).toMatchObject({ namespace: 'shop-qa', ops_repo_id: repos['shop-ops'], manifest_path: 'shop/web' });
  });

  it("another project's token cannot reach the project at all: 404 before any body field is read", async () => {
    const response = await create(tokens['promote:other'] as string, { namespace: 'shop-prod' });
    expect(response.status).toBe(404);
  });

  it('a row written by SQL outside the policy is not changed through the API', async () => {
    await h.insertDeployment('shop', 'sneaky', { namespace: 'blog-prod' });
    for (const [method, path, body] of [['PATCH', `${D}/sneaky`, { image_ref: 'x:2' }], ['POST', `${D}/sneaky/rollback`, undefined]] as const) {
      const response = await h.request(method, path, { token: tokens['admin:global'], body });
      expect(response.status).toBe(403);
      expect(response.body.error.details[0].field).toBe('namespace');
    }
    expect((await h.pg.query("select image_ref from deployments where environment = 'sneaky'")).rows[0].image_ref).toBe('registry.example/shop:1.0.0');
  });

  it('values_override is bounded in depth and size at the API', async () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 33; i++) deep = { d: deep };
    const response = await h.request('PATCH', `${D}/staging`, { token: tokens['promote:own'], body: { values_override: deep } });
    expect(response.status).toBe(400);
    expect(response.body.error.details[0]).toMatchObject({ field: 'values_override', message: expect.stringMatching(/32 levels/) });
    const big = await h.request('PATCH', `${D}/staging`, { token: tokens['promote:own'], body: { values_override: { x: 'y'.repeat(300 * 1024) } } });
    expect(big.status).toBe(400);
    expect(big.body.error.details[0].field).toBe('values_override');
  });
});

describe('tokens', () => {
  it('filters the cross-project list to the token\'s project', async () => {
    const scoped = await h.request('GET', '/api/deployments', { token: tokens['read:own'] });
    expect([...new Set(scoped.body.items.map((d: { project: string }) => d.project))]).toEqual(['shop']);
    const asked = await h.request('GET', '/api/deployments?project=blog', { token: tokens['read:own'] });
    expect(asked.body.items).toEqual([]);
    const all = await h.request('GET', '/api/deployments', { token: tokens['read:global'] });
    expect([...new Set(all.body.items.map((d: { project: string }) => d.project))].sort()).toEqual(['blog', 'shop']);
  });

  it('a refused write of another project changed nothing and left no audit row', async () => {
    const audit = await h.pg.query("select actor from audit_log where target = 'blog/prod'");
    expect(audit.rows).toEqual([]);
    const { rows } = await h.pg.query("select auto_rollback, desired_status from deployments where project = 'blog'");
    expect(rows).toEqual([{ auto_rollback: false, desired_status: 'active' }]);
  });

  it('records last_used_at of a used token', async () => {
    await h.request('GET', '/api/deployments', { token: tokens['read:global'] });
    const { sleepUntil } = await import('../helpers.ts');
    const row = await sleepUntil(async () => (await h.pg.query("select last_used_at from api_tokens where name = 'read-global'")).rows[0]?.last_used_at);
    expect(row).toBeInstanceOf(Date);
  });

  it('rejects a token after it is revoked', async () => {
    const token = await h.token(['deploy:read'], null, 'short-lived');
    expect((await h.request('GET', '/api/deployments', { token })).status).toBe(200);
    await revokeToken(h.t.db, 'short-lived');
    expect((await h.request('GET', '/api/deployments', { token })).status).toBe(401);
  });
});
