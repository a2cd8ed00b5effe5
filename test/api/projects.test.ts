// Project policies through the admin API: create, read, change, reset to defaults and delete,
// each audited; patterns the rules refuse are 400 naming the field; a project's own tokens read
// the policy in force for them; a change applies to the next API write at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.ts';

let h: Harness;
let admin: string;
let shop: string;

beforeAll(async () => {
  h = await startHarness();
  admin = await h.token(['admin'], null, 'root');
  shop = await h.token(['deploy:read', 'deploy:promote'], 'shop', 'shop-ci');
});

afterAll(async () => {
  expect(h.leaks([admin, shop])).toEqual([]);
  await h.close();
});

const audit = async (action: string) => (await h.pg.query('select actor, target, payload from audit_log where action = $1 order by id', [action])).rows;

describe('project policies', () => {
  it('a project without a row has the default policy, which its tokens can read', async () => {
    const response = await h.request('GET', '/api/projects/shop/policy', { token: shop });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      project: 'shop',
      policy: {
        namespaces: ['shop-*'],
        source_repos: ['*'],
        manifest_paths: ['shop', 'shop/**'],
        namespace_resource_whitelist: [],
        namespace_resource_blacklist: ['rbac.authorization.k8s.io/*'],
        cluster_resource_whitelist: [],
        allow_adoption: false,
        source: 'default',
      },
    });
    expect((await h.request('GET', '/api/projects/blog/policy', { token: shop })).status).toBe(404);
    expect((await h.request('GET', '/api/admin/projects/shop', { token: admin })).status).toBe(404);
  });

  it('creates a policy: 201, Location, the row with null for defaults and the effective policy; audited', async () => {
    const response = await h.request('POST', '/api/admin/projects', {
      token: admin,
      body: { name: 'shop', description: 'The shop team', namespaces: ['shop-*', 'shop', '!shop-secret'], cluster_resource_whitelist: ['core/Namespace'] },
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toBe('/api/admin/projects/shop');
    expect(response.body).toMatchObject({
      name: 'shop',
      description: 'The shop team',
      namespaces: ['shop-*', 'shop', '!shop-secret'],
      source_repos: null,
      cluster_resource_whitelist: ['core/Namespace'],
      allow_adoption: false,
      effective: { namespaces: ['shop-*', 'shop', '!shop-secret'], source_repos: ['*'], cluster_resource_whitelist: ['core/Namespace'], source: 'row' },
    });
    expect(await audit('project.create')).toEqual([{ actor: 'root', target: 'project/shop', payload: expect.objectContaining({ name: 'shop', namespaces: ['shop-*', 'shop', '!shop-secret'] }) }]);
    const again = await h.request('POST', '/api/admin/projects', { token: admin, body: { name: 'shop' } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('project_exists');
  });

  it('applies to the next API write at once', async () => {
    const denied = await h.request('POST', '/api/projects/shop/deployments', { token: shop, body: { environment: 'x', image_ref: 'x:1', namespace: 'shop-secret' } });
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toMatch(/Namespace shop-secret is outside the policy: project shop may deploy only into namespaces matching shop-\*, shop, !shop-secret\./);
    const bare = await h.request('POST', '/api/projects/shop/deployments', { token: shop, body: { environment: 'x', image_ref: 'x:1', namespace: 'shop' } });
    expect(bare.status).toBe(202);
  });

  it('changes a policy, and null returns a field to its default', async () => {
    const changed = await h.request('PATCH', '/api/admin/projects/shop', { token: admin, body: { source_repos: ['shop-*'], allow_adoption: true } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ source_repos: ['shop-*'], allow_adoption: true, effective: { source_repos: ['shop-*'], allow_adoption: true } });
    const reset = await h.request('PATCH', '/api/admin/projects/shop', { token: admin, body: { namespaces: null } });
    expect(reset.body).toMatchObject({ namespaces: null, effective: { namespaces: ['shop-*'] } });
    const read = await h.request('GET', '/api/projects/shop/policy', { token: shop });
    expect(read.body.policy).toMatchObject({ namespaces: ['shop-*'], source_repos: ['shop-*'], allow_adoption: true, source: 'row' });
    expect((await audit('project.update')).map((r) => r.payload)).toEqual([{ source_repos: ['shop-*'], allow_adoption: true }, { namespaces: null }]);
  });

  it.each([
    ['a namespace pattern with a slash', { namespaces: ['shop/x'] }, 'namespaces.0'],
    ['a manifest path escaping the repo', { manifest_paths: ['../x'] }, 'manifest_paths.0'],
    ['a kind without a group', { cluster_resource_whitelist: ['ClusterRole'] }, 'cluster_resource_whitelist.0'],
    ['a string instead of a list', { source_repos: 'shop-*' }, 'source_repos'],
    ['101 patterns', { namespaces: Array.from({ length: 101 }, (_, i) => `n${i}`) }, 'namespaces'],
    ['a description with a bidi control', { description: 'shop \u202e' }, 'description'],
    ['an unknown field', { owners: ['me'] }, 'owners'],
  ])('refuses %s with 400 naming the field, and changes nothing', async (_label, body, field) => {
    const before = (await h.pg.query("select * from projects where name = 'shop'")).rows[0];
    const response = await h.request('PATCH', '/api/admin/projects/shop', { token: admin, body });
    expect(response.status).toBe(400);
    expect(response.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
    expect((await h.pg.query("select * from projects where name = 'shop'")).rows[0]).toEqual(before);
  });

  it('lists rows, and deleting one returns the project to the default policy', async () => {
    await h.request('POST', '/api/admin/projects', { token: admin, body: { name: 'blog' } });
    const list = await h.request('GET', '/api/admin/projects', { token: admin });
    expect(list.body.items.map((p: { name: string }) => p.name)).toEqual(['blog', 'shop']);
    expect((await h.request('DELETE', '/api/admin/projects/shop', { token: admin })).status).toBe(204);
    expect((await h.request('GET', '/api/projects/shop/policy', { token: shop })).body.policy.source).toBe('default');
    expect((await h.request('DELETE', '/api/admin/projects/shop', { token: admin })).status).toBe(404);
    expect(await audit('project.delete')).toEqual([{ actor: 'root', target: 'project/shop', payload: {} }]);
  });

  it('a project-scoped admin cannot widen its own policy', async () => {
    const shopAdmin = await h.token(['admin'], 'shop', 'shop-admin');
    const response = await h.request('POST', '/api/admin/projects', { token: shopAdmin, body: { name: 'shop', cluster_resource_whitelist: ['*/*'] } });
    expect(response.status).toBe(403);
    expect((await h.pg.query("select 1 from projects where name = 'shop'")).rows).toHaveLength(0);
  });
});
