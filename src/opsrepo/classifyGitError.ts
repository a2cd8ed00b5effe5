// Turns a failed git command into a transient or terminal keelson error. git reports everything
// as text on stderr (LC_ALL=C keeps it English), so the classification is by message pattern;
// anything we do not recognise is assumed transient, because "the remote misbehaved" is far more
// common than a permanent mistake, and the runtime's backoff bounds the cost of a wrong guess.
import { GitPluginError } from 'simple-git';
import { errorMessage, KeelsonError, TerminalError, TransientError } from '../errors.ts';
import { redactRepoUrl } from './repoUrl.ts';

export interface GitFailureContext {
  readonly repoName: string;
  readonly repoUrl: string;
  readonly branch: string;
  /** A previous good checkout exists: a vanished remote is then an outage, not a typo. */
  readonly hadCheckout: boolean;
}

const BRANCH_MISSING = /Remote branch .* not found|couldn't find remote ref|not our ref/i;
const AUTH_FAILED =
  /Authentication failed|could not read (Username|Password)|terminal prompts disabled|Permission denied \(|Host key verification failed|HTTP Basic: Access denied|returned error: 403/i;
const REPO_MISSING =
  /does not appear to be a git repository|repository '.*' not found|Repository not found|returned error: 404|not a git repository/i;

/** git's output on one line, without the clone banner and the generic access-rights advice; redacted. */
export function gitFailureDetail(error: unknown): string {
  const text = redactRepoUrl(errorMessage(error));
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !/^Cloning into/.test(line) && !/^(Please make sure|and the repository exists)/.test(line) && !/^remote: (Counting|Compressing|Enumerating|Total)/.test(line));
  return lines.join(' ').slice(0, 1000) || 'git failed without a message';
}

export function classifyGitError(error: unknown, context: GitFailureContext): KeelsonError {
  if (error instanceof KeelsonError) return error;
  const where = `ops repo "${context.repoName}" (${redactRepoUrl(context.repoUrl)}, branch "${context.branch}")`;
  const cause = new Error(redactRepoUrl(errorMessage(error)));
  if (error instanceof GitPluginError && error.plugin === 'abort') {
    return new TransientError(`Syncing ${where} was cancelled; the next sync starts over.`, { code: 'repo_sync_aborted', cause });
  }
  if (error instanceof GitPluginError && error.plugin === 'timeout') {
    return new TransientError(
      `Syncing ${where} timed out: git produced no output for too long. The remote is slow or unreachable; it will be retried.`,
      { code: 'repo_timeout', cause },
    );
  }
  if (error instanceof GitPluginError) {
    // simple-git's own guard refused the command before git ran (an argument or environment
    // variable it considers dangerous). Retrying runs into the same guard.
    return new TerminalError(
      `git refused to sync ${where}: ${redactRepoUrl(errorMessage(error))}. This is a keelson bug or an unsafe setting; report it with this message.`,
      { code: 'repo_git_refused', cause },
    );
  }
  const detail = gitFailureDetail(error);
  // Match on everything git said: ssh's own lines ("Permission denied (publickey)") are not
  // prefixed with fatal:/error: and would be missing from the condensed detail.
  const full = redactRepoUrl(errorMessage(error));
  if (BRANCH_MISSING.test(full)) {
    return new TerminalError(
      `Branch "${context.branch}" does not exist in ${where}: ${detail}. Push the branch or set ops_repos.branch to an existing one.`,
      { code: 'repo_branch_missing', cause },
    );
  }
  if (AUTH_FAILED.test(full)) {
    return new TerminalError(
      `The remote of ${where} refused our credentials: ${detail}. Fix the credentials in ops_repos.repo_url or the host's git/ssh configuration.`,
      { code: 'repo_auth_failed', cause },
    );
  }
  if (REPO_MISSING.test(full) && !context.hadCheckout) {
    return new TerminalError(
      `The repository of ${where} was not found: ${detail}. Check ops_repos.repo_url.`,
      { code: 'repo_not_found', cause },
    );
  }
  return new TransientError(
    `Could not fetch ${where}: ${detail}. ` +
      (context.hadCheckout ? 'The last good checkout is kept; the sync will be retried.' : 'The sync will be retried.'),
    { code: 'repo_unreachable', cause },
  );
}
