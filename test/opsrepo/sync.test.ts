import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TerminalError } from '../../src/errors.ts';
import { createOrigin, git } from './gitFixtures.ts';
import { createHarness, rejection, type Harness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h.close();
});

describe('ops repo sync', () => {
  it('clones on first sync and records last_sha and last_synced_at', async () => {
    const origin = createOrigin(h.tmp, 'first');
    const sha = origin.commit({ 'app/deployment.yaml': 'kind: Deployment\n' });
    const id = await h.insertRepo({ name: 'first', repo_url: origin.url, path: 'app' });

    const result = await h.manager.fetch(id);

    expect(result).toEqual({ repoId: id, name: 'first', dir: path.join(h.dataDir, 'ops-repos', 'first'), path: 'app', sha, fetched: true });
    expect(path.isAbsolute(result.dir)).toBe(true);
    expect(readFileSync(path.join(result.dir, 'app/deployment.yaml'), 'utf8')).toBe('kind: Deployment\n');
    const row = await h.getRepo(id);
    expect(row.last_sha).toBe(sha);
    expect(row.last_synced_at).not.toBeNull();
    expect(row.last_error).toBeNull();
    // No temp clone dirs left beside the checkout.
    expect(readdirSync(path.join(h.dataDir, 'ops-repos')).filter((e) => e.startsWith('.'))).toEqual([]);
  });

  it('does not fetch before sync_interval_s has elapsed unless forced', async () => {
    const origin = createOrigin(h.tmp, 'slow');
    const first = origin.commit({ 'a.yaml': 'v: 1\n' });
    const id = await h.insertRepo({ name: 'slow', repo_url: origin.url, sync_interval_s: 3600 });
    expect((await h.manager.fetch(id)).sha).toBe(first);
    const syncedAt = (await h.getRepo(id)).last_synced_at;

    const second = origin.commit({ 'a.yaml': 'v: 2\n' });
    const skipped = await h.manager.fetch(id);
    expect(skipped).toMatchObject({ sha: first, fetched: false });
    expect(readFileSync(path.join(skipped.dir, 'a.yaml'), 'utf8')).toBe('v: 1\n');
    expect((await h.getRepo(id)).last_synced_at).toBe(syncedAt);
    expect(await h.fetchCount('slow')).toBe(1);

    const forced = await h.manager.fetch(id, { force: true });
    expect(forced).toMatchObject({ sha: second, fetched: true });
    expect(readFileSync(path.join(forced.dir, 'a.yaml'), 'utf8')).toBe('v: 2\n');
    expect((await h.getRepo(id)).last_sha).toBe(second);
  });

  it('reuses any checkout when asked to (the renderer), cloning only when there is none', async () => {
    const origin = createOrigin(h.tmp, 'reuse');
    const first = origin.commit({ 'a.yaml': 'v: 1\n' });
    const id = await h.insertRepo({ name: 'reuse', repo_url: origin.url, sync_interval_s: 0 });
    // no checkout yet: cloned
    expect(await h.manager.checkout(id)).toMatchObject({ sha: first, fetched: true });
    origin.commit({ 'a.yaml': 'v: 2\n' });
    // interval 0 would fetch, but reuse takes the checkout as it is
    const reused = await h.manager.checkout(id);
    expect(reused).toMatchObject({ sha: first, fetched: false });
    expect(await h.fetchCount('reuse')).toBe(1);
    // a reuse caller joins a fetching flight (fresher than it needs); a plain one never joins a
    // reuse flight (which would skip its fetch)
    const [plain, joined] = await Promise.all([h.manager.fetch(id), h.manager.checkout(id)]);
    expect(plain).toMatchObject({ fetched: true });
    expect(plain.sha).not.toBe(first);
    expect(joined).toEqual(plain);
    const [reusing, fetching] = await Promise.all([h.manager.checkout(id), h.manager.fetch(id)]);
    expect(reusing.fetched).toBe(false);
    expect(fetching.fetched).toBe(true);
    expect(await h.fetchCount('reuse')).toBe(3);
  });

  it('fetches on every sync when sync_interval_s is 0', async () => {
    const origin = createOrigin(h.tmp, 'eager');
    origin.commit({ 'a.yaml': 'v: 1\n' });
    const id = await h.insertRepo({ name: 'eager', repo_url: origin.url, sync_interval_s: 0 });
    await h.manager.fetch(id);
    const second = origin.commit({ 'a.yaml': 'v: 2\n' });
    expect(await h.manager.fetch(id)).toMatchObject({ sha: second, fetched: true });
    expect((await h.getRepo(id)).last_sha).toBe(second);
  });

  it('fetches despite the interval when the row now names another branch', async () => {
    const origin = createOrigin(h.tmp, 'switch');
    const onMain = origin.commit({ 'a.yaml': 'branch: main\n' });
    git(origin.dir, 'checkout', '--quiet', '-b', 'release');
    const onRelease = origin.commit({ 'a.yaml': 'branch: release\n' });
    const id = await h.insertRepo({ name: 'switch', repo_url: origin.url, sync_interval_s: 3600 });
    expect((await h.manager.fetch(id)).sha).toBe(onMain);
    await h.database.db.query(sql.unsafe`update ops_repos set branch = 'release' where id = ${id}`);
    const result = await h.manager.fetch(id);
    expect(result).toMatchObject({ sha: onRelease, fetched: true });
    expect(readFileSync(path.join(result.dir, 'a.yaml'), 'utf8')).toBe('branch: release\n');
  });

  it('follows a force-push with a hard reset, never a merge', async () => {
    const origin = createOrigin(h.tmp, 'rewrite');
    origin.commit({ 'base.yaml': 'base\n' });
    const doomed = origin.commit({ 'doomed.yaml': 'doomed\n' });
    const id = await h.insertRepo({ name: 'rewrite', repo_url: origin.url });
    const before = await h.manager.fetch(id);
    expect(before.sha).toBe(doomed);

    git(origin.dir, 'reset', '--quiet', '--hard', 'HEAD~1');
    const rewritten = origin.commit({ 'other.yaml': 'other\n' }, 'rewritten history');
    const after = await h.manager.fetch(id, { force: true });

    expect(after.sha).toBe(rewritten);
    expect(git(after.dir, 'rev-parse', 'HEAD')).toBe(rewritten);
    expect(existsSync(path.join(after.dir, 'doomed.yaml'))).toBe(false);
    expect(readFileSync(path.join(after.dir, 'other.yaml'), 'utf8')).toBe('other\n');
    // A merge would have made the dropped commit an ancestor of HEAD.
    expect(git(after.dir, 'log', '--format=%H').split('\n')).not.toContain(doomed);
    expect(git(after.dir, 'status', '--porcelain')).toBe('');
  });

  it('removes files the commit does not have, so stray files are never rendered', async () => {
    const origin = createOrigin(h.tmp, 'stray');
    origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: 'stray', repo_url: origin.url });
    const first = await h.manager.fetch(id);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(first.dir, 'stray.yaml'), 'kind: Secret\n');
    writeFileSync(path.join(first.dir, 'a.yaml'), 'edited by hand\n');
    await h.manager.fetch(id, { force: true });
    expect(existsSync(path.join(first.dir, 'stray.yaml'))).toBe(false);
    expect(readFileSync(path.join(first.dir, 'a.yaml'), 'utf8')).toBe('a\n');
  });

  it('is terminal when the branch does not exist, on first clone and after', async () => {
    const origin = createOrigin(h.tmp, 'nobranch');
    const sha = origin.commit({ 'a.yaml': 'a\n' });
    const missing = await h.insertRepo({ name: 'nobranch', repo_url: origin.url, branch: 'does-not-exist' });
    const first = await rejection(h.manager.fetch(missing));
    expect(first).toBeInstanceOf(TerminalError);
    expect(first.code).toBe('repo_branch_missing');
    expect(first.message).toContain('"does-not-exist"');
    expect(existsSync(path.join(h.dataDir, 'ops-repos', 'nobranch'))).toBe(false);
    expect((await h.getRepo(missing)).last_error).toContain('does-not-exist');

    // The row's branch changes to one that does not exist: terminal, checkout kept.
    await h.database.db.query(sql.unsafe`update ops_repos set branch = 'main' where id = ${missing}`);
    expect((await h.manager.fetch(missing)).sha).toBe(sha);
    expect((await h.getRepo(missing)).last_error).toBeNull();
    await h.database.db.query(sql.unsafe`update ops_repos set branch = 'gone' where id = ${missing}`);
    const later = await rejection(h.manager.fetch(missing));
    expect(later).toBeInstanceOf(TerminalError);
    expect(later.code).toBe('repo_branch_missing');
    expect(git(path.join(h.dataDir, 'ops-repos', 'nobranch'), 'rev-parse', 'HEAD')).toBe(sha);
    expect((await h.getRepo(missing)).last_sha).toBe(sha);
  });

  it.each([['-foo'], ['a..b'], ['with space'], ['x~1']])('refuses the branch name %j as terminal', async (branch) => {
    // the database refuses these rows too (test/tenancy/bothDoors.test.ts); the syncer must on its own
    await h.dropRowChecks();
    const origin = createOrigin(h.tmp, `badbranch-${branch.length}`);
    origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: `badbranch-${Buffer.from(branch).toString('hex')}`, repo_url: origin.url, branch });
    const error = await rejection(h.manager.fetch(id));
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.code).toBe('repo_branch_invalid');
  });

  it('is terminal for an unknown repo id', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      const error = await rejection(h.manager.fetch(id));
      expect(error).toBeInstanceOf(TerminalError);
      expect(error.code).toBe('repo_not_registered');
    }
  });
});
