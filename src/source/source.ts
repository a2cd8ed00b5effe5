// The seam between "which commit" and "its files". A deployment renders exactly the commit its
// action fetched (or, for a rollback, the commit of the release it goes back to): never a working
// tree that a later fetch may have moved. So fetching names a commit, and reading goes through a
// read-only tree materialised for that one commit.

/** The head of an ops repo's branch, as a fetch found it. */
export interface SourceHead {
  readonly repoId: string;
  /** ops_repos.name */
  readonly name: string;
  /** ops_repos.path: the folder inside the repo that holds the manifests ('' = root) */
  readonly path: string;
  readonly sha: string;
}

/** A read-only copy of one commit's files. Valid until `release()`; then a cleanup may remove it. */
export interface SourceTree {
  readonly repoId: string;
  readonly name: string;
  readonly path: string;
  readonly sha: string;
  /** absolute directory holding the commit's files (no .git) */
  readonly dir: string;
  release(): void;
}

export interface Source {
  /**
   * The branch head: fetched when sync_interval_s has elapsed, or always with `force` (a new
   * desired state must see the newest commit).
   */
  head(repoId: string, options?: { force?: boolean; signal?: AbortSignal }): Promise<SourceHead>;
  /**
   * The files of exactly `sha`. A commit the local clone lacks (a fresh host, a force-push) is
   * fetched once; one the remote no longer has is a terminal `source_commit_missing`.
   */
  tree(repoId: string, sha: string, options?: { signal?: AbortSignal }): Promise<SourceTree>;
}
