// Push webhooks end to end: a real git remote, the real ops repo syncer behind the API. A
// GitHub-signed and a GitLab-token push each trigger a fetch of the new commit; wrong, missing or
// replayed-for-another-body signatures are refused and fetch nothing; no API token is involved.
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { createOpsRepoManager } from '../../src/opsrepo/opsRepoManager.ts';
import { sleepUntil } from '../helpers.ts';
import { createOrigin, removeDir, tempDir, type OriginRepo } from '../opsrepo/gitFixtures.ts';
import { startHarness, type Harness } from './harness.ts';

const SECRET = 'push-webhook-secret-4f0e9a7c1d2b';
let h: Harness;
let tmp: string;
let origin: OriginRepo;
let repoId: string;
const syncs: string[] = [];

beforeAll(async () => {
  tmp = tempDir('webhooks');
  origin = createOrigin(tmp, 'ops');
  origin.commit({ 'shop/deployment.yaml': 'kind: ConfigMap\n' });
  // the syncer needs the harness's database, the harness the syncer: wired through a holder
  const holder: { manager?: ReturnType<typeof createOpsRepoManager> } = {};
  h = await startHarness({
    opsRepos: {
      fetch: async (id, options) => {
        syncs.push(id);
        return await (holder.manager as ReturnType<typeof createOpsRepoManager>).fetch(id, options);
      },
    },
  });
  const manager = createOpsRepoManager({ db: h.t.db, dataDir: path.join(tmp, 'data'), log: createLogger({ level: 'silent', format: 'json' }), allowFileRepos: true });
  holder.manager = manager;
  repoId = (await h.pg.query(`insert into ops_repos (name, repo_url, sync_interval_s, webhook_secret) values ('ops', $1, 3600, $2) returning id`, [origin.url, SECRET])).rows[0].id;
  await manager.fetch(repoId);
});

afterAll(async () => {
  expect(h.leaks([SECRET])).toEqual([]);
  await h.close();
  removeDir(tmp);
});

const hook = () => `/api/hooks/ops-repos/${repoId}`;
const lastSha = async () => (await h.pg.query('select last_sha from ops_repos where id = $1', [repoId])).rows[0].last_sha as string;
const github = (body: string, secret = SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
const push = (ref = 'refs/heads/main') => JSON.stringify({ ref, after: 'x', commits: [{ message: 'hello ✓' }] });

describe('push webhooks', () => {
  it('a GitHub-signed push fetches the new commit, with no token', async () => {
    const sha = origin.commit({ 'shop/deployment.yaml': 'kind: ConfigMap # v2\n' });
    const body = push();
    const response = await h.request('POST', hook(), { body, headers: { 'x-github-event': 'push', 'x-hub-signature-256': github(body) } });
    expect(response.status).toBe(202);
    expect(response.body).toEqual({ syncing: true, reason: 'a push to refs/heads/main' });
    await sleepUntil(async () => (await lastSha()) === sha, { message: 'the pushed commit was fetched' });
    const audit = await h.pg.query("select actor, target, payload from audit_log where action = 'ops_repo.webhook'");
    expect(audit.rows).toEqual([{ actor: 'webhook:github', target: 'ops-repo/ops', payload: { source: 'github', reason: 'a push to refs/heads/main' } }]);
  });

  it('a GitLab push with the secret token fetches the new commit', async () => {
    const sha = origin.commit({ 'shop/deployment.yaml': 'kind: ConfigMap # v3\n' });
    const response = await h.request('POST', hook(), { body: push(), headers: { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': SECRET } });
    expect(response.status).toBe(202);
    await sleepUntil(async () => (await lastSha()) === sha, { message: 'the pushed commit was fetched' });
  });

  it('GitHub form-encoded payloads are verified over the raw bytes too', async () => {
    const body = `payload=${encodeURIComponent(push('refs/heads/other'))}`;
    const response = await h.request('POST', hook(), {
      body,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-github-event': 'push', 'x-hub-signature-256': github(body) },
    });
    expect(response.status).toBe(202);
    expect(response.body).toEqual({ syncing: false, reason: 'the push was to refs/heads/other, not to refs/heads/main' });
  });

  it.each([
    ['no signature at all', {}, /neither X-Hub-Signature-256/],
    ['a signature with the wrong secret', { 'x-hub-signature-256': github(push(), 'not-the-secret-at-all') }, /does not match/],
    ['a signature of another body', { 'x-hub-signature-256': github(push('refs/heads/x')) }, /does not match/],
    ['a malformed signature', { 'x-hub-signature-256': 'sha1=abc' }, /sha256=<64 hex digits>/],
    ['a GitLab token that is wrong', { 'x-gitlab-token': `${SECRET}x` }, /X-Gitlab-Token does not match/],
    ['a GitLab token that is a prefix', { 'x-gitlab-token': SECRET.slice(0, 10) }, /X-Gitlab-Token does not match/],
  ])('refuses %s with 401 and fetches nothing', async (_label, headers, message) => {
    const before = syncs.length;
    const response = await h.request('POST', hook(), { body: push(), headers: { 'x-github-event': 'push', ...headers } });
    expect(response.status).toBe(401);
    expect(response.body.error).toMatchObject({ code: 'webhook_unauthenticated', message: expect.stringMatching(message) });
    expect(syncs.length).toBe(before);
  });

  it('answers a GitHub ping, ignores other events and pushes to other branches', async () => {
    const ping = JSON.stringify({ zen: 'hi' });
    expect((await h.request('POST', hook(), { body: ping, headers: { 'x-github-event': 'ping', 'x-hub-signature-256': github(ping) } })).status).toBe(200);
    const issue = JSON.stringify({ action: 'opened' });
    const ignored = await h.request('POST', hook(), { body: issue, headers: { 'x-github-event': 'issues', 'x-hub-signature-256': github(issue) } });
    expect(ignored.body).toEqual({ syncing: false, reason: 'the issues event is not a push' });
    const tag = await h.request('POST', hook(), { body: push('refs/tags/v1'), headers: { 'x-gitlab-event': 'Tag Push Hook', 'x-gitlab-token': SECRET } });
    expect(tag.body.syncing).toBe(false);
  });

  it('a repository without a webhook secret refuses webhooks (403), and an unknown one is 404', async () => {
    const other = (await h.pg.query(`insert into ops_repos (name, repo_url) values ('nosecret', 'https://git.example/n.git') returning id`)).rows[0].id;
    const body = push();
    const response = await h.request('POST', `/api/hooks/ops-repos/${other}`, { body, headers: { 'x-hub-signature-256': github(body) } });
    expect(response.status).toBe(403);
    expect(response.body.error.code).toBe('webhook_not_configured');
    expect((await h.request('POST', '/api/hooks/ops-repos/00000000-0000-4000-8000-000000000000', { body, headers: { 'x-hub-signature-256': github(body) } })).status).toBe(404);
  });
});
