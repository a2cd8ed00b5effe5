// Limits on what a repository can cost keelson: file:// only where the operator allows it, a size
// limit measured while git writes (clone and fetch), and an overall deadline that holds even when
// git's own inactivity timeout would wait on.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TerminalError, TransientError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { createOpsRepoManager, type OpsRepoManagerDeps } from '../../src/opsrepo/opsRepoManager.ts';
import { createOrigin, hangingServer } from './gitFixtures.ts';
import { createHarness, rejection, type Harness } from './harness.ts';

let h: Harness;
const log = createLogger({ level: 'silent', format: 'json' });

beforeAll(async () => {
  h = await createHarness();
});

afterAll(async () => {
  await h.close();
});

const manager = (options: Partial<OpsRepoManagerDeps>) => createOpsRepoManager({ db: h.database.db, dataDir: h.dataDir, log, ...options });
const leftovers = (name: string) => (existsSync(path.join(h.dataDir, 'ops-repos')) ? readdirSync(path.join(h.dataDir, 'ops-repos')).filter((e) => e.includes(name)) : []);

describe('ops repo limits', () => {
  it('refuses a file:// repository unless the operator allows file repos, naming the setting; git never runs', async () => {
    const origin = createOrigin(h.tmp, 'local-only');
    origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: 'local-only', repo_url: origin.url });
    const error = await rejection(manager({ allowFileRepos: false }).fetch(id));
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.code).toBe('repo_url_unsafe');
    expect(error.message).toMatch(/KEELSON_ALLOW_FILE_REPOS/);
    expect(leftovers('local-only')).toEqual([]);
    expect((await h.getRepo(id)).last_error).toMatch(/KEELSON_ALLOW_FILE_REPOS/);
    // the same row syncs where the operator allows it
    expect((await manager({ allowFileRepos: true }).fetch(id)).sha).toBe(origin.head());
  });

  it('refuses a clone larger than the size limit, and leaves nothing on disk', async () => {
    const origin = createOrigin(h.tmp, 'too-big');
    origin.commit({ 'blob.bin': randomBytes(3 * 1024 * 1024).toString('base64') });
    const id = await h.insertRepo({ name: 'too-big', repo_url: origin.url });
    const error = await rejection(manager({ allowFileRepos: true, maxRepoBytes: 1024 * 1024 }).fetch(id));
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.code).toBe('repo_too_large');
    expect(error.message).toMatch(/larger than the limit of 1048576 bytes \(KEELSON_GIT_MAX_REPO_BYTES\)/);
    expect(leftovers('too-big')).toEqual([]);
    expect((await h.getRepo(id)).last_error).toMatch(/KEELSON_GIT_MAX_REPO_BYTES/);
  });

  it('refuses a fetch that grows the checkout past the limit, and removes the checkout', async () => {
    const origin = createOrigin(h.tmp, 'grows');
    origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: 'grows', repo_url: origin.url });
    const limited = manager({ allowFileRepos: true, maxRepoBytes: 2 * 1024 * 1024 });
    const first = await limited.fetch(id);
    expect(existsSync(first.dir)).toBe(true);
    origin.commit({ 'blob.bin': randomBytes(4 * 1024 * 1024).toString('base64') });
    const error = await rejection(limited.fetch(id, { force: true }));
    expect(error.code).toBe('repo_too_large');
    expect(existsSync(first.dir)).toBe(false);
  });

  it('counts the working tree: a tiny pack that checks out huge is refused, by clone and by fetch', async () => {
    const origin = createOrigin(h.tmp, 'bomb');
    origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: 'bomb', repo_url: origin.url });
    const limited = manager({ allowFileRepos: true, maxRepoBytes: 2 * 1024 * 1024 });
    await limited.fetch(id);
    // 8 MiB of zeros compress to a few KiB in the pack
    origin.commit({ 'zeros.txt': '0'.repeat(8 * 1024 * 1024) });
    expect((await rejection(limited.fetch(id, { force: true }))).code).toBe('repo_too_large');
    expect((await rejection(limited.fetch(id, { force: true }))).code).toBe('repo_too_large');
    expect(leftovers('bomb')).toEqual([]);
  });

  it('stops a clone at the overall deadline even while git would still wait for the remote', async () => {
    const hanging = await hangingServer();
    try {
      const id = await h.insertRepo({ name: 'deadline', repo_url: `git://127.0.0.1:${hanging.port}/ops.git` });
      // git's inactivity timeout (60 s) would not fire for a minute; the overall deadline does
      const started = Date.now();
      const error = await rejection(manager({ gitTimeoutMs: 60_000, fetchTimeoutMs: 500 }).fetch(id));
      expect(error).toBeInstanceOf(TransientError);
      expect(error.code).toBe('repo_timeout');
      expect(error.message).toMatch(/KEELSON_GIT_FETCH_TIMEOUT/);
      expect(hanging.connections()).toBeGreaterThan(0);
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(leftovers('deadline')).toEqual([]);
    } finally {
      await hanging.close();
    }
  });

  it('the database refuses what the syncer would refuse, before any sync', async () => {
    await expect(h.database.db.query(sql.unsafe`insert into ops_repos (name, repo_url) values ('bad', '--upload-pack=x')`)).rejects.toMatchObject({
      constraint: 'ops_repos_repo_url_safe',
    });
  });
});
