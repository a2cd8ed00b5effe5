// Keeps a local checkout of every ops repo under `<dataDir>/ops-repos/<name>` equal to
// `origin/<branch>`.
//
// - First sync clones into a temp dir beside the target and renames it into place, so a failed
//   or cancelled clone never leaves a half checkout where the renderer would read it.
// - Later syncs fetch the one branch and hard-reset to it (never merge: the remote is the truth,
//   force-pushes included). A failed fetch leaves the last good checkout untouched.
// - At most one git operation per repo runs at a time in this process; concurrent callers share
//   the sync in flight. Hazard: two processes sharing one dataDir are NOT serialised; give each
//   keelson process its own dataDir.
// - The row records last_synced_at / last_sha / last_error; every string written anywhere is
//   redacted first (URLs may carry tokens).
// - Limits, because a repository is someone else's data: each clone or fetch has an overall
//   deadline (fetchTimeoutMs, besides git's own inactivity timeout) and the checkout a size
//   limit (maxRepoBytes) measured while git writes; git is killed past either. file:// URLs only
//   when the operator allows them (allowFileRepos).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GitError } from 'simple-git';
import { z } from 'zod';
import type { Db } from '../db/pool.ts';
import { NAME_PATTERN } from '../db/rows.ts';
import { errorMessage, KeelsonError, TerminalError, TransientError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { classifyGitError } from './classifyGitError.ts';
import { createGit } from './createGit.ts';
import { dirSize } from './dirSize.ts';
import { removeGitLocks } from './gitLocks.ts';
import { assertSafeRepoUrl, redactRepoUrl } from './repoUrl.ts';
import { branchProblem } from '../tenancy/inputRules.ts';
import { getOpsRepoForSync, type OpsRepoForSync } from './sql/getOpsRepoForSync.ts';
import { recordOpsRepoFailed } from './sql/recordOpsRepoFailed.ts';
import { recordOpsRepoSynced } from './sql/recordOpsRepoSynced.ts';

/** A checkout and the commit it is at (what `fetch` and `checkout` resolve with). */
export interface RepoHead {
  readonly repoId: string;
  readonly name: string;
  /** Absolute checkout root. */
  readonly dir: string;
  /** ops_repos.path: the subfolder inside the repo that holds the manifests ('' = root). */
  readonly path: string;
  /** HEAD after the reset. */
  readonly sha: string;
  /** false when skipped because sync_interval_s has not elapsed. */
  readonly fetched: boolean;
}

/**
 * Two verbs, one meaning each (the old `sync` had three: forced, by interval, reuse):
 * - `fetch`: bring the checkout to the remote branch's head — when sync_interval_s has elapsed,
 *   or always with `force` — and say which commit that is.
 * - `checkout`: any usable checkout will do (fetched only when there is none), for callers that
 *   read commits they already know by sha (src/source/ materialises trees from its objects).
 * Nothing here renders from the checkout's working tree: it moves with every fetch.
 */
export interface OpsRepoManager {
  fetch(repoId: string, options?: { force?: boolean; signal?: AbortSignal }): Promise<RepoHead>;
  checkout(repoId: string, options?: { signal?: AbortSignal }): Promise<RepoHead>;
}

export interface OpsRepoManagerDeps {
  db: Db;
  dataDir: string;
  log: Logger;
  metrics?: Metrics;
  /** Kill a git command that prints nothing for this long; default 120 s. */
  gitTimeoutMs?: number;
  /** KEELSON_GIT_FETCH_TIMEOUT: a clone or fetch, however chatty, is killed after this long; default 5 min. */
  fetchTimeoutMs?: number;
  /** KEELSON_GIT_MAX_REPO_BYTES: a checkout (with its .git) larger than this is refused and removed; default 1 GiB. */
  maxRepoBytes?: number;
  /** KEELSON_ALLOW_FILE_REPOS: whether file:// URLs may be synced; default false. */
  allowFileRepos?: boolean;
}

export const DEFAULT_FETCH_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_MAX_REPO_BYTES = 1024 * 1024 * 1024;
/** How often the checkout is measured while git writes it. */
const SIZE_POLL_MS = 200;

/** Written into `.git/` of each checkout: what it was synced from, to notice a changed row. */
const CheckoutStamp = z.object({ urlHash: z.string(), branch: z.string() });
type CheckoutStamp = z.infer<typeof CheckoutStamp>;
const STAMP_FILE = 'keelson-sync.json';

const RepoId = z.string().uuid();

function assertSafeBranch(branch: string): void {
  // the same rule as the API and the database (git check-ref-format, no leading '-')
  const problem = branchProblem(branch);
  if (problem) {
    throw new TerminalError(`Ops repo branch ${JSON.stringify(branch)} is not a valid branch name: ${problem}. Set ops_repos.branch to an existing branch.`, {
      code: 'repo_branch_invalid',
    });
  }
}

function urlHash(url: string): string {
  return createHash('sha256').update(url).digest('hex');
}

function abortedError(reason: unknown): TransientError {
  return new TransientError('The ops repo sync was cancelled by its caller; the next sync starts over.', {
    code: 'repo_sync_aborted',
    cause: reason,
  });
}

/** How fresh a caller needs the checkout, in order: a flight serves callers at or below its level. */
const REUSE = 0;
const INTERVAL = 1;
const FORCE = 2;
type Freshness = typeof REUSE | typeof INTERVAL | typeof FORCE;

interface Flight {
  readonly promise: Promise<RepoHead>;
  readonly freshness: Freshness;
  readonly controller: AbortController;
  /** Callers with a signal still waiting; the git work is cancelled only when all of them gave up. */
  waiters: number;
  /** A caller without a signal joined: nobody can cancel this flight any more. */
  pinned: boolean;
}

export function createOpsRepoManager(deps: OpsRepoManagerDeps): OpsRepoManager {
  const { db, metrics } = deps;
  const reposDir = path.resolve(deps.dataDir, 'ops-repos');
  const timeoutMs = deps.gitTimeoutMs ?? 120_000;
  const fetchTimeoutMs = deps.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  const maxRepoBytes = deps.maxRepoBytes ?? DEFAULT_MAX_REPO_BYTES;
  const allowFileRepos = deps.allowFileRepos ?? false;
  const gitOptions = (baseDir: string, signal: AbortSignal) => ({ baseDir, signal, timeoutMs, allowFileRepos });
  const log = deps.log.child({ component: 'opsrepo' });
  /** The sync callers may join, per repo. */
  const flights = new Map<string, Flight>();
  /** The end of the last sync started, per repo: the per-repo mutex. */
  const tails = new Map<string, Promise<unknown>>();

  async function readStamp(dir: string): Promise<CheckoutStamp | null> {
    try {
      return CheckoutStamp.parse(JSON.parse(await readFile(path.join(dir, '.git', STAMP_FILE), 'utf8')));
    } catch {
      return null;
    }
  }

  /** HEAD of a usable checkout, or null when there is none (never cloned, or broken). */
  async function checkoutHead(dir: string, signal: AbortSignal): Promise<string | null> {
    if (!existsSync(path.join(dir, '.git'))) return null;
    try {
      return (await createGit(gitOptions(dir, signal)).revparse(['--verify', 'HEAD^{commit}'])).trim();
    } catch (error) {
      if (signal.aborted) throw abortedError(signal.reason);
      log.warn({ opsRepoDir: dir, err: redactRepoUrl(errorMessage(error)) }, 'ops repo checkout is unusable; it will be cloned again');
      return null;
    }
  }

  async function clone(row: OpsRepoForSync, dir: string, signal: AbortSignal, checkSize: (root: string) => Promise<void>): Promise<string> {
    await mkdir(reposDir, { recursive: true });
    // Leftovers of a process killed mid-clone. Names cannot contain '.', so the prefix is exact.
    for (const entry of await readdir(reposDir)) {
      if (entry.startsWith(`.clone.${row.name}.`) || entry.startsWith(`.trash.${row.name}.`)) {
        await rm(path.join(reposDir, entry), { recursive: true, force: true });
      }
    }
    const tmp = await mkdtemp(path.join(reposDir, `.clone.${row.name}.`));
    try {
      const git = createGit(gitOptions(reposDir, signal));
      await git.clone(row.repo_url, tmp, ['--no-tags', '--single-branch', '--branch', row.branch]);
      // a small repo is done before the first measurement: measure before it takes its place
      await checkSize(tmp);
      const sha = (await createGit(gitOptions(tmp, signal)).revparse(['--verify', 'HEAD^{commit}'])).trim();
      await writeStamp(tmp, row);
      if (existsSync(dir)) {
        // A broken checkout (HEAD unreadable): move it aside first so the swap is two renames.
        const trash = path.join(reposDir, `.trash.${row.name}.${process.pid}.${Date.now()}`);
        await rename(dir, trash);
        await rename(tmp, dir);
        await rm(trash, { recursive: true, force: true });
      } else {
        await rename(tmp, dir);
      }
      return sha;
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
      throw error;
    }
  }

  async function writeStamp(dir: string, row: OpsRepoForSync): Promise<void> {
    const stamp: CheckoutStamp = { urlHash: urlHash(row.repo_url), branch: row.branch };
    await writeFile(path.join(dir, '.git', STAMP_FILE), JSON.stringify(stamp));
  }

  async function fetchAndReset(row: OpsRepoForSync, dir: string, signal: AbortSignal, checkSize: (root: string) => Promise<void>): Promise<string> {
    // Only this process touches the checkout and the per-repo mutex is held, so a lock file here
    // (index.lock, config.lock, a ref's lock) is a leftover of a git killed part-way (abort,
    // timeout, crash): remove them, or every later sync fails until someone deletes them by hand.
    const locks = await removeGitLocks(path.join(dir, '.git'));
    if (locks.length > 0) log.info({ opsRepo: row.name, locks }, 'removed lock files left by an interrupted git');
    const git = createGit(gitOptions(dir, signal));
    // The row may have a new URL since the clone; `--` because the URL is data, not an option.
    await git.raw(['remote', 'set-url', 'origin', '--', row.repo_url]);
    const remoteRef = `refs/remotes/origin/${row.branch}`;
    // An explicit refspec: the clone was --single-branch, and the branch may have changed since.
    await git.raw(['fetch', '--no-tags', '--prune', '--force', 'origin', '--', `+refs/heads/${row.branch}:${remoteRef}`]);
    await checkSize(dir);
    const sha = (await git.revparse(['--verify', `${remoteRef}^{commit}`])).trim();
    // Hard reset, never merge: rewritten history on the remote is followed as is.
    await git.raw(['reset', '--hard', '--quiet', sha]);
    // Files the commit does not have (left by an older commit's ignore rules, or by hand) would
    // otherwise be rendered as manifests.
    await git.raw(['clean', '-ffdxq']);
    // the working tree counts too: a small pack may hold a file that checks out huge
    await checkSize(dir);
    await writeStamp(dir, row);
    return sha;
  }

  async function recordFailure(row: OpsRepoForSync, error: KeelsonError): Promise<void> {
    try {
      await recordOpsRepoFailed(db, row.id, redactRepoUrl(error.message));
    } catch (dbError) {
      log.error({ opsRepo: row.name, err: redactRepoUrl(errorMessage(dbError)) }, 'could not record the ops repo sync failure');
    }
  }

  /**
   * The overall deadline and the size limit of one clone or fetch. `signal` aborts (and git is
   * killed) with the KeelsonError to report; `check` measures a finished checkout once more.
   * While a clone runs, its temp dir (`watchPrefix` inside `watchDir`) is what grows.
   */
  function guardLimits(name: string, watchDir: string, watchPrefix: string | null) {
    const controller = new AbortController();
    const tooLarge = (bytes: number) =>
      new TerminalError(
        `Ops repo "${name}" is larger than the limit of ${maxRepoBytes} bytes (KEELSON_GIT_MAX_REPO_BYTES) at ${bytes} bytes or more; the checkout was removed. Make the repository smaller or raise the limit.`,
        { code: 'repo_too_large' },
      );
    const deadline = setTimeout(() => {
      controller.abort(
        new TransientError(
          `Syncing ops repo "${name}" took longer than ${Math.round(fetchTimeoutMs / 1000)} s (KEELSON_GIT_FETCH_TIMEOUT) and was stopped; it will be retried. A repository this slow to fetch may be too large or its remote too slow.`,
          { code: 'repo_timeout' },
        ),
      );
    }, fetchTimeoutMs);
    const measure = async (root: string): Promise<number> => await dirSize(root, maxRepoBytes);
    let measuring = false;
    const poll = setInterval(() => {
      if (measuring || controller.signal.aborted) return;
      measuring = true;
      void (async () => {
        let root = watchDir;
        if (watchPrefix !== null) {
          const entry = (await readdir(watchDir).catch(() => [] as string[])).find((e) => e.startsWith(watchPrefix));
          if (!entry) return;
          root = path.join(watchDir, entry);
        }
        const bytes = await measure(root);
        if (bytes > maxRepoBytes && !controller.signal.aborted) controller.abort(tooLarge(bytes));
      })().finally(() => {
        measuring = false;
      });
    }, SIZE_POLL_MS);
    return {
      signal: controller.signal,
      check: async (root: string) => {
        const bytes = await measure(root);
        if (bytes > maxRepoBytes) {
          controller.abort(tooLarge(bytes));
          throw tooLarge(bytes);
        }
      },
      stop: () => {
        clearTimeout(deadline);
        clearInterval(poll);
      },
    };
  }

  async function runSync(repoId: string, freshness: Freshness, signal: AbortSignal): Promise<RepoHead> {
    if (signal.aborted) throw abortedError(signal.reason);
    let row: OpsRepoForSync | null;
    try {
      row = await getOpsRepoForSync(db, repoId);
    } catch (error) {
      throw new TransientError(`Could not read ops repo ${repoId} from the database: ${redactRepoUrl(errorMessage(error))}. It will be retried.`, {
        code: 'database_unavailable',
        cause: new Error(redactRepoUrl(errorMessage(error))),
      });
    }
    if (!row) {
      throw new TerminalError(`Ops repo ${repoId} is not registered. Insert it into ops_repos or point the deployment at an existing ops repo.`, {
        code: 'repo_not_registered',
      });
    }
    if (!NAME_PATTERN.test(row.name)) {
      // The database constraint guarantees this; the name becomes a directory, so check anyway.
      throw new TerminalError(`Ops repo name ${JSON.stringify(row.name)} is not a valid directory name. Rename the ops repo.`, {
        code: 'repo_name_invalid',
      });
    }
    const dir = path.join(reposDir, row.name);
    const repoLog = log.child({ opsRepo: row.name, repoUrl: redactRepoUrl(row.repo_url), branch: row.branch });
    const result = (sha: string, fetched: boolean): RepoHead => ({ repoId: row.id, name: row.name, dir, path: row.path, sha, fetched });
    let head: string | null;
    try {
      assertSafeRepoUrl(row.repo_url, { allowFileRepos });
      assertSafeBranch(row.branch);
      head = await checkoutHead(dir, signal);
      if (freshness !== FORCE && (row.fresh || freshness === REUSE) && head !== null) {
        const stamp = await readStamp(dir);
        if (stamp && stamp.urlHash === urlHash(row.repo_url) && stamp.branch === row.branch) {
          metrics?.gitSyncs.inc({ repo: row.name, outcome: 'skipped' });
          repoLog.debug({ sha: head }, 'ops repo synced recently; fetch skipped');
          return result(head, false);
        }
      }
      const started = performance.now();
      let sha: string;
      const limits = guardLimits(row.name, head === null ? reposDir : dir, head === null ? `.clone.${row.name}.` : null);
      const gitSignal = AbortSignal.any([signal, limits.signal]);
      try {
        sha = head === null ? await clone(row, dir, gitSignal, limits.check) : await fetchAndReset(row, dir, gitSignal, limits.check);
      } catch (error) {
        if (signal.aborted) throw abortedError(signal.reason);
        if (limits.signal.aborted) {
          if ((limits.signal.reason as KeelsonError).code === 'repo_too_large') await rm(dir, { recursive: true, force: true });
          throw limits.signal.reason as KeelsonError;
        }
        if (error instanceof KeelsonError) throw error;
        if (!(error instanceof GitError)) {
          // fs errors (disk full, permissions): not the remote's fault, but retrying may help.
          throw new TransientError(
            `Syncing ops repo "${row.name}" failed on local disk under ${reposDir}: ${redactRepoUrl(errorMessage(error))}. Check the data directory.`,
            { code: 'repo_sync_failed', cause: new Error(redactRepoUrl(errorMessage(error))) },
          );
        }
        throw classifyGitError(error, { repoName: row.name, repoUrl: row.repo_url, branch: row.branch, hadCheckout: head !== null });
      } finally {
        limits.stop();
      }
      metrics?.gitSyncDuration.observe({ repo: row.name }, (performance.now() - started) / 1000);
      try {
        await recordOpsRepoSynced(db, row.id, sha);
      } catch (error) {
        throw new TransientError(`Ops repo "${row.name}" was synced to ${sha} but the database could not record it: ${redactRepoUrl(errorMessage(error))}. It will be retried.`, {
          code: 'database_unavailable',
          cause: new Error(redactRepoUrl(errorMessage(error))),
        });
      }
      metrics?.gitSyncs.inc({ repo: row.name, outcome: 'fetched' });
      repoLog.info({ sha, previousSha: head, cloned: head === null, durationMs: Math.round(performance.now() - started) }, 'ops repo synced');
      return result(sha, true);
    } catch (error) {
      const keelsonError =
        error instanceof KeelsonError
          ? error
          : new TransientError(`Syncing ops repo "${row.name}" failed: ${redactRepoUrl(errorMessage(error))}.`, {
              code: 'repo_sync_failed',
              cause: new Error(redactRepoUrl(errorMessage(error))),
            });
      // A cancelled sync says nothing about the repo; leave the row as it was.
      if (keelsonError.code !== 'repo_sync_aborted' && keelsonError.code !== 'database_unavailable') {
        await recordFailure(row, keelsonError);
        metrics?.gitSyncs.inc({ repo: row.name, outcome: 'failed' });
      }
      repoLog.warn({ code: keelsonError.code, kind: keelsonError.kind, err: redactRepoUrl(keelsonError.message) }, 'ops repo sync failed');
      throw keelsonError;
    }
  }

  function startFlight(repoId: string, freshness: Freshness): Flight {
    const controller = new AbortController();
    const previous = tails.get(repoId) ?? Promise.resolve();
    const promise = previous.then(() => runSync(repoId, freshness, controller.signal));
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    tails.set(repoId, settled);
    const flight: Flight = { promise, freshness, controller, waiters: 0, pinned: false };
    flights.set(repoId, flight);
    void settled.then(() => {
      if (flights.get(repoId) === flight) flights.delete(repoId);
      if (tails.get(repoId) === settled) tails.delete(repoId);
    });
    return flight;
  }

  function join(repoId: string, flight: Flight, signal: AbortSignal | undefined): Promise<RepoHead> {
    if (!signal) {
      flight.pinned = true;
      return flight.promise;
    }
    flight.waiters += 1;
    return new Promise<RepoHead>((resolve, reject) => {
      const onAbort = (): void => {
        flight.waiters -= 1;
        if (flight.waiters === 0 && !flight.pinned) {
          // Nobody wants this result any more: stop git, and let the next caller start afresh.
          if (flights.get(repoId) === flight) flights.delete(repoId);
          flight.controller.abort(signal.reason);
        }
        reject(abortedError(signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }

  async function request(repoId: string, freshness: Freshness, signal: AbortSignal | undefined): Promise<RepoHead> {
    if (signal?.aborted) throw abortedError(signal.reason);
    if (!RepoId.safeParse(repoId).success) {
      throw new TerminalError(`Ops repo id ${JSON.stringify(repoId)} is not a UUID. Point the deployment at an existing ops repo.`, {
        code: 'repo_not_registered',
      });
    }
    let flight = flights.get(repoId);
    // A caller shares a flight at least as fresh as it needs; a less fresh one may be about to
    // skip the fetch (a forced fetch must really fetch), so it queues behind it instead.
    if (!flight || flight.freshness < freshness) flight = startFlight(repoId, freshness);
    return await join(repoId, flight, signal);
  }

  return {
    async fetch(repoId, options = {}) {
      return await request(repoId, options.force ? FORCE : INTERVAL, options.signal);
    },
    async checkout(repoId, options = {}) {
      return await request(repoId, REUSE, options.signal);
    },
  };
}
