// Git guards each file it rewrites with `<file>.lock` (index, config, HEAD, ORIG_HEAD,
// packed-refs, shallow, every ref under refs/) and removes the lock when it is done. A git that
// is killed part-way — an aborted effect, the fetch deadline, a SIGKILLed keelson — leaves its
// lock behind, and every later git command touching that file fails with "could not lock …:
// File exists" until someone deletes it by hand: the repo would never sync again and its
// deployments would wait in `syncing` for ever.
//
// Only the caller may know that no git runs in the checkout (keelson holds its per-repo mutex
// and each process has its own data dir), so removing the locks is the caller's decision; this
// module only finds and removes them. Object files are never locked, so objects/ is skipped (it
// is also the large part of a .git).
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/** Removes every `*.lock` file under `gitDir` (outside objects/); returns the paths removed, relative to gitDir. */
export async function removeGitLocks(gitDir: string): Promise<string[]> {
  const removed: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (dir === gitDir && entry.name === 'objects') continue;
        await walk(full);
      } else if (entry.name.endsWith('.lock')) {
        await rm(full, { force: true });
        removed.push(path.relative(gitDir, full));
      }
    }
  };
  await walk(gitDir);
  return removed;
}
