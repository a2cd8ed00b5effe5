// Read-only trees, one per commit, under `<dataDir>/trees/<repoId>/<sha>`, written from a local
// clone's object store (`git ls-tree` + `git cat-file --batch`: exact bytes, no checkout, no
// .gitattributes filters or export-subst, nothing written into the clone, so no lock against a
// fetch running meanwhile).
//
// - A commit is content-addressed: once a tree is complete it never changes. It is written into
//   a temp dir beside its place and renamed into it, so a process killed mid-way leaves only a
//   `.tmp.*` leftover (removed by the next prune), never a half tree under a sha's name.
// - Concurrent requests for one sha share one materialisation.
// - Files are made read-only (0444/0555, dirs 0555): nothing renders from a tree it could change.
// - Every tree handed out is counted until released; prune never removes a counted one. The
//   least recently used trees beyond `maxTrees` per repo, and any unused for `maxAgeMs`, go.
//   Hazard: like the checkouts, one data dir per process (another process's trees are not counted).
import { spawn } from 'node:child_process';
import { existsSync, renameSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, TerminalError, TransientError } from '../errors.ts';
import { childEnvironment, SAFE_GIT_CONFIG } from '../opsrepo/createGit.ts';

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

export interface TreeCacheOptions {
  /** `<dataDir>/trees` */
  readonly root: string;
  /** trees kept per repo (least recently used go first); default 20 */
  readonly maxTrees?: number;
  /** a tree unused this long goes; default 1 h */
  readonly maxAgeMs?: number;
  /** how often materialising also prunes; default 60 s */
  readonly pruneIntervalMs?: number;
  /** tests: a wall clock */
  readonly now?: () => number;
}

export interface TreeLease {
  readonly dir: string;
  release(): void;
}

export interface TreeCache {
  /**
   * The tree of `sha` (a commit in the clone at `gitDir`), materialised once. Throws TerminalError
   * `source_commit_missing` when the clone does not have the commit (the caller may fetch and retry).
   */
  acquire(repoId: string, sha: string, gitDir: string, signal?: AbortSignal): Promise<TreeLease>;
  /** Removes unused trees past the limits and leftovers of killed materialisations; returns the removed paths. */
  prune(): Promise<string[]>;
  /** Materialisations done (not shared, not found on disk): for tests and metrics. */
  stats(): { materialised: number };
}

export class CommitMissingError extends TerminalError {
  constructor(sha: string) {
    super(`Commit ${sha} is not in the ops repo any more (rewritten history?); it cannot be rendered again. Deploy a commit the branch has.`, {
      code: 'source_commit_missing',
    });
  }
}

interface Entry {
  readonly mode: string;
  readonly type: string;
  readonly object: string;
  readonly file: string;
}

/** Runs git in `gitDir` without hooks or ambient GIT_* variables; stdout to `onStdout`, or collected. */
function runGit(gitDir: string, args: string[], options: { input?: string; signal?: AbortSignal; onStdout?: (chunk: Buffer) => void }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', [...SAFE_GIT_CONFIG.flatMap((c) => ['-c', c]), ...args], {
      cwd: gitDir,
      env: childEnvironment(false),
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (options.onStdout ? options.onStdout(chunk) : out.push(chunk)));
    child.stderr.on('data', (chunk: Buffer) => {
      if (err.length < 4096) err += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(Object.assign(new Error(`git ${args[0]} exited with ${code}: ${err.trim()}`), { gitExit: code }));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

async function writeTree(gitDir: string, sha: string, target: string, signal?: AbortSignal): Promise<void> {
  const listing = await runGit(gitDir, ['ls-tree', '-r', '-z', '--full-tree', sha], { signal });
  const entries: Entry[] = [];
  for (const record of listing.toString('utf8').split('\0')) {
    if (!record) continue;
    const tab = record.indexOf('\t');
    const [mode, type, object] = record.slice(0, tab).split(' ') as [string, string, string];
    entries.push({ mode, type, object, file: record.slice(tab + 1) });
  }
  const blobs = entries.filter((e) => e.type === 'blob');
  for (const entry of entries) {
    // paths come from someone else's repository: never outside the target, never into a .git
    const parts = entry.file.split('/');
    if (path.isAbsolute(entry.file) || parts.some((p) => p === '..' || p === '.' || p === '' || p.toLowerCase() === '.git')) {
      throw new TerminalError(`The ops repo commit ${sha} has an unsafe path ${JSON.stringify(entry.file)}; it is not rendered.`, { code: 'render_path_unsafe' });
    }
  }
  // git writes a tree's blobs in order, each `<sha> blob <size>\n<content>\n`
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let index = 0;
  let need: number | null = null;
  let writes = Promise.resolve();
  let failure: Error | null = null;
  const take = (n: number): Buffer => {
    const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    pending = rest.length > 0 ? [rest] : [];
    pendingBytes = rest.length;
    return head;
  };
  const onStdout = (chunk: Buffer): void => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    for (;;) {
      if (need === null) {
        const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
        pending = all.length > 0 ? [all] : [];
        const newline = all.indexOf(10);
        if (newline < 0) return;
        const header = take(newline + 1).toString('utf8').trim();
        const size = Number(header.split(' ')[2]);
        if (!Number.isInteger(size)) {
          failure ??= new Error(`unexpected object header from git cat-file: ${header.slice(0, 100)}`);
          return;
        }
        need = size;
      }
      if (pendingBytes < need + 1) return;
      const content = take(need + 1).subarray(0, need);
      need = null;
      const entry = blobs[index++];
      if (!entry) {
        failure ??= new Error('git cat-file returned more objects than asked for');
        return;
      }
      const file = path.join(target, entry.file);
      writes = writes.then(async () => {
        await mkdir(path.dirname(file), { recursive: true });
        if (entry.mode === '120000') await symlink(content.toString('utf8'), file);
        else await writeFile(file, content, { mode: entry.mode === '100755' ? 0o555 : 0o444 });
      });
    }
  };
  if (blobs.length > 0) {
    await runGit(gitDir, ['cat-file', '--batch'], { input: blobs.map((b) => `${b.object}\n`).join(''), signal, onStdout });
  }
  await writes;
  if (failure) throw failure;
  if (index !== blobs.length) throw new Error(`git cat-file returned ${index} of ${blobs.length} objects`);
  // submodules (mode 160000) are not followed: their folder exists, empty
  for (const entry of entries.filter((e) => e.type === 'commit')) await mkdir(path.join(target, entry.file), { recursive: true });
}

/** chmod -R: directories 0555 (read-only) or 0755 (to remove them). Symlinks are left alone. */
async function chmodDirs(dir: string, mode: number): Promise<void> {
  if (mode !== 0o555) await chmod(dir, mode);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await chmodDirs(path.join(dir, entry.name), mode);
  }
  if (mode === 0o555) await chmod(dir, mode);
}

async function removeTree(dir: string): Promise<void> {
  await chmodDirs(dir, 0o755).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}

export function createTreeCache(options: TreeCacheOptions): TreeCache {
  const maxTrees = options.maxTrees ?? 20;
  const maxAgeMs = options.maxAgeMs ?? 3_600_000;
  const pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
  const now = options.now ?? Date.now;
  /** trees handed out and not released, by directory */
  const inUse = new Map<string, number>();
  /** materialisations in flight, by directory */
  const flights = new Map<string, Promise<void>>();
  /** temp dirs being written now (not leftovers) */
  const writing = new Set<string>();
  let materialised = 0;
  let lastPrune = 0;

  async function materialise(repoId: string, sha: string, gitDir: string, dir: string): Promise<void> {
    const parent = path.dirname(dir);
    await mkdir(parent, { recursive: true });
    const tmp = await mkdtemp(path.join(parent, `.tmp.${sha}.`));
    writing.add(tmp);
    try {
      try {
        await runGit(gitDir, ['cat-file', '-e', `${sha}^{commit}`], {});
      } catch {
        throw new CommitMissingError(sha);
      }
      await writeTree(gitDir, sha, tmp);
      await chmodDirs(tmp, 0o555);
      try {
        renameSync(tmp, dir);
      } catch (error) {
        // another writer finished first (the same bytes): theirs stays
        if (!existsSync(dir)) throw error;
        await removeTree(tmp);
      }
      materialised += 1;
    } catch (error) {
      await removeTree(tmp);
      if (error instanceof TerminalError) throw error;
      throw new TransientError(`Could not materialise commit ${sha} of ops repo ${repoId} under ${parent}: ${errorMessage(error)}. It will be retried.`, {
        code: 'source_tree_failed',
        cause: error,
      });
    } finally {
      writing.delete(tmp);
    }
  }

  async function prune(): Promise<string[]> {
    lastPrune = now();
    const removed: string[] = [];
    let repos: string[];
    try {
      repos = await readdir(options.root);
    } catch {
      return removed;
    }
    for (const repo of repos) {
      const repoDir = path.join(options.root, repo);
      const trees: { dir: string; used: number }[] = [];
      for (const name of await readdir(repoDir).catch(() => [] as string[])) {
        const dir = path.join(repoDir, name);
        if (name.startsWith('.tmp.') || name.startsWith('.trash.')) {
          // a killed process's leftover (this process's own writes are in `writing`)
          if (!writing.has(dir)) {
            await removeTree(dir);
            removed.push(dir);
          }
          continue;
        }
        const info = await lstat(dir).catch(() => null);
        if (info?.isDirectory()) trees.push({ dir, used: info.mtimeMs });
      }
      trees.sort((a, b) => b.used - a.used);
      for (const [rank, tree] of trees.entries()) {
        if (rank < maxTrees && now() - tree.used < maxAgeMs) continue;
        // checked and moved aside in one synchronous step: an acquire counts itself before it
        // looks at the disk, so it either keeps the tree or finds it gone
        if ((inUse.get(tree.dir) ?? 0) > 0 || flights.has(tree.dir)) continue;
        const trash = path.join(repoDir, `.trash.${path.basename(tree.dir)}.${process.pid}.${now()}`);
        try {
          renameSync(tree.dir, trash);
        } catch {
          continue;
        }
        await removeTree(trash);
        removed.push(tree.dir);
      }
    }
    return removed;
  }

  return {
    async acquire(repoId, sha, gitDir, signal) {
      if (!SHA.test(sha)) throw new TerminalError(`${JSON.stringify(sha)} is not a commit sha.`, { code: 'source_commit_missing' });
      if (!/^[0-9a-f-]{36}$/.test(repoId)) throw new TerminalError(`Ops repo id ${JSON.stringify(repoId)} is not a UUID.`, { code: 'repo_not_registered' });
      const dir = path.join(options.root, repoId, sha);
      inUse.set(dir, (inUse.get(dir) ?? 0) + 1);
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        const count = (inUse.get(dir) ?? 1) - 1;
        if (count > 0) inUse.set(dir, count);
        else inUse.delete(dir);
      };
      try {
        if (!existsSync(dir)) {
          let flight = flights.get(dir);
          if (!flight) {
            // not cancelled by any one caller: others may be waiting for the same tree
            flight = materialise(repoId, sha, gitDir, dir).finally(() => flights.delete(dir));
            flights.set(dir, flight);
          }
          await untilAborted(flight, signal);
        }
        // the directory's times are its last use (LRU); the owner may set them on a read-only dir
        const at = new Date(now());
        await utimes(dir, at, at);
      } catch (error) {
        release();
        throw error;
      }
      if (now() - lastPrune >= pruneIntervalMs) void prune().catch(() => undefined);
      return { dir, release };
    },
    prune,
    stats: () => ({ materialised }),
  };
}

async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return await promise;
  const aborted = (): TransientError =>
    new TransientError('Waiting for the ops repo commit to be materialised was cancelled; the next attempt starts over.', { code: 'render_aborted', cause: signal.reason });
  if (signal.aborted) throw aborted();
  let onAbort = (): void => undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => signal.addEventListener('abort', (onAbort = () => reject(aborted())), { once: true }))]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
