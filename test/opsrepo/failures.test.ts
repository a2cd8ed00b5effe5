import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TerminalError, TransientError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { createOpsRepoManager } from '../../src/opsrepo/opsRepoManager.ts';
import { sleepUntil } from '../helpers.ts';
import { createOrigin, git, hangingServer } from './gitFixtures.ts';
import { createHarness, rejection, type Harness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h.close();
});

/** Every string a secret could leak through: the error, its causes, the row, the log. */
async function everythingSaid(error: unknown, repoId: string): Promise<string> {
  const parts: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = e.cause) parts.push(e.message, String(e.stack));
  const row = await h.getRepo(repoId);
  parts.push(row.last_error ?? '', ...h.logLines);
  return parts.join('\n');
}

describe('a remote that goes away', () => {
  it.each([
    ['removed', (dir: string) => renameSync(dir, `${dir}.deleted`)],
    ['renamed', (dir: string) => renameSync(dir, `${dir}-new-name`)],
  ])('when %s, is transient and keeps the checkout, last_sha and a redacted last_error', async (label, breakRemote) => {
    const origin = createOrigin(h.tmp, `gone-${label}`);
    const sha = origin.commit({ 'app.yaml': 'good\n' });
    const id = await h.insertRepo({ name: `gone-${label}`, repo_url: origin.url });
    const good = await h.manager.fetch(id);

    breakRemote(origin.dir);
    const error = await rejection(h.manager.fetch(id, { force: true }));

    expect(error).toBeInstanceOf(TransientError);
    expect(error.code).toBe('repo_unreachable');
    expect(error.message).toContain(`gone-${label}`);
    expect(error.message).toMatch(/last good checkout is kept/);
    expect(readFileSync(path.join(good.dir, 'app.yaml'), 'utf8')).toBe('good\n');
    expect(git(good.dir, 'rev-parse', 'HEAD')).toBe(sha);
    const row = await h.getRepo(id);
    expect(row.last_sha).toBe(sha);
    expect(row.last_error).toMatch(/does not appear to be a git repository/);
  });

  it('clears last_error once the remote is back', async () => {
    const origin = createOrigin(h.tmp, 'flaky');
    origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: 'flaky', repo_url: origin.url });
    await h.manager.fetch(id);
    renameSync(origin.dir, `${origin.dir}.away`);
    await rejection(h.manager.fetch(id));
    expect((await h.getRepo(id)).last_error).not.toBeNull();
    renameSync(`${origin.dir}.away`, origin.dir);
    const next = origin.commit({ 'a.yaml': 'b\n' });
    expect((await h.manager.fetch(id)).sha).toBe(next);
    const row = await h.getRepo(id);
    expect(row.last_error).toBeNull();
    expect(row.last_sha).toBe(next);
  });

  it('is terminal when the repository was never there (nothing to fall back on)', async () => {
    const id = await h.insertRepo({ name: 'never', repo_url: `file://${h.tmp}/no-such-repo` });
    const error = await rejection(h.manager.fetch(id));
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.code).toBe('repo_not_found');
    expect(existsSync(path.join(h.dataDir, 'ops-repos', 'never'))).toBe(false);
  });

  it('never leaks credentials embedded in the URL, and a refused connection is transient', async () => {
    // Port 1 on loopback: connection refused, immediately and offline.
    const secret = 's3cret-Token_value';
    const id = await h.insertRepo({ name: 'creds', repo_url: `https://deployer:${secret}@127.0.0.1:1/acme/ops.git` });
    const error = await rejection(h.manager.fetch(id));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.code).toBe('repo_unreachable');
    expect(error.message).toContain('https://deployer:***@127.0.0.1:1/acme/ops.git');
    const said = await everythingSaid(error, id);
    expect(said).toContain('deployer:***@');
    expect(said).not.toContain(secret);
  });

  it('never leaks a token-only URL either', async () => {
    const secret = 'ghp_0123456789abcdef';
    const id = await h.insertRepo({ name: 'token-only', repo_url: `https://${secret}@127.0.0.1:1/acme/ops.git` });
    const error = await rejection(h.manager.fetch(id));
    expect(error).toBeInstanceOf(TransientError);
    const said = await everythingSaid(error, id);
    expect(said).toContain('https://***@127.0.0.1:1');
    expect(said).not.toContain(secret);
  });
});

describe('unsafe URLs in the row', () => {
  // the database refuses these rows (test/tenancy/bothDoors.test.ts); the syncer must as well
  beforeAll(async () => {
    await h.dropRowChecks();
  });

  it.each([
    ['ext', (marker: string) => `ext::sh -c touch% ${marker}`],
    ['fd', () => 'fd::17'],
    ['option', () => '-uhelp'],
    ['upload-pack', (marker: string) => `--upload-pack=touch ${marker}`],
    ['helper', () => 'evil::https://example.com/repo.git'],
  ])('refuses a %s URL as terminal before git runs', async (label, makeUrl) => {
    const marker = path.join(h.tmp, `pwned-${label}`);
    const id = await h.insertRepo({ name: `unsafe-${label}`, repo_url: makeUrl(marker) });
    const error = await rejection(h.manager.fetch(id));
    expect(error).toBeInstanceOf(TerminalError);
    expect(error.code).toBe('repo_url_unsafe');
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(path.join(h.dataDir, 'ops-repos', `unsafe-${label}`))).toBe(false);
    expect((await h.getRepo(id)).last_error).toMatch(/refused/);
  });

  it('refuses a URL changed to an unsafe one after a good sync, keeping the checkout', async () => {
    const origin = createOrigin(h.tmp, 'turned-bad');
    const sha = origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: 'turned-bad', repo_url: origin.url });
    const good = await h.manager.fetch(id);
    const marker = path.join(h.tmp, 'pwned-turned-bad');
    await h.database.db.query(sql.unsafe`update ops_repos set repo_url = ${`ext::sh -c touch% ${marker}`} where id = ${id}`);
    const error = await rejection(h.manager.fetch(id, { force: true }));
    expect(error.code).toBe('repo_url_unsafe');
    expect(existsSync(marker)).toBe(false);
    expect(git(good.dir, 'rev-parse', 'HEAD')).toBe(sha);
  });
});

describe('cancellation', () => {
  it('rejects at once with an already aborted signal and touches nothing', async () => {
    const origin = createOrigin(h.tmp, 'pre-aborted');
    origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: 'pre-aborted', repo_url: origin.url });
    const error = await rejection(h.manager.fetch(id, { signal: AbortSignal.abort() }));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.code).toBe('repo_sync_aborted');
    expect(existsSync(path.join(h.dataDir, 'ops-repos', 'pre-aborted'))).toBe(false);
    expect((await h.getRepo(id)).last_error).toBeNull();
  });

  it('a clone cancelled mid-way (remote hanging) leaves no partial checkout, and the next sync clones cleanly', async () => {
    const origin = createOrigin(h.tmp, 'mid-abort');
    const sha = origin.commit({ 'a.yaml': 'a\n' });
    const hanging = await hangingServer();
    try {
      const id = await h.insertRepo({ name: 'mid-abort', repo_url: `git://127.0.0.1:${hanging.port}/ops.git` });
      const controller = new AbortController();
      const pending = h.manager.fetch(id, { signal: controller.signal });
      // git is connected and waiting: the clone is really in progress.
      await sleepUntil(() => hanging.connections() > 0, { message: 'git never connected' });
      expect(tempEntries('mid-abort').length).toBe(1);
      controller.abort(new Error('superseded'));
      const error = await rejection(pending);
      expect(error.code).toBe('repo_sync_aborted');
      expect(existsSync(path.join(h.dataDir, 'ops-repos', 'mid-abort'))).toBe(false);
      await sleepUntil(() => tempEntries('mid-abort').length === 0, { message: 'temp clone dir left behind' });
      expect((await h.getRepo(id)).last_error).toBeNull();

      await h.database.db.query(sql.unsafe`update ops_repos set repo_url = ${origin.url} where id = ${id}`);
      const result = await h.manager.fetch(id);
      expect(result.sha).toBe(sha);
      expect(readFileSync(path.join(result.dir, 'a.yaml'), 'utf8')).toBe('a\n');
    } finally {
      await hanging.close();
    }
  });

  it('a remote that stops answering times out as transient and keeps the checkout', async () => {
    const origin = createOrigin(h.tmp, 'stalls');
    const sha = origin.commit({ 'a.yaml': 'a\n' });
    const hanging = await hangingServer();
    const quick = createOpsRepoManager({ db: h.database.db, dataDir: h.dataDir, log: createLogger({ level: 'silent', format: 'json' }), gitTimeoutMs: 300, allowFileRepos: true });
    try {
      const id = await h.insertRepo({ name: 'stalls', repo_url: origin.url });
      // the first clone with the patient manager: on a loaded machine even a local clone can be
      // silent for 300 ms
      const good = await h.manager.fetch(id);
      await h.database.db.query(sql.unsafe`update ops_repos set repo_url = ${`git://127.0.0.1:${hanging.port}/ops.git`} where id = ${id}`);
      const error = await rejection(quick.fetch(id, { force: true }));
      expect(error).toBeInstanceOf(TransientError);
      expect(error.code).toBe('repo_timeout');
      expect(hanging.connections()).toBeGreaterThan(0);
      expect(git(good.dir, 'rev-parse', 'HEAD')).toBe(sha);
      expect((await h.getRepo(id)).last_sha).toBe(sha);
      expect((await h.getRepo(id)).last_error).toMatch(/timed out/);
    } finally {
      await hanging.close();
    }
  });
});

describe('a git killed part-way (aborted effect, deadline, SIGKILL)', () => {
  // what each interrupted git command leaves: `remote set-url` its config.lock, `fetch` the
  // remote-tracking ref's lock, `reset` index.lock and ORIG_HEAD.lock
  it.each([
    ['config.lock'],
    ['index.lock'],
    ['ORIG_HEAD.lock'],
    [path.join('refs', 'remotes', 'origin', 'main.lock')],
  ])('leaves %s behind: the next sync removes it and follows the remote', async (lock) => {
    const name = `locked-${path.basename(lock, '.lock').toLowerCase().replace(/[^a-z0-9]/g, '-')}`;
    const origin = createOrigin(h.tmp, name);
    origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name, repo_url: origin.url });
    const first = await h.manager.fetch(id);
    writeFileSync(path.join(first.dir, '.git', lock), 'left by a killed git\n');
    const next = origin.commit({ 'a.yaml': 'b\n' });

    const second = await h.manager.fetch(id, { force: true });

    expect(second.sha).toBe(next);
    expect(readFileSync(path.join(second.dir, 'a.yaml'), 'utf8')).toBe('b\n');
    expect(existsSync(path.join(second.dir, '.git', lock))).toBe(false);
    expect((await h.getRepo(id)).last_error).toBeNull();
    expect(h.logLines.some((line) => line.includes('removed lock files left by an interrupted git') && line.includes(name))).toBe(true);
  });
});

function tempEntries(name: string): string[] {
  const dir = path.join(h.dataDir, 'ops-repos');
  return existsSync(dir) ? readdirSync(dir).filter((e) => e.startsWith(`.clone.${name}.`)) : [];
}
