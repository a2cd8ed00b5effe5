// The permission matrix: no token, bad token, revoked token, wrong permission, other project.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeToken } from '../../src/api/tokens.ts';
import { startHarness, type Harness } from './harness.ts';

let h: Harness;
const tokens: Record<string, string> = {};
let repoId: string;

beforeAll(async () => {
  h = await startHarness();
  tokens.read = await h.token(['deploy:read'], null, 'reader');
  tokens.promote = await h.token(['deploy:promote'], null, 'promoter');
  tokens.admin = await h.token(['admin'], null, 'root');
  tokens.shopRead = await h.token(['deploy:read', 'deploy:promote'], 'shop', 'shop-ci');
  tokens.shopAdmin = await h.token(['admin'], 'shop', 'shop-admin');
  tokens.revoked = await h.token(['admin'], null, 'gone');
  await revokeToken(h.t.db, 'gone');
  tokens.unknown = `kls_${'A'.repeat(43)}`;
  tokens.garbage = 'not-a-token';
  await h.insertDeployment('shop', 'staging');
  await h.insertDeployment('blog', 'prod');
  repoId = (await h.pg.query(`insert into ops_repos (name, repo_url) values ('ops', 'https://git.example/ops.git') returning id`)).rows[0].id;
});

afterAll(async () => {
  expect(h.leaks(Object.values(tokens).filter((t) => t.startsWith('kls_') && !t.includes('AAAA')))).toEqual([]);
  await h.close();
});

type Who = 'none' | 'garbage' | 'unknown' | 'revoked' | 'read' | 'promote' | 'admin' | 'shopRead' | 'shopAdmin';
const requests = {
  listShop: ['GET', '/api/projects/shop/deployments', undefined],
  listBlog: ['GET', '/api/projects/blog/deployments', undefined],
  getShop: ['GET', '/api/projects/shop/deployments/staging', undefined],
  getBlog: ['GET', '/api/projects/blog/deployments/prod', undefined],
  historyBlog: ['GET', '/api/projects/blog/deployments/prod/history', undefined],
  eventsBlog: ['GET', '/api/projects/blog/deployments/prod/events', undefined],
  patchShop: ['PATCH', '/api/projects/shop/deployments/staging', { auto_rollback: true }],
  patchBlog: ['PATCH', '/api/projects/blog/deployments/prod', { auto_rollback: true }],
  createBlog: ['POST', '/api/projects/blog/deployments', { environment: 'new', image_ref: 'x:1' }],
  adminRepos: ['GET', '/api/admin/ops-repos', undefined],
  adminRepo: ['GET', '/api/admin/ops-repos/:repo', undefined],
} as const;

// expected status per (request, who)
const matrix: Array<[keyof typeof requests, Who, number]> = [
  ...(['none', 'garbage', 'unknown', 'revoked'] as const).flatMap((who) =>
    (Object.keys(requests) as Array<keyof typeof requests>).map((r) => [r, who, 401] as [keyof typeof requests, Who, number]),
  ),
  ['listShop', 'read', 200],
  ['getShop', 'read', 200],
  ['patchShop', 'read', 403],
  ['createBlog', 'read', 403],
  ['adminRepos', 'read', 403],
  ['getShop', 'promote', 403],
  ['patchShop', 'promote', 200],
  ['adminRepos', 'promote', 403],
  ['getBlog', 'admin', 200],
  ['patchBlog', 'admin', 200],
  ['adminRepos', 'admin', 200],
  ['adminRepo', 'admin', 200],
  ['listShop', 'shopRead', 200],
  ['getShop', 'shopRead', 200],
  ['listBlog', 'shopRead', 404],
  ['getBlog', 'shopRead', 404],
  ['historyBlog', 'shopRead', 404],
  ['eventsBlog', 'shopRead', 404],
  ['patchBlog', 'shopRead', 404],
  ['createBlog', 'shopRead', 404],
  ['adminRepos', 'shopRead', 403],
  ['getBlog', 'shopAdmin', 404],
  ['patchShop', 'shopAdmin', 200],
  ['adminRepos', 'shopAdmin', 403],
];

describe('permission matrix', () => {
  it.each(matrix)('%s as %s → %i', async (name, who, status) => {
    const [method, rawPath, body] = requests[name];
    const path = rawPath.replace(':repo', repoId);
    const response = await h.request(method, path, { token: who === 'none' ? undefined : tokens[who], body });
    expect(response.status).toBe(status);
    if (status >= 400) {
      expect(response.body.error.code).toBe({ 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found' }[status]);
      expect(typeof response.body.error.message).toBe('string');
    }
    if (status === 401) expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    if (status === 404) expect(response.text).not.toContain('blog/prod');
  });

  it('nothing of another project leaks: a refused write changed nothing', async () => {
    const { rows } = await h.pg.query("select auto_rollback from deployments where project = 'blog' and environment = 'prod'");
    // only the admin's PATCH above may have set it; the project-scoped token's 404 did not
    const audit = await h.pg.query("select actor from audit_log where target = 'blog/prod'");
    expect(audit.rows.map((r) => r.actor)).toEqual(['root']);
    expect(rows[0]).toEqual({ auto_rollback: true });
    const created = await h.pg.query("select 1 from deployments where project = 'blog' and environment = 'new'");
    expect(created.rows).toHaveLength(0);
  });

  it('filters the cross-project list to the token\'s project', async () => {
    const scoped = await h.request('GET', '/api/deployments', { token: tokens.shopRead });
    expect(scoped.body.items.map((d: { project: string }) => d.project)).toEqual(['shop']);
    const asked = await h.request('GET', '/api/deployments?project=blog', { token: tokens.shopRead });
    expect(asked.body.items).toEqual([]);
    const all = await h.request('GET', '/api/deployments', { token: tokens.read });
    expect(all.body.items.map((d: { project: string }) => d.project).sort()).toEqual(['blog', 'shop']);
  });

  it('records last_used_at of a used token', async () => {
    await h.request('GET', '/api/deployments', { token: tokens.read });
    const row = await import('../helpers.ts').then(({ sleepUntil }) =>
      sleepUntil(async () => (await h.pg.query("select last_used_at from api_tokens where name = 'reader'")).rows[0]?.last_used_at),
    );
    expect(row).toBeInstanceOf(Date);
  });

  it('rejects a token after it is revoked', async () => {
    const token = await h.token(['deploy:read'], null, 'short-lived');
    expect((await h.request('GET', '/api/deployments', { token })).status).toBe(200);
    await revokeToken(h.t.db, 'short-lived');
    expect((await h.request('GET', '/api/deployments', { token })).status).toBe(401);
  });
});
