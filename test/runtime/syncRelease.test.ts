// A rollback whose release's commit cannot be had fails naming the release, its ops repo and
// path (src/runtime/rolloutEffects.ts, sync with a pin): the operator picks another release by id.
import { describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/pool.ts';
import { TransientError } from '../../src/errors.ts';
import type { KubeClient } from '../../src/kube/kubeClient.ts';
import { createLogger } from '../../src/logger.ts';
import type { Renderer } from '../../src/render/renderer.ts';
import { createRolloutEffects } from '../../src/runtime/rolloutEffects.ts';
import type { Source } from '../../src/source/source.ts';
import { CommitMissingError } from '../../src/source/treeCache.ts';

const REPO = '11111111-1111-4111-8111-111111111111';
const SHA = 'c'.repeat(40);

function effects(treeError: Error) {
  const source: Source = {
    head: async () => ({ repoId: REPO, name: 'ops', path: '', sha: 'd'.repeat(40) }),
    tree: async () => { throw treeError; },
  };
  return createRolloutEffects({ db: {} as Db, kube: {} as KubeClient, source, renderer: {} as Renderer, log: createLogger({ level: 'silent', format: 'json' }) });
}

describe('sync of a rollback\'s release', () => {
  it('a commit gone from the remote: terminal, naming the release id, the ops repo and the path', async () => {
    const sync = effects(new CommitMissingError(SHA)).sync({ deploymentId: 'd', opsRepoId: REPO, force: false, pin: SHA, release: { historyId: 42, manifestPath: 'shop/web' } }, new AbortController().signal);
    await expect(sync).rejects.toMatchObject({ kind: 'terminal', code: 'source_commit_missing' });
    await expect(sync).rejects.toThrow(`Release 42 (ops repo ${REPO}, path shop/web, commit cccccccccccc) cannot be rendered again: Commit ${SHA} is not in the ops repo any more`);
  });

  it('a transient failure stays transient and as it was (the remote may come back)', async () => {
    const down = new TransientError('remote unreachable', { code: 'git_unavailable' });
    const sync = effects(down).sync({ deploymentId: 'd', opsRepoId: REPO, force: false, pin: SHA, release: { historyId: 42, manifestPath: 'shop/web' } }, new AbortController().signal);
    await expect(sync).rejects.toBe(down);
  });

  it('a pin without a release (a drift repair) keeps the error as it is', async () => {
    const missing = new CommitMissingError(SHA);
    await expect(effects(missing).sync({ deploymentId: 'd', opsRepoId: REPO, force: false, pin: SHA }, new AbortController().signal)).rejects.toBe(missing);
  });
});
