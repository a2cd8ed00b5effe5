import { GitError, GitPluginError } from 'simple-git';
import { describe, expect, it } from 'vitest';
import { TerminalError, TransientError } from '../../src/errors.ts';
import { classifyGitError } from '../../src/opsrepo/classifyGitError.ts';

const context = { repoName: 'ops', repoUrl: 'https://bot:tok3n@git.example/ops.git', branch: 'main' };

describe('classifyGitError', () => {
  it.each([
    ['fatal: Remote branch main not found in upstream origin', false, TerminalError, 'repo_branch_missing'],
    ["fatal: couldn't find remote ref refs/heads/main", true, TerminalError, 'repo_branch_missing'],
    ["fatal: could not read Username for 'https://git.example': terminal prompts disabled", true, TerminalError, 'repo_auth_failed'],
    ['git@git.example: Permission denied (publickey).\nfatal: Could not read from remote repository.', true, TerminalError, 'repo_auth_failed'],
    ["fatal: repository 'https://bot:tok3n@git.example/ops.git/' not found", false, TerminalError, 'repo_not_found'],
    ["fatal: repository 'https://bot:tok3n@git.example/ops.git/' not found", true, TransientError, 'repo_unreachable'],
    ["fatal: '/srv/ops' does not appear to be a git repository", true, TransientError, 'repo_unreachable'],
    ["fatal: unable to access 'https://bot:tok3n@git.example/ops.git/': Could not resolve host: git.example", false, TransientError, 'repo_unreachable'],
    ['ssh: connect to host git.example port 22: Connection refused\nfatal: Could not read from remote repository.', false, TransientError, 'repo_unreachable'],
    ['error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502', true, TransientError, 'repo_unreachable'],
  ])('%j (previous checkout: %s) → %o %s', (stderr, hadCheckout, kind, code) => {
    const error = classifyGitError(new GitError(undefined, stderr), { ...context, hadCheckout });
    expect(error).toBeInstanceOf(kind);
    expect(error.code).toBe(code);
    expect(error.message).not.toContain('tok3n');
    expect(String((error.cause as Error).message)).not.toContain('tok3n');
  });

  it.each([
    ['abort', TransientError, 'repo_sync_aborted'],
    ['timeout', TransientError, 'repo_timeout'],
    ['unsafe', TerminalError, 'repo_git_refused'],
  ] as const)('a simple-git %s plugin error → %o %s', (plugin, kind, code) => {
    const error = classifyGitError(new GitPluginError(undefined, plugin, 'stopped https://bot:tok3n@git.example'), { ...context, hadCheckout: true });
    expect(error).toBeInstanceOf(kind);
    expect(error.code).toBe(code);
    expect(`${error.message} ${(error.cause as Error).message}`).not.toContain('tok3n');
  });
});
