// Ops repo URLs come from a database row anyone with SQL access (or the API) can write, and git
// treats some URL shapes as commands: `ext::sh -c ...` runs a shell, `fd::17` talks to a file
// descriptor, and a URL starting with `-` is parsed as an option (`-uhelp`, `--upload-pack=...`).
// So URLs are allow-listed by shape before git ever sees them, and credentials embedded in a URL
// are redacted from every string that leaves this process (logs, errors, the database).
import { TerminalError } from '../errors.ts';

const ALLOWED_SCHEMES = new Set(['https', 'http', 'ssh', 'git', 'file']);

// git's own rule (transport.c): a run of URL-scheme characters followed by `::` selects a remote
// helper `git-remote-<transport>`, whatever the transport is called.
const TRANSPORT_HELPER = /^[A-Za-z][A-Za-z0-9+.-]*::/;
const URL_WITH_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
// scp-like syntax: `[user@]host:path`, recognised by git when a colon comes before any slash.
const SCP_LIKE = /^(?:([^@/:\s]+)@)?([^@/:\s]+):(.*)$/;
// eslint-disable-next-line no-control-regex
const CONTROL_OR_SPACE = /[\s\u0000-\u001f\u007f]/;

function unsafe(url: string, reason: string): TerminalError {
  return new TerminalError(
    `Ops repo URL ${JSON.stringify(redactRepoUrl(url))} is refused: ${reason}. ` +
      'Use an https://, http://, ssh://, git:// or file:// URL, or scp-like user@host:path, and update ops_repos.repo_url.',
    { code: 'repo_url_unsafe' },
  );
}

/** Throws TerminalError `repo_url_unsafe` unless `url` is a plain https/http/ssh/git/file or scp-like URL. */
export function assertSafeRepoUrl(url: string): void {
  if (typeof url !== 'string' || url.length === 0) throw unsafe(String(url), 'it is empty');
  if (url.startsWith('-')) throw unsafe(url, 'it starts with "-", which git would read as a command-line option');
  if (CONTROL_OR_SPACE.test(url)) throw unsafe(url, 'it contains whitespace or control characters');
  if (TRANSPORT_HELPER.test(url)) {
    throw unsafe(url, 'the "<transport>::<address>" form runs a git remote helper (ext:: runs arbitrary commands)');
  }
  const withScheme = URL_WITH_SCHEME.exec(url);
  if (withScheme) {
    const scheme = (withScheme[1] ?? '').toLowerCase();
    if (!ALLOWED_SCHEMES.has(scheme)) throw unsafe(url, `the "${scheme}" transport is not allowed`);
    if (scheme === 'file') return;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw unsafe(url, 'it is not a valid URL');
    }
    // ssh://-oProxyCommand=... would reach ssh as an option; git guards this too, we do it first.
    if (parsed.hostname === '' || parsed.hostname.startsWith('-')) throw unsafe(url, 'the host is empty or starts with "-"');
    if (decodeURIComponent(parsed.username).startsWith('-')) throw unsafe(url, 'the user name starts with "-"');
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
