// The git implementation of Source: heads from the ops repo manager's checkouts (src/opsrepo/),
// trees of single commits from the tree cache (treeCache.ts) under `<dataDir>/trees`.
import path from 'node:path';
import { KeelsonError } from '../errors.ts';
import type { OpsRepoManager } from '../opsrepo/opsRepoManager.ts';
import type { Source, SourceTree } from './source.ts';
import { createTreeCache, type TreeCache, type TreeCacheOptions } from './treeCache.ts';

export interface GitSourceDeps {
  readonly opsRepos: OpsRepoManager;
  readonly dataDir: string;
  readonly trees?: Omit<TreeCacheOptions, 'root'>;
}

export interface GitSource extends Source {
  readonly cache: TreeCache;
}

export function createGitSource(deps: GitSourceDeps): GitSource {
  const { opsRepos } = deps;
  const cache = createTreeCache({ root: path.resolve(deps.dataDir, 'trees'), ...deps.trees });
  return {
    cache,
    async head(repoId, options = {}) {
      const head = await opsRepos.fetch(repoId, options);
      return { repoId: head.repoId, name: head.name, path: head.path, sha: head.sha };
    },
    async tree(repoId, sha, options = {}): Promise<SourceTree> {
      // the commit's objects are in the clone: no fetch unless this host has no clone yet
      let checkout = await opsRepos.checkout(repoId, options);
      let lease;
      try {
        lease = await cache.acquire(repoId, sha, checkout.dir, options.signal);
      } catch (error) {
        if (!(error instanceof KeelsonError) || error.code !== 'source_commit_missing') throw error;
        // a commit pushed after this clone's last fetch (another host fetched it): fetch once
        checkout = await opsRepos.fetch(repoId, { force: true, ...(options.signal ? { signal: options.signal } : {}) });
        lease = await cache.acquire(repoId, sha, checkout.dir, options.signal);
      }
      return { repoId, name: checkout.name, path: checkout.path, sha, dir: lease.dir, release: lease.release };
    },
  };
}
