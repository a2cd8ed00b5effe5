// What a release renders from again (machines/deployment.machine.ts, releaseDesired): the row's
// desired state with what the release recorded in its place. Pure, so a table.
import { describe, expect, it } from 'vitest';
import { releaseDesired, renderSourceOf, type Desired, type ReleaseSource } from '../../machines/deployment.machine.ts';

const REPO = '11111111-1111-4111-8111-111111111111';
const OTHER = '22222222-2222-4222-8222-222222222222';

const row: Desired = {
  generation: 7,
  desiredStatus: 'rollback',
  imageRef: 'shop:3',
  project: 'shop',
  environment: 'prod',
  namespace: 'shop-prod',
  opsRepoId: OTHER,
  manifestPath: 'shop/web2',
  valuesOverride: { replicas: 5 },
  autoRollback: false,
};

const release = (extra: Partial<ReleaseSource>): ReleaseSource => ({ historyId: 4, sha: 'a'.repeat(40), valuesOverride: null, ...extra });
const pick = (d: Desired) => ({ opsRepoId: d.opsRepoId, manifestPath: d.manifestPath, valuesOverride: d.valuesOverride, namespace: d.namespace });

describe('releaseDesired', () => {
  const cases: Array<[string, Desired, ReleaseSource | null, ReturnType<typeof pick>]> = [
    ['no release (a deploy): the row', row, null,
      { opsRepoId: OTHER, manifestPath: 'shop/web2', valuesOverride: { replicas: 5 }, namespace: 'shop-prod' }],
    ['a release from before 0007 and 0013: the row\'s values, repo and path', row, release({}),
      { opsRepoId: OTHER, manifestPath: 'shop/web2', valuesOverride: { replicas: 5 }, namespace: 'shop-prod' }],
    ['values recorded, source not (0007 only): its values, the row\'s repo and path', row, release({ valuesOverride: { replicas: 1 } }),
      { opsRepoId: OTHER, manifestPath: 'shop/web2', valuesOverride: { replicas: 1 }, namespace: 'shop-prod' }],
    ['source recorded: its repo and path, the row\'s namespace', row, release({ valuesOverride: {}, source: { opsRepoId: REPO, manifestPath: 'shop/web' } }),
      { opsRepoId: REPO, manifestPath: 'shop/web', valuesOverride: {}, namespace: 'shop-prod' }],
    ['a release of the built-in template while the row points at an ops repo: the built-in template', row, release({ sha: null, source: { opsRepoId: null, manifestPath: 'shop' } }),
      { opsRepoId: null, manifestPath: 'shop', valuesOverride: { replicas: 5 }, namespace: 'shop-prod' }],
    ['the recorded path is the row\'s default (null → project): null stays null', { ...row, manifestPath: null }, release({ source: { opsRepoId: REPO, manifestPath: 'shop' } }),
      { opsRepoId: REPO, manifestPath: null, valuesOverride: { replicas: 5 }, namespace: 'shop-prod' }],
    ['the row names the default path explicitly, the release had none: the row\'s spelling', { ...row, manifestPath: 'shop' }, release({ source: { opsRepoId: REPO, manifestPath: 'shop' } }),
      { opsRepoId: REPO, manifestPath: 'shop', valuesOverride: { replicas: 5 }, namespace: 'shop-prod' }],
    ['a drift repair (pinned commit only): the row', row, { sha: 'b'.repeat(40), valuesOverride: null },
      { opsRepoId: OTHER, manifestPath: 'shop/web2', valuesOverride: { replicas: 5 }, namespace: 'shop-prod' }],
  ];
  it.each(cases)('%s', (_name, desired, rel, expected) => {
    expect(pick(releaseDesired(desired, rel))).toEqual(expected);
  });

  it('keeps everything else of the row (image, status, generation are the caller\'s)', () => {
    const out = releaseDesired(row, release({ source: { opsRepoId: REPO, manifestPath: 'shop/web' } }));
    expect(out).toMatchObject({ generation: 7, imageRef: 'shop:3', desiredStatus: 'rollback', project: 'shop', environment: 'prod', autoRollback: false });
  });

  it('renders again from the repo and resolved path its release recorded, wherever the row moved', () => {
    const from = { ...row, manifestPath: null, opsRepoId: REPO };
    const source = renderSourceOf(from);
    expect(source).toEqual({ opsRepoId: REPO, manifestPath: 'shop' });
    const again = releaseDesired(row, release({ source }));
    expect(renderSourceOf(again)).toEqual(source);
  });
});
