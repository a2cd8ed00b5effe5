// The git source over a real ops repo row and clone: heads name commits, trees hold exactly them,
// a commit this clone has not fetched yet is fetched once, one the remote does not have is refused.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitSource, type GitSource } from '../../src/source/gitSource.ts';
import { createOrigin, type OriginRepo } from '../opsrepo/gitFixtures.ts';
import { createHarness, rejection, type Harness } from '../opsrepo/harness.ts';

let h: Harness;
let origin: OriginRepo;
let source: GitSource;
let id: string;

beforeAll(async () => {
  h = await createHarness();
  origin = createOrigin(h.tmp, 'src');
  origin.commit({ 'app/values.yaml': 'v: 1\n' });
  // a long interval: only forced fetches reach the remote
  id = await h.insertRepo({ name: 'src', repo_url: origin.url, path: 'app', sync_interval_s: 3600 });
  source = createGitSource({ opsRepos: h.manager, dataDir: h.dataDir });
});

afterAll(async () => {
  await h?.close();
});

describe('git source', () => {
  it('gives the head by fetching, and the tree of any commit by sha, concurrently materialised once', async () => {
    const head = await source.head(id);
    expect(head).toMatchObject({ repoId: id, name: 'src', path: 'app', sha: origin.head() });
    const trees = await Promise.all([source.tree(id, head.sha), source.tree(id, head.sha), source.tree(id, head.sha)]);
    expect(new Set(trees.map((t) => t.dir))).toEqual(new Set([path.join(h.dataDir, 'trees', id, head.sha)]));
    expect(source.cache.stats().materialised).toBe(1);
    expect(readFileSync(path.join(trees[0]!.dir, 'app/values.yaml'), 'utf8')).toBe('v: 1\n');
    for (const tree of trees) tree.release();
  });

  it('fetches a commit the clone lacks (pushed after its last fetch); refuses one the remote lacks', async () => {
    const fetches = await h.fetchCount('src');
    const newer = origin.commit({ 'app/values.yaml': 'v: 2\n' });
    // the interval has not elapsed: a plain head does not fetch
    expect((await source.head(id)).sha).not.toBe(newer);
    const tree = await source.tree(id, newer);
    expect(readFileSync(path.join(tree.dir, 'app/values.yaml'), 'utf8')).toBe('v: 2\n');
    tree.release();
    expect(await h.fetchCount('src')).toBe(fetches + 1);
    const missing = await rejection(source.tree(id, 'e'.repeat(40)));
    expect(missing).toMatchObject({ code: 'source_commit_missing', kind: 'terminal' });
  });
});
