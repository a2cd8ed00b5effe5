import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TerminalError } from '../../src/errors.ts';
import { assertSafeRepoUrl, redactRepoUrl } from '../../src/opsrepo/repoUrl.ts';

describe('assertSafeRepoUrl', () => {
  it.each([
    ['ext::sh -c touch% /tmp/pwned'],
    ['ext::git-upload-pack %S'],
    ['fd::17'],
    ['fd::17,18/repo'],
    ['foo::https://example.com/repo.git'],
    ['-uhelp'],
    ['--upload-pack=touch /tmp/pwned'],
    ['-oProxyCommand=touch /tmp/pwned'],
    ['ssh://-oProxyCommand=touch%20pwned/repo'],
    ['ssh://-user@host/repo'],
    ['-user@host:repo'],
    ['-host:repo'],
    ['ftp://example.com/repo.git'],
    ['rsync://example.com/repo.git'],
    ['/srv/git/repo.git'],
    ['relative/repo'],
    [''],
    ['https://example.com/repo.git\n--upload-pack=x'],
    ['https://example.com/repo .git'],
    ['user@host:'],
    [':path'],
  ])('refuses %j with a terminal repo_url_unsafe error', (url) => {
    let thrown: unknown;
    try {
      assertSafeRepoUrl(url, { allowFileRepos: true });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TerminalError);
    expect((thrown as TerminalError).code).toBe('repo_url_unsafe');
    expect((thrown as TerminalError).message).toMatch(/refused: .+\. Use an https:\/\//);
    expect(existsSync('/tmp/pwned')).toBe(false);
  });

  it.each([
    ['https://github.com/acme/ops.git'],
    ['http://git.internal:8080/ops.git'],
    ['https://user:token@github.com/acme/ops.git'],
    ['ssh://git@github.com/acme/ops.git'],
    ['ssh://git@github.com:2222/acme/ops.git'],
    ['git://git.internal/ops.git'],
    ['file:///srv/git/ops.git'],
    ['git@github.com:acme/ops.git'],
    ['github.com:acme/ops.git'],
    ['HTTPS://github.com/acme/ops.git'],
  ])('allows %j', (url) => {
    expect(() => assertSafeRepoUrl(url, { allowFileRepos: true })).not.toThrow();
  });

  it('refuses file:// unless the operator allows file repos, saying how to allow them', () => {
    expect(() => assertSafeRepoUrl('file:///srv/git/ops.git', { allowFileRepos: false })).toThrow(/KEELSON_ALLOW_FILE_REPOS/);
    expect(() => assertSafeRepoUrl('FILE:///srv/git/ops.git', { allowFileRepos: false })).toThrow(/KEELSON_ALLOW_FILE_REPOS/);
    expect(() => assertSafeRepoUrl('file:///srv/git/ops.git', { allowFileRepos: true })).not.toThrow();
    // a plain path is file access too, and is refused either way
    expect(() => assertSafeRepoUrl('/srv/git/ops.git', { allowFileRepos: true })).toThrow(/file:\/\//);
  });

  it('never echoes credentials of a refused URL', () => {
    expect(() => assertSafeRepoUrl('ftp://bob:hunter2@example.com/repo', { allowFileRepos: true })).toThrow(/ftp:\/\/bob:\*\*\*@example\.com/);
    try {
      assertSafeRepoUrl('ftp://bob:hunter2@example.com/repo', { allowFileRepos: true });
    } catch (error) {
      expect((error as Error).message).not.toContain('hunter2');
    }
  });
});

describe('redactRepoUrl', () => {
  it.each([
    ['https://user:token@host/repo.git', 'https://user:***@host/repo.git'],
    ['https://user:p@ss@host/repo.git', 'https://user:***@host/repo.git'],
    ['http://x-access-token:ghs_abc123@github.com/a/b', 'http://x-access-token:***@github.com/a/b'],
    ['https://ghp_abcdef@github.com/a/b.git', 'https://***@github.com/a/b.git'],
    ['ssh://git:secret@host/repo', 'ssh://git:***@host/repo'],
    ['ssh://git@host/repo', 'ssh://git@host/repo'],
    ['git@github.com:acme/ops.git', 'git@github.com:acme/ops.git'],
    ['https://github.com/acme/ops.git', 'https://github.com/acme/ops.git'],
    [
      "fatal: unable to access 'https://bob:s3cret@host:1/x.git/': Failed to connect",
      "fatal: unable to access 'https://bob:***@host:1/x.git/': Failed to connect",
    ],
    [
      'two urls https://a:one@h1/x and "https://b:two@h2/y"',
      'two urls https://a:***@h1/x and "https://b:***@h2/y"',
    ],
    ['https://user:token@host', 'https://user:***@host'],
  ])('%j → %j', (input, expected) => {
    expect(redactRepoUrl(input)).toBe(expected);
  });

  it('is idempotent', () => {
    const once = redactRepoUrl('https://user:token@host/r and https://tok@host/r');
    expect(redactRepoUrl(once)).toBe(once);
  });
});
