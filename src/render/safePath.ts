// Every file the renderer reads goes through here, because paths come from data (the
// deployments row, ops_repos.path, template `{% include %}`s) and the checkout is written by
// whoever can push to the ops repo: `../../etc/passwd`, `/etc/passwd` and a committed symlink
// pointing out of the repo are all one string away. Checks are lexical first (the path as
// written) and then on the real path (after symlinks), both against the real root.
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { TerminalError } from '../errors.ts';

export interface RepoRoot {
  /** Real absolute path of `<checkout>/<ops_repos.path>`: nothing outside it is ever read. */
  readonly real: string;
  /** ops_repos.path, normalised, posix ('' = checkout root): prefix of every reported file. */
  readonly base: string;
}

export interface ResolvedFile {
  /** Real absolute path to read. */
  readonly abs: string;
  /** Path relative to the root, posix, as written (before symlinks). */
  readonly rel: string;
}

function isInside(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function hasGitSegment(relative: string): boolean {
  // `.git/config` holds the remote URL with its credentials: a template must never include it.
  return relative.split(/[\\/]/).some((segment) => segment.toLowerCase() === '.git');
}

/** The repo-relative name used in messages and RenderResult.files. */
export function displayPath(root: RepoRoot, rel: string): string {
  return path.posix.join(root.base, rel) || '.';
}

function unsafe(what: string, shown: string, reason: string): TerminalError {
  return new TerminalError(
    `The ${what} ${JSON.stringify(shown)} is refused: ${reason}. Paths must stay inside the ops repo; fix the path (or the symlink in the repo).`,
    { code: 'render_path_unsafe' },
  );
}

function missing(what: string, shown: string, detail: string): TerminalError {
  return new TerminalError(`The ${what} ${JSON.stringify(shown)} does not exist${detail}. Create it in the ops repo or fix the path.`, {
    code: 'render_path_missing',
  });
}

function realpathOrMissing(candidate: string, what: string, shown: string, detail: string): string {
  try {
    return realpathSync(candidate);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw missing(what, shown, detail);
    if (code === 'ELOOP') throw unsafe(what, shown, 'it is a symlink loop');
    throw new TerminalError(`The ${what} ${JSON.stringify(shown)} cannot be read: ${(error as Error).message}. Check the ops repo checkout.`, {
      code: 'render_path_missing',
    });
  }
}

/** Resolves `<checkout>/<basePath>` to a root nothing may leave. */
export function openRepoRoot(checkout: string, basePath: string): RepoRoot {
  const checkoutReal = realpathOrMissing(checkout, 'ops repo checkout', checkout, '; sync the ops repo first');
  if (basePath.includes('\0')) throw unsafe('ops repo path', basePath, 'it contains a NUL byte');
  if (path.isAbsolute(basePath) || path.win32.isAbsolute(basePath)) throw unsafe('ops repo path', basePath, 'it is absolute');
  const lexical = path.resolve(checkoutReal, basePath);
  if (!isInside(checkoutReal, lexical)) throw unsafe('ops repo path', basePath, 'it points outside the repository');
  const base = path.relative(checkoutReal, lexical).split(path.sep).join('/');
  if (hasGitSegment(base)) throw unsafe('ops repo path', basePath, 'it points into .git');
  const real = realpathOrMissing(lexical, 'ops repo path', basePath, ' in the ops repo; fix ops_repos.path');
  if (!isInside(checkoutReal, real)) throw unsafe('ops repo path', basePath, 'it is a symlink pointing outside the repository');
  if (!statSync(real).isDirectory()) throw missing('ops repo path', basePath, ' as a directory; fix ops_repos.path');
  return { real, base };
}

/**
 * Resolves `relPath` (relative to the root) to a real path inside it, or throws TerminalError
 * `render_path_unsafe` / `render_path_missing`. `what` names the path in messages.
 */
export function resolveInRoot(root: RepoRoot, relPath: string, what: string): ResolvedFile {
  const shown = relPath;
  if (relPath.includes('\0')) throw unsafe(what, shown, 'it contains a NUL byte');
  if (path.isAbsolute(relPath) || path.win32.isAbsolute(relPath)) throw unsafe(what, shown, 'it is absolute');
  const lexical = path.resolve(root.real, relPath);
  if (!isInside(root.real, lexical)) throw unsafe(what, shown, 'it points outside the ops repo');
  const rel = path.relative(root.real, lexical).split(path.sep).join('/');
  if (hasGitSegment(rel)) throw unsafe(what, shown, 'it points into .git');
  const abs = realpathOrMissing(lexical, what, displayPath(root, rel), ' in the ops repo');
  if (!isInside(root.real, abs)) throw unsafe(what, shown, 'it is a symlink pointing outside the ops repo');
  if (hasGitSegment(path.relative(root.real, abs))) throw unsafe(what, shown, 'it is a symlink into .git');
  return { abs, rel };
}
