// Ops repo admin endpoints: CRUD, repo_url validation, credential redaction, the write-only
// webhook secret, file:// only where the operator allows it, the admin sync.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.ts';

const GIT_SECRET = 'glpat-s3cr3t-value';
const WEBHOOK_SECRET = 'whsec-0123456789abcdef-never-shown';
let h: Harness;
let bare: Harness;
let admin: string;
let bareAdmin: string;
const syncCalls: Array<[string, unknown]> = [];
let syncFails = false;

beforeAll(async () => {
  h = await startHarness({
    allowFileRepos: true,
    opsRepos: {
      fetch: async (id, options) => {
        syncCalls.push([id, options]);
        if (syncFails) throw new Error(`fatal: unable to access 'https://deploy:${GIT_SECRET}@git.example/ops.git/': Could not resolve host`);
        return { sha: 'a'.repeat(40), fetched: true };
      },
    },
  });
  bare = await startHarness();
  admin = await h.token(['admin'], null, 'admin');
  bareAdmin = await bare.token(['admin'], null, 'admin');
});

afterAll(async () => {
  expect(h.leaks([GIT_SECRET, WEBHOOK_SECRET, admin])).toEqual([]);
  expect(bare.leaks([bareAdmin])).toEqual([]);
  await h.close();
  await bare.close();
});

async function audit(action: string) {
  return (await h.pg.query('select actor, target, payload from audit_log where action = $1 order by id', [action])).rows;
}

describe('ops repos', () => {
  let id: string;

  it('creates one with credentials in repo_url, never returning them', async () => {
    const response = await h.request('POST', '/api/admin/ops-repos', {
      token: admin,
      body: { name: 'ops', repo_url: `https://deploy:${GIT_SECRET}@git.example/ops.git`, branch: 'release', path: 'clusters/prod', sync_interval_s: 30 },
    });
    expect(response.status).toBe(201);
    id = response.body.id;
    expect(response.headers.get('location')).toBe(`/api/admin/ops-repos/${id}`);
    expect(response.body).toMatchObject({ name: 'ops', repo_url: 'https://deploy:***@git.example/ops.git', branch: 'release', path: 'clusters/prod', sync_interval_s: 30 });
    const stored = await h.pg.query('select repo_url from ops_repos where id = $1', [id]);
    expect(stored.rows[0].repo_url).toContain(GIT_SECRET);
    const rows = await audit('ops_repo.create');
    expect(rows).toEqual([{ actor: 'admin', target: 'ops-repo/ops', payload: expect.objectContaining({ repo_url: 'https://deploy:***@git.example/ops.git' }) }]);
  });

  it('lists and gets it redacted', async () => {
    const list = await h.request('GET', '/api/admin/ops-repos', { token: admin });
    expect(list.body.items).toEqual([expect.objectContaining({ id, repo_url: 'https://deploy:***@git.example/ops.git' })]);
    const one = await h.request('GET', `/api/admin/ops-repos/${id}`, { token: admin });
    expect(one.status).toBe(200);
    expect(one.body.repo_url).toBe('https://deploy:***@git.example/ops.git');
  });

  it('redacts a token-only user name too', async () => {
    const response = await h.request('PATCH', `/api/admin/ops-repos/${id}`, { token: admin, body: { repo_url: `https://${GIT_SECRET}@git.example/ops.git` } });
    expect(response.status).toBe(200);
    expect(response.body.repo_url).toBe('https://***@git.example/ops.git');
    const rows = await audit('ops_repo.update');
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(GIT_SECRET);
  });

  it.each([
    ['an ext:: remote helper', { repo_url: 'ext::sh%20-c%20touch%20/tmp/pwned' }, 'repo_url', /runs a git remote helper/],
    ['another <transport>:: form', { repo_url: 'fd::17' }, 'repo_url', /runs a git remote helper/],
    ['a leading dash', { repo_url: '--upload-pack=touch /tmp/x' }, 'repo_url', /starts with "-"/],
    ['an unknown scheme', { repo_url: 'ftp://git.example/x.git' }, 'repo_url', /"ftp" transport is not allowed.*Use an https:\/\//],
    // the syncer would refuse it at every sync: refused when registered instead
    ['a plain local path', { repo_url: '/srv/git/ops.git' }, 'repo_url', /plain local paths need file:\/\//],
    ['a branch starting with -', { branch: '-f' }, 'branch', /branch name/],
    ['a path escaping the repo', { path: '../../etc' }, 'path', /relative path/],
    ['a sync interval out of range', { sync_interval_s: 100000 }, 'sync_interval_s', /0 to 86400/],
    ['a bad name', { name: 'Ops Repo' }, 'name', /DNS label/],
  ])('refuses %s with 400 naming the field', async (_label, patch, field, message) => {
    const response = await h.request('POST', '/api/admin/ops-repos', { token: admin, body: { name: 'other', repo_url: 'https://git.example/o.git', ...patch } });
    expect(response.status).toBe(400);
    const detail = response.body.error.details.find((d: { field: string }) => d.field === field);
    expect(detail?.message).toMatch(message);
    expect((await h.pg.query("select 1 from ops_repos where name <> 'ops'")).rows).toHaveLength(0);
  });

  it('keeps the webhook secret write-only: stored, never returned, audited as "set"', async () => {
    const response = await h.request('PATCH', `/api/admin/ops-repos/${id}`, { token: admin, body: { webhook_secret: WEBHOOK_SECRET } });
    expect(response.status).toBe(200);
    expect(response.body.webhook_secret_set).toBe(true);
    expect(JSON.stringify(response.body)).not.toContain(WEBHOOK_SECRET);
    expect((await h.pg.query('select webhook_secret from ops_repos where id = $1', [id])).rows[0].webhook_secret).toBe(WEBHOOK_SECRET);
    const rows = await audit('ops_repo.update');
    expect(rows.at(-1).payload).toEqual({ webhook_secret: 'set' });
    const listed = await h.request('GET', '/api/admin/ops-repos', { token: admin });
    expect(listed.body.items[0].webhook_secret_set).toBe(true);
    const short = await h.request('PATCH', `/api/admin/ops-repos/${id}`, { token: admin, body: { webhook_secret: 'short' } });
    expect(short.status).toBe(400);
    expect(short.body.error.details[0].field).toBe('webhook_secret');
  });

  it('accepts ssh, scp-like and file forms (file:// where the operator allows it)', async () => {
    for (const [name, url] of [['ssh', 'ssh://git@git.example/ops.git'], ['scp', 'git@git.example:org/ops.git'], ['local', 'file:///srv/git/ops.git']]) {
      const response = await h.request('POST', '/api/admin/ops-repos', { token: admin, body: { name, repo_url: url } });
      expect(response.status).toBe(201);
      expect(response.body.repo_url).toBe(url);
      expect((await h.request('DELETE', `/api/admin/ops-repos/${response.body.id}`, { token: admin })).status).toBe(204);
    }
  });

  it('refuses file:// by default, naming the setting, and creates nothing', async () => {
    const response = await bare.request('POST', '/api/admin/ops-repos', { token: bareAdmin, body: { name: 'local', repo_url: 'file:///srv/git/ops.git' } });
    expect(response.status).toBe(400);
    expect(response.body.error.details).toEqual([{ field: 'repo_url', message: expect.stringContaining('KEELSON_ALLOW_FILE_REPOS') }]);
    expect(response.body.error.message).toMatch(/file:\/\/ URLs reach any path/);
    expect((await bare.pg.query("select 1 from ops_repos where name = 'local'")).rows).toHaveLength(0);
  });

  it('answers 409 for a taken name, 404 for an unknown id and 400 for a malformed id', async () => {
    expect((await h.request('POST', '/api/admin/ops-repos', { token: admin, body: { name: 'ops', repo_url: 'https://x.example/a.git' } })).body.error.code).toBe('ops_repo_exists');
    expect((await h.request('GET', '/api/admin/ops-repos/00000000-0000-4000-8000-000000000000', { token: admin })).status).toBe(404);
    const bad = await h.request('GET', '/api/admin/ops-repos/123', { token: admin });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].field).toBe('path.id');
  });

  it('syncs through the injected syncer with force', async () => {
    const response = await h.request('POST', `/api/admin/ops-repos/${id}/sync`, { token: admin });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ sha: 'a'.repeat(40), fetched: true });
    expect(syncCalls).toEqual([[id, { force: true }]]);
    expect(await audit('ops_repo.sync')).toHaveLength(1);
  });

  it('reports a failed sync as 502 with the credentials redacted', async () => {
    syncFails = true;
    try {
      const response = await h.request('POST', `/api/admin/ops-repos/${id}/sync`, { token: admin });
      expect(response.status).toBe(502);
      expect(response.body.error.message).toContain('https://deploy:***@git.example');
    } finally {
      syncFails = false;
    }
  });

  it('answers 503 with a clear message when the process has no syncer', async () => {
    const created = await bare.request('POST', '/api/admin/ops-repos', { token: bareAdmin, body: { name: 'ops', repo_url: 'https://git.example/ops.git' } });
    const response = await bare.request('POST', `/api/admin/ops-repos/${created.body.id}/sync`, { token: bareAdmin });
    expect(response.status).toBe(503);
    expect(response.body.error.code).toBe('sync_unavailable');
    expect(response.body.error.message).toMatch(/no ops repo syncer/);
  });

  it('refuses to delete a repo in use (409), then deletes it once unused (204) with an audit row', async () => {
    const deploymentId = await h.insertDeployment('shop', 'staging', { ops_repo_id: id });
    const refused = await h.request('DELETE', `/api/admin/ops-repos/${id}`, { token: admin });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toContain('shop/staging');
    await h.pg.query('update deployments set ops_repo_id = null where id = $1', [deploymentId]);
    const deleted = await h.request('DELETE', `/api/admin/ops-repos/${id}`, { token: admin });
    expect(deleted.status).toBe(204);
    expect((await h.pg.query('select 1 from ops_repos where id = $1', [id])).rows).toHaveLength(0);
    expect((await audit('ops_repo.delete')).map((r) => r.target)).toContain('ops-repo/ops');
  });
});
