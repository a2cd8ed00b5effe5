// Bytes on disk under a directory (files and symlinks themselves, not what links point to),
// walked without recursion. Used to hold a checkout to KEELSON_GIT_MAX_REPO_BYTES while git
// writes it, so a hostile or runaway repository cannot fill keelson's disk.
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';

/** Stops walking as soon as the total passes `stopAbove` (the caller only needs to know that). */
export async function dirSize(root: string, stopAbove = Number.POSITIVE_INFINITY): Promise<number> {
  let total = 0;
  const pending = [root];
  while (pending.length > 0 && total <= stopAbove) {
    const dir = pending.pop() as string;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue; // git renames and deletes files while we walk: a vanished folder counts as empty
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        pending.push(full);
        continue;
      }
      try {
        total += (await lstat(full)).size;
      } catch {
        // removed meanwhile (a temp pack git just renamed)
      }
    }
  }
  return total;
}
