// Ops repo URLs come from a database row anyone with SQL access (or the API) can write, and git
// treats some URL shapes as commands: `ext::sh -c ...` runs a shell, `fd::17` talks to a file
// descriptor, and a URL starting with `-` is parsed as an option (`-uhelp`, `--upload-pack=...`).
// So URLs are allow-listed by shape before git ever sees them (migrations/0003_tenancy.sql states
// the same shape rule for SQL writers, `keelson_repo_url_valid`), and credentials embedded in a
// URL are redacted from every string that leaves this process (logs, errors, the database).
// file:// URLs reach any path of keelson's host, so they are the operator's decision
// (KEELSON_ALLOW_FILE_REPOS), not a row writer's.
import { TerminalError } from '../errors.ts';

const ALLOWED_SCHEMES = new Set(['https', 'http', 'ssh', 'git', 'file']);

// git's own rule (transport.c): a run of URL-scheme characters followed by `::` selects a remote
// helper `git-remote-<transport>`, whatever the transport is called.
const TRANSPORT_HELPER = /^[A-Za-z][A-Za-z0-9+.-]*::/;
const URL_WITH_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
// scp-like syntax: `[user@]host:path`, recognised by git when a colon comes before any slash.
const SCP_LIKE = /^(?:([^@/:\s]+)@)?([^@/:\s]+):(.*)$/;
// Visible ASCII only: git URLs percent-encode everything else, and no-break or zero-width spaces
// would make a URL read differently from what git receives.
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

function unsafe(url: string, reason: string): TerminalError {
  return new TerminalError(
    `Ops repo URL ${JSON.stringify(redactRepoUrl(url))} is refused: ${reason}. ` +
      'Use an https://, http://, ssh://, git:// or file:// URL, or scp-like user@host:path, and update ops_repos.repo_url.',
    { code: 'repo_url_unsafe' },
  );
}

/**
 * Throws TerminalError `repo_url_unsafe` unless `url` is a plain https/http/ssh/git or scp-like
 * URL, or a file:// URL where `allowFileRepos` says the operator allows them.
 */
export function assertSafeRepoUrl(url: string, options: { readonly allowFileRepos: boolean }): void {
  if (typeof url !== 'string' || url.length === 0) throw unsafe(String(url), 'it is empty');
  if (url.length > 2048) throw unsafe(url.slice(0, 100), 'it is longer than 2048 characters');
  if (url.startsWith('-')) throw unsafe(url, 'it starts with "-", which git would read as a command-line option');
  if (!VISIBLE_ASCII.test(url)) throw unsafe(url, 'it contains whitespace, control characters or characters other than visible ASCII (percent-encode them)');
  if (TRANSPORT_HELPER.test(url)) {
    throw unsafe(url, 'the "<transport>::<address>" form runs a git remote helper (ext:: runs arbitrary commands)');
  }
  const withScheme = URL_WITH_SCHEME.exec(url);
  if (withScheme) {
    const scheme = (withScheme[1] ?? '').toLowerCase();
    if (!ALLOWED_SCHEMES.has(scheme)) throw unsafe(url, `the "${scheme}" transport is not allowed`);
    if (scheme === 'file') {
      if (!options.allowFileRepos) {
        throw unsafe(url, 'file:// URLs reach any path on the keelson host and are off unless the operator sets KEELSON_ALLOW_FILE_REPOS=true');
      }
      return;
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw unsafe(url, 'it is not a valid URL');
    }
    // ssh://-oProxyCommand=... would reach ssh as an option; git guards this too, we do it first.
    if (parsed.hostname === '' || parsed.hostname.startsWith('-')) throw unsafe(url, 'the host is empty or starts with "-"');
    if (parsed.username.startsWith('-') || safeDecode(parsed.username).startsWith('-')) throw unsafe(url, 'the user name starts with "-"');
    // the database's rule (keelson_repo_url_valid) looks at the URL as written: keep both doors equal
    if (!/^[a-z+.-]+:\/\/([^-/?#@][^/?#]*@)?[^-/?#@:]/i.test(url)) throw unsafe(url, 'the host is empty or starts with "-"');
    return;
  }
  if (url.includes('://')) throw unsafe(url, 'the scheme is malformed');
  const scp = SCP_LIKE.exec(url);
  if (scp) {
    const [, user, host, repoPath] = scp;
    if (!host || host.startsWith('-')) throw unsafe(url, 'the host is empty or starts with "-"');
    if (user?.startsWith('-')) throw unsafe(url, 'the user name starts with "-"');
    if (!repoPath) throw unsafe(url, 'the repository path after ":" is empty');
    return;
  }
  throw unsafe(url, 'it is neither a URL with a scheme nor scp-like user@host:path (plain local paths need file://)');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

// `scheme://user:password@` → `scheme://user:***@`; the password may contain `@`, so the match
// runs to the last `@` before the path. Quotes and whitespace end a URL inside a message.
const USER_AND_PASSWORD = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^\s/@:'"`]*):([^\s/'"`]*)@/g;
// A lone user name in http(s) is usually a token (https://<token>@github.com/...); in ssh and git
// URLs it is an account name such as `git` and stays readable.
const HTTP_TOKEN_ONLY = /\b(https?:\/\/)([^\s/@:'"`]+)@/gi;

/** Redacts credentials of every URL inside `text` (a URL, a git message, an error). */
export function redactRepoUrl(text: string): string {
  return text
    .replace(USER_AND_PASSWORD, (_match, scheme: string, user: string) => `${scheme}${user}:***@`)
    .replace(HTTP_TOKEN_ONLY, (match, scheme: string, user: string) => (user === '***' ? match : `${scheme}***@`));
}
